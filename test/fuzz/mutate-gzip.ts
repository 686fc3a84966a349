import { gzipSync } from 'node:zlib';
import { indexMember, memberLength } from '../../src/archive/gzip-member.js';
import { fileHeader, tarEntries } from './mutate-tar.js';
import type { Rng } from './rng.js';

/** fussy's member size (pack/parallel-gzip.ts): 1 MiB of tar per member. */
const CHUNK = 1 << 20;
/** Offset of the FY value in a member made by indexMember: header 10, XLEN 2, 'F' 'Y' LEN 4. */
const FY_VALUE = 16;

/** fussy-style members (each with its FY length) of `tar` in chunks of `chunk` bytes. */
export function fyMembers(tar: Buffer, chunk = CHUNK, level = 1): Buffer {
  const parts: Buffer[] = [];
  // Thousands of tiny members: small zlib state and output buffers each (not ~270 + 16 KiB).
  const small = chunk <= 4096 ? { windowBits: 9, memLevel: 1, chunkSize: 1024 } : {};
  for (let at = 0; at < tar.length; at += chunk) parts.push(indexMember(gzipSync(tar.subarray(at, at + chunk), { level, ...small })));
  return Buffer.concat(parts);
}

/** Re-compress a (mutated) tar as fussy does, or as gzip does. */
export function regzip(tar: Buffer, rng: Rng, fussy: boolean, log: string[]): Buffer {
  if (rng.chance(fussy ? 0.75 : 0.2)) return fyMembers(tar, CHUNK, rng.pick([0, 1, 6]));
  log.push('gzip: one plain member');
  return gzipSync(tar);
}

interface Member {
  start: number;
  end: number;
  indexed: boolean;
}

function members(gz: Buffer): Member[] {
  const out: Member[] = [];
  for (let at = 0; at < gz.length; ) {
    const len = memberLength(gz.subarray(at, at + 64));
    if (typeof len !== 'number' || at + len > gz.length) {
      out.push({ start: at, end: gz.length, indexed: false });
      break;
    }
    out.push({ start: at, end: at + len, indexed: true });
    at += len;
  }
  return out;
}

const interesting32 = (rng: Rng, v: number): number =>
  rng.pick([v + 1, v - 1, v + rng.range(2, 70_000), 0, 18, 0xffffffff, 0x80000000, 64 * 1024 * 1024 + 1, (1 << 20) + (64 << 10) + 1, 2 * v, rng.int(2 ** 32)].map((x) => Math.max(0, Math.min(0xffffffff, x)) >>> 0));

/**
 * Mutate the payload's gzip stream: FY lengths, ISIZE, CRC, flags, XLEN, method, deflate bits,
 * truncated/dropped/duplicated/swapped members, data after the last member, many tiny members,
 * members larger than the installer's pooled buffers (corrupt or not).
 */
export function mutateGzip(gz: Buffer, tar: () => Buffer, rng: Rng, log: string[]): Buffer {
  const ms = members(gz);
  const m = rng.pick(ms);
  const member = (): Buffer => Buffer.from(gz.subarray(m.start, m.end));
  const replace = (mb: Buffer): Buffer => Buffer.concat([gz.subarray(0, m.start), mb, gz.subarray(m.end)]);
  const which = `member ${ms.indexOf(m)}/${ms.length} (${m.indexed ? 'FY' : 'plain'}, ${m.end - m.start} bytes)`;
  const op = rng.weighted([
    [m.indexed ? 4 : 0, 'fy'], [3, 'isize'], [2, 'crc'], [2, 'flags'], [1, 'xlen'], [1, 'method'], [3, 'flip'], [2, 'truncate'],
    [2, 'members'], [2, 'append'], [1, 'tiny-members'], [2, 'large-members'],
  ] as const);
  switch (op) {
    case 'fy': {
      const mb = member();
      const v = interesting32(rng, mb.readUInt32LE(FY_VALUE));
      mb.writeUInt32LE(v, FY_VALUE);
      log.push(`gzip: ${which}: FY length -> ${v}`);
      return replace(mb);
    }
    case 'isize': {
      const mb = member();
      const v = interesting32(rng, mb.readUInt32LE(mb.length - 4));
      mb.writeUInt32LE(v, mb.length - 4);
      log.push(`gzip: ${which}: ISIZE -> ${v}`);
      return replace(mb);
    }
    case 'crc': {
      const mb = member();
      const at = mb.length - 8 + rng.int(4);
      mb[at] = (mb[at] as number) ^ (1 << rng.int(8));
      log.push(`gzip: ${which}: CRC byte ${at} flipped`);
      return replace(mb);
    }
    case 'flags': {
      const mb = member();
      const bit = rng.int(8);
      mb[3] = (mb[3] as number) ^ (1 << bit);
      log.push(`gzip: ${which}: FLG bit ${bit} flipped`);
      return replace(mb);
    }
    case 'xlen': {
      const mb = member();
      const v = rng.pick([0, 4, 7, 9, 0xffff, rng.int(64)]);
      mb.writeUInt16LE(v, 10);
      log.push(`gzip: ${which}: XLEN -> ${v}`);
      return replace(mb);
    }
    case 'method': {
      const mb = member();
      const v = rng.pick([0, 7, 9, rng.int(256)]);
      mb[2] = v;
      log.push(`gzip: ${which}: CM -> ${v}`);
      return replace(mb);
    }
    case 'flip': {
      const mb = member();
      const at = rng.int(mb.length);
      mb[at] = (mb[at] as number) ^ (1 << rng.int(8));
      log.push(`gzip: ${which}: bit flipped at ${at}`);
      return replace(mb);
    }
    case 'truncate': {
      const mb = member();
      const keep = rng.int(mb.length);
      log.push(`gzip: ${which}: cut to ${keep} bytes`);
      return replace(mb.subarray(0, keep));
    }
    case 'members': {
      const list = ms.map((x) => gz.subarray(x.start, x.end));
      const i = rng.int(list.length);
      const j = rng.int(list.length);
      const what = rng.pick(['drop', 'duplicate', 'swap'] as const);
      if (what === 'drop') list.splice(i, 1);
      else if (what === 'duplicate') list.splice(j, 0, list[i] as Buffer);
      else [list[i], list[j]] = [list[j] as Buffer, list[i] as Buffer];
      log.push(`gzip: members (${list.length}): ${what} ${i} ${j}`);
      return Buffer.concat(list);
    }
    case 'append': {
      const what = rng.pick(['garbage', 'zeros', 'empty-member', 'empty-fy-member', 'first-member'] as const);
      const tail =
        what === 'garbage' ? rng.bytes(rng.range(1, 300))
        : what === 'zeros' ? Buffer.alloc(rng.range(1, 4096))
        : what === 'empty-member' ? gzipSync(Buffer.alloc(0))
        : what === 'empty-fy-member' ? indexMember(gzipSync(Buffer.alloc(0)))
        : gz.subarray((ms[0] as Member).start, (ms[0] as Member).end);
      log.push(`gzip: append ${what} (${tail.length} bytes)`);
      return Buffer.concat([gz, tail]);
    }
    case 'tiny-members': {
      // Not 1 or 17: hundreds of thousands of members take minutes (reported; the gunzip's bound is another fix).
      const size = rng.pick([64, 512, 4096]);
      log.push(`gzip: re-made as FY members of ${size} bytes of tar`);
      return fyMembers(tar(), size, 1);
    }
    case 'large-members': {
      // Larger than the installer's pooled member buffers (1 MiB + 64 KiB); stored, so large.
      const size = rng.pick([(1 << 20) + (64 << 10) + 1, 2 << 20, 3 << 20]);
      // The seed's tar is smaller: a stored file of random bytes makes it long enough.
      const t = tar();
      const entries = tarEntries(t);
      const last = entries[entries.length - 1];
      const filler = Buffer.alloc(size + 4096, 'stored, so any content will do; ');
      const padded = Buffer.concat([t.subarray(0, last?.next ?? 0), fileHeader(`${entries[0]?.name.split('/')[0] ?? 'fw'}/filler.bin`, filler.length), filler, Buffer.alloc((512 - (filler.length % 512)) % 512), Buffer.alloc(1024)]);
      let out = fyMembers(padded, size, 0);
      const corrupt = rng.chance(0.6);
      if (corrupt) {
        const at = 64 + rng.int(Math.max(1, out.length - 128));
        out = Buffer.from(out);
        out[at] = (out[at] as number) ^ 0x10;
      }
      log.push(`gzip: a ${filler.length}-byte file added, re-made as stored FY members of ${size} bytes of tar${corrupt ? ', one byte flipped' : ''}`);
      return out;
    }
  }
}
