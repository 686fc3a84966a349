import { fixChecksum, tarEntries } from './mutate-tar.js';
import type { Rng } from './rng.js';

const BLOCK = 512;
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Values of the wrong kind, or of the right kind out of range. */
function oddValue(rng: Rng, like: Json | undefined): Json {
  const n = typeof like === 'number' ? like : 1;
  return rng.pick<Json>([
    null, true, false, '', 'x', '1', String(n), -1, 0, n + 1, n - 1, 1.5, -0.5, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, 2 ** 64, [], [null], {}, { a: 1 }, 'a'.repeat(5000),
  ]);
}

/** An own, enumerable property even for "__proto__" (what JSON.parse makes of such a key). */
function setOwn(o: { [k: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

const FIELDS = ['format', 'version', 'release', 'created', 'sequence', 'minSequence', 'rollback', 'compatible', 'totalBytes', 'fileCount', 'entries'];
const ENTRY_FIELDS = ['path', 'type', 'mode', 'uid', 'gid', 'mtime', 'size', 'sha256', 'target'];

function entryOp(rng: Rng, entries: Json[], log: string[]): void {
  const i = rng.int(entries.length);
  const e = entries[i];
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return;
  const name = String(e.path);
  const op = rng.weighted([[3, 'field'], [2, 'size'], [2, 'sha256'], [2, 'type'], [2, 'path'], [1, 'mode'], [1, 'delete'], [1, 'extra']] as const);
  if (op === 'field') {
    const f = rng.pick(ENTRY_FIELDS);
    e[f] = oddValue(rng, e[f]);
    log.push(`manifest: entry ${i} "${name}": ${f} -> ${JSON.stringify(e[f]).slice(0, 40)}`);
  } else if (op === 'size') {
    const s = typeof e.size === 'number' ? e.size : 0;
    e.size = rng.pick([s + 1, s - 1, 0, -1, -s, 2 ** 40, 2 ** 53, 1e15, s * 2]);
    log.push(`manifest: entry ${i} "${name}": size -> ${e.size}`);
  } else if (op === 'sha256') {
    const h = typeof e.sha256 === 'string' ? e.sha256 : '0'.repeat(64);
    e.sha256 = rng.pick([h.replace(/^./, (c) => (c === '0' ? '1' : '0')), h.toUpperCase(), h.slice(1), `${h}0`, 'z'.repeat(64), '']);
    log.push(`manifest: entry ${i} "${name}": sha256 -> ${String(e.sha256).slice(0, 12)}...`);
  } else if (op === 'type') {
    e.type = rng.pick(['file', 'directory', 'symlink', 'hardlink', 'fifo', 'char', 'FILE']);
    log.push(`manifest: entry ${i} "${name}": type -> ${e.type}`);
  } else if (op === 'path') {
    const other = entries[rng.int(entries.length)];
    const otherPath = other !== null && typeof other === 'object' && !Array.isArray(other) ? other.path : '.';
    e.path = rng.pick<Json>(['..', '../x', '/etc/passwd', '', '.', 'a/../..', otherPath ?? '.', `${name}/`, `${name}/../${name}`, 'p'.repeat(5000)]);
    log.push(`manifest: entry ${i} "${name}": path -> ${JSON.stringify(e.path).slice(0, 40)}`);
  } else if (op === 'mode') {
    e.mode = rng.pick([0o4755, 0o7777, 0o170000, -1, 1e9]);
    log.push(`manifest: entry ${i} "${name}": mode -> ${e.mode}`);
  } else if (op === 'delete') {
    const f = rng.pick(ENTRY_FIELDS);
    delete e[f];
    log.push(`manifest: entry ${i} "${name}": ${f} deleted`);
  } else {
    setOwn(e, rng.pick(['extra', '__proto__', 'constructor', 'hidden']), 'surprise');
    log.push(`manifest: entry ${i} "${name}": an unknown field added`);
  }
}

function manifestOp(rng: Rng, m: { [k: string]: Json }, log: string[]): void {
  const entries = Array.isArray(m.entries) ? m.entries : undefined;
  const op = rng.weighted([[3, 'field'], [1, 'delete'], [entries ? 6 : 0, 'entry'], [entries ? 3 : 0, 'entries'], [1, 'oversized'], [1, 'extra']] as const);
  if (op === 'field') {
    const f = rng.pick(FIELDS);
    m[f] = oddValue(rng, m[f]);
    log.push(`manifest: ${f} -> ${JSON.stringify(m[f]).slice(0, 40)}`);
  } else if (op === 'delete') {
    const f = rng.pick(FIELDS);
    delete m[f];
    log.push(`manifest: ${f} deleted`);
  } else if (op === 'entry' && entries) {
    entryOp(rng, entries, log);
  } else if (op === 'entries' && entries) {
    const i = rng.int(entries.length);
    const what = rng.pick(['null', 'drop', 'duplicate', 'swap', 'number', 'empty-object'] as const);
    if (what === 'null') entries.splice(i, 0, null);
    else if (what === 'drop') entries.splice(i, 1);
    else if (what === 'duplicate') entries.splice(rng.int(entries.length), 0, JSON.parse(JSON.stringify(entries[i])) as Json);
    else if (what === 'swap') {
      const j = rng.int(entries.length);
      [entries[i], entries[j]] = [entries[j] as Json, entries[i] as Json];
    } else if (what === 'number') entries.splice(i, 0, 42);
    else entries.splice(i, 0, {});
    log.push(`manifest: entries: ${what} at ${i}`);
  } else if (op === 'oversized') {
    const what = rng.pick(['entries', 'totalBytes', 'fileCount'] as const);
    if (what === 'entries' && entries) {
      const n = rng.pick([1000, 5000, 20000]);
      for (let k = 0; k < n; k++) entries.push({ path: `ghost/f${k}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 1 << 20, sha256: '0'.repeat(64) });
      log.push(`manifest: ${n} extra entries of 1 MiB files that are not in the archive`);
    } else {
      m[what] = rng.pick([2 ** 40, 2 ** 53, 1e300]);
      log.push(`manifest: ${what} -> ${m[what]}`);
    }
  } else {
    setOwn(m, rng.pick(['extra', '__proto__', 'constructor']), { polluted: true });
    log.push('manifest: an unknown top-level field added');
  }
}

/**
 * Mutate the manifest (the tar's first file, `<release>/.fussy-manifest.json`) as a signer who
 * got it wrong would: fields missing, of the wrong type or out of range, entries null,
 * duplicated, dropped or swapped, sizes and hashes that do not match, oversized counts; then the
 * tar is rebuilt around it (size field and checksum updated). Sometimes the JSON itself is broken.
 */
export function mutateManifest(tar: Buffer, rng: Rng, log: string[]): Buffer {
  const e = tarEntries(tar).find((x) => x.name.endsWith('.fussy-manifest.json') && x.type === '0');
  if (e === undefined) return tar;
  const text = tar.toString('utf8', e.off + BLOCK, e.off + BLOCK + e.size);
  let body: Buffer;
  if (rng.chance(0.08)) {
    const cut = rng.int(text.length);
    body = Buffer.from(rng.chance(0.5) ? text.slice(0, cut) : `${text.slice(0, cut)}\u0000${text.slice(cut)}`);
    log.push(`manifest: JSON broken at ${cut}`);
  } else {
    const m = JSON.parse(text) as { [k: string]: Json };
    const n = rng.weighted([[6, 1], [3, 2], [1, 3]] as const);
    for (let k = 0; k < n; k++) manifestOp(rng, m, log);
    body = Buffer.from(rng.chance(0.5) ? JSON.stringify(m) : JSON.stringify(m, null, 1));
  }
  const header = Buffer.from(tar.subarray(e.off, e.off + BLOCK));
  header.write(body.length.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  fixChecksum(header, 0);
  const padded = Buffer.concat([body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK)]);
  return Buffer.concat([tar.subarray(0, e.off), header, padded, tar.subarray(e.next)]);
}
