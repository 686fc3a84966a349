import type { Rng } from './rng.js';

const BLOCK = 512;

/** One tar entry: header block at `off`, its data, and where the next header starts. */
export interface TarEntry {
  off: number;
  size: number;
  next: number;
  type: string;
  name: string;
}

function field(b: Buffer, off: number, len: number): string {
  const s = b.toString('latin1', off, off + len);
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

function parseSize(h: Buffer): number {
  if (((h[124] as number) & 0x80) !== 0) return Number(h.readBigUInt64BE(128) & 0xffffffffffffn);
  const n = parseInt(field(h, 124, 12).trim() || '0', 8);
  return Number.isFinite(n) ? n : 0;
}

/** The entries of a tar up to its end blocks (or as far as it parses). */
export function tarEntries(tar: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  for (let off = 0; off + BLOCK <= tar.length; ) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((x) => x === 0)) break;
    const size = parseSize(h);
    const next = off + BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    out.push({ off, size, next, type: String.fromCharCode(h[156] as number), name: field(h, 0, 100) });
    if (next <= off || next > tar.length) break;
    off = next;
  }
  return out;
}

/** Recompute a header's checksum (the parser refuses a wrong one, which hides everything else). */
export function fixChecksum(tar: Buffer, off: number): void {
  const h = tar.subarray(off, off + BLOCK);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of h) sum += x;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
}

function octal(v: number, width: number): Buffer {
  return Buffer.from(v.toString(8).padStart(width - 1, '0').slice(-(width - 1)) + '\0', 'latin1');
}

function base256(v: bigint, width: number): Buffer {
  const b = Buffer.alloc(width);
  let x = BigInt.asUintN(width * 8, v);
  for (let i = width - 1; i >= 0; i--) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  b[0] = (b[0] as number) | 0x80;
  return b;
}

/** A header for a file entry named `name` with `data`, checksum set. */
export function fileHeader(name: string, size: number, type = '0', linkname = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 'latin1');
  octal(0o644, 8).copy(h, 100);
  octal(0, 8).copy(h, 108);
  octal(0, 8).copy(h, 116);
  octal(size, 12).copy(h, 124);
  octal(1_700_000_000, 12).copy(h, 136);
  h.write(type, 156, 'latin1');
  h.write(linkname.slice(0, 100), 157, 'latin1');
  h.write('ustar\x0000', 257, 'latin1');
  fixChecksum(h, 0);
  return h;
}

/** A pax extended header ('x') or global header ('g') with `records` ("key=value"). */
export function paxHeader(records: string[], type = 'x', badLength = false): Buffer {
  const body = records
    .map((r) => {
      let len = r.length + 3;
      while (`${len} ${r}\n`.length !== len) len = `${len} ${r}\n`.length;
      return `${badLength ? len + 7 : len} ${r}\n`;
    })
    .join('');
  const data = Buffer.from(body, 'utf8');
  return Buffer.concat([fileHeader('PaxHeader/x', data.length, type), data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

const pad = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

/** Names an attacker tries, relative to the release directory `rel`. */
function evilName(rng: Rng, rel: string, others: string[]): string {
  return rng.pick([
    `${rel}/../escape`, '../escape', '/etc/fuzz-owned', `${rel}/a/../../escape`, `other-release/x`, '', '.', `${rel}`, `${rel}/`, `${rel}//double`,
    `${rel}/${'d'.repeat(200)}`, `${rel}/.fussy-manifest.json`, 'current/x', '.fussy/x', `${rel}/x\u0000y`, rng.pick(others), rng.pick(others),
  ]);
}

/**
 * Mutate a tar stream: header fields (size, checksum, type, name, link name, mode, owners,
 * mtime, magic, prefix; checksum usually recomputed so the change reaches the parser), pax and
 * GNU long-name records, entries dropped, duplicated, swapped, data flipped, the end blocks
 * removed, data after the end, the archive cut short, and many extra entries.
 */
export function mutateTar(input: Buffer, rng: Rng, log: string[]): Buffer {
  const es = tarEntries(input);
  if (es.length === 0) return input;
  const rel = (es[0] as TarEntry).name.split('/')[0] ?? 'fw';
  const names = es.map((e) => e.name);
  const e = rng.pick(es);
  const tar = Buffer.from(input);
  const h = tar.subarray(e.off, e.off + BLOCK);
  const which = `entry ${es.indexOf(e)} "${e.name}" (type ${JSON.stringify(e.type)}, ${e.size} bytes)`;
  const header = (what: string, change: () => void): Buffer => {
    change();
    const fix = rng.chance(0.8);
    if (fix) fixChecksum(tar, e.off);
    log.push(`tar: ${which}: ${what}${fix ? '' : ', checksum left wrong'}`);
    return tar;
  };
  const op = rng.weighted([
    [4, 'size'], [1, 'checksum'], [3, 'type'], [3, 'name'], [2, 'linkname'], [2, 'mode'], [1, 'owner'], [1, 'mtime'], [1, 'magic'], [1, 'prefix'],
    [3, 'pax'], [1, 'longname'], [3, 'entries'], [2, 'data'], [1, 'no-end'], [1, 'after-end'], [1, 'truncate'], [1, 'many'],
  ] as const);
  switch (op) {
    case 'size': {
      const v = rng.pick([e.size + 1, e.size - 1, e.size + BLOCK, e.size - BLOCK, 0, 0o77777777777, 2 ** 33, 2 ** 40, 2 ** 53]);
      return header(`size -> ${v}`, () => {
        if (v < 0 || v > 0o77777777777) base256(BigInt(v), 12).copy(h, 124);
        else octal(v, 12).copy(h, 124);
        if (rng.chance(0.1)) h.write('99999999999\0', 124, 'latin1');
      });
    }
    case 'checksum':
      h[148 + rng.int(6)] = 0x30 + rng.int(8);
      log.push(`tar: ${which}: checksum changed`);
      return tar;
    case 'type': {
      const t = rng.pick(['0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'V', 'M', 'D', 'N', '\0', 'Z']);
      return header(`type -> ${JSON.stringify(t)}`, () => h.write(t, 156, 'latin1'));
    }
    case 'name': {
      const n = evilName(rng, rel, names);
      return header(`name -> ${JSON.stringify(n)}`, () => {
        h.fill(0, 0, 100);
        h.write(n.slice(0, 100), 0, 'latin1');
      });
    }
    case 'linkname': {
      const n = rng.pick(['/etc/shadow', '../../etc/passwd', `${rel}/../escape`, e.name, rng.pick(names), 'nonexistent', `${rel}/share/data.txt`, 'x'.repeat(100)]);
      return header(`linkname -> ${JSON.stringify(n)}`, () => {
        h.fill(0, 157, 257);
        h.write(n.slice(0, 100), 157, 'latin1');
      });
    }
    case 'mode': {
      const v = rng.pick([0o4755, 0o6777, 0o7777, 0, 0o1000, 0o777777]);
      return header(`mode -> 0${v.toString(8)}`, () => octal(v, 8).copy(h, 100));
    }
    case 'owner': {
      const at = rng.pick([108, 116]);
      const v = rng.pick([0, 65534, 0o7777777]);
      return header(`${at === 108 ? 'uid' : 'gid'} -> ${v}${rng.chance(0.3) ? ' (base-256 2^40)' : ''}`, () => (rng.chance(0.3) ? base256(2n ** 40n, 8).copy(h, at) : octal(v, 8).copy(h, at)));
    }
    case 'mtime': {
      const neg = rng.chance(0.3);
      return header(neg ? 'mtime -> base-256 -1' : 'mtime -> 0o77777777777', () => (neg ? base256(-1n, 12).copy(h, 136) : octal(0o77777777777, 12).copy(h, 136)));
    }
    case 'magic': {
      const v = rng.pick(['ustar  \0', 'xxxxx\x0000', '\0\0\0\0\0\0\0\0']);
      return header(`magic -> ${JSON.stringify(v)}`, () => h.write(v, 257, 'latin1'));
    }
    case 'prefix': {
      const v = rng.pick(['..', '/etc', `${rel}/../..`, 'other', `${rel}/sub`]);
      return header(`ustar prefix -> ${JSON.stringify(v)}`, () => {
        h.fill(0, 345, 500);
        h.write(v, 345, 'latin1');
      });
    }
    case 'pax': {
      const rec = rng.pick([
        `path=${rel}/../escape`, 'path=/etc/fuzz-owned', `path=${rng.pick(names)}`, 'linkpath=/etc/shadow', `linkpath=${rel}/../../x`, `size=${2 ** 40}`, 'size=-1',
        'size=12abc', `size=${e.size + 1}`, 'mtime=99999999999999', 'uid=4294967296', `path=${rel}/${'p'.repeat(300)}`, 'GNU.sparse.size=100', 'comment=hello',
      ]);
      const type = rng.chance(0.15) ? 'g' : 'x';
      const badLength = rng.chance(0.2);
      log.push(`tar: pax ${type} header "${rec}"${badLength ? ' (wrong record length)' : ''} before ${which}`);
      return Buffer.concat([tar.subarray(0, e.off), paxHeader([rec], type, badLength), tar.subarray(e.off)]);
    }
    case 'longname': {
      const n = rng.pick([`${rel}/../escape`, `${rel}/${'l'.repeat(5000)}`, '/etc/fuzz-owned']);
      const data = Buffer.from(n + '\0');
      log.push(`tar: GNU long name ${JSON.stringify(n.slice(0, 40))}... before ${which}`);
      return Buffer.concat([tar.subarray(0, e.off), fileHeader('././@LongLink', data.length, 'L'), data, Buffer.alloc(pad(data.length) - data.length), tar.subarray(e.off)]);
    }
    case 'entries': {
      const list: Buffer[] = es.map((x) => tar.subarray(x.off, x.next));
      const end = tar.subarray((es[es.length - 1] as TarEntry).next);
      const i = rng.int(list.length);
      const j = rng.int(list.length);
      const what = rng.pick(['drop', 'duplicate', 'swap', 'to-end'] as const);
      if (what === 'drop') list.splice(i, 1);
      else if (what === 'duplicate') list.splice(j, 0, list[i] as Buffer);
      else if (what === 'swap') [list[i], list[j]] = [list[j] as Buffer, list[i] as Buffer];
      else list.push(...list.splice(i, 1));
      log.push(`tar: entries: ${what} ${i} ${j} ("${names[i]}")`);
      return Buffer.concat([...list, end]);
    }
    case 'data': {
      if (e.size === 0) return mutateTar(input, rng, log);
      const at = e.off + BLOCK + rng.int(e.size);
      tar[at] = (tar[at] as number) ^ (1 << rng.int(8));
      log.push(`tar: ${which}: data bit flipped at ${at}`);
      return tar;
    }
    case 'no-end': {
      log.push('tar: end-of-archive blocks removed');
      return tar.subarray(0, (es[es.length - 1] as TarEntry).next);
    }
    case 'after-end': {
      const what = rng.pick(['garbage', 'entry'] as const);
      const tail = what === 'garbage' ? rng.bytes(rng.range(1, 2000)) : Buffer.concat([fileHeader(`${rel}/after-end`, 5), Buffer.from('evil!'), Buffer.alloc(BLOCK - 5)]);
      log.push(`tar: ${what} after the end blocks`);
      return Buffer.concat([tar, tail]);
    }
    case 'truncate': {
      const at = rng.chance(0.5) ? rng.int(tar.length) : BLOCK * rng.int(Math.ceil(tar.length / BLOCK));
      log.push(`tar: cut to ${at} of ${tar.length} bytes`);
      return tar.subarray(0, at);
    }
    case 'many': {
      const n = rng.pick([1000, 2000, 5000]);
      const dirs = rng.chance(0.3);
      const extra: Buffer[] = [];
      if (dirs) for (let k = 0; k < n; k++) extra.push(fileHeader(`${rel}/many/d${k}/`, 0, '5'));
      else {
        extra.push(fileHeader(`${rel}/many/`, 0, '5'));
        for (let k = 0; k < n; k++) extra.push(fileHeader(`${rel}/many/f${k}`, 0));
      }
      const at = (es[Math.min(es.length - 1, 1 + rng.int(es.length - 1))] as TarEntry).off;
      log.push(`tar: ${n} extra empty ${dirs ? 'directories' : 'files'} at ${at}`);
      return Buffer.concat([tar.subarray(0, at), ...extra, tar.subarray(at)]);
    }
  }
}
