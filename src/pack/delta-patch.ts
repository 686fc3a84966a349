import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { CHUNK_MIN, chunkFd, MAX_DATA_RECORD, OP_COPY, OP_DATA, OP_END, PATCH_MAGIC } from '../archive/chunks.js';
import { FussyError } from '../errors.js';
import { CREATE_NEW } from '../util/fs-atomic.js';

/** A large file that changed a little: worth a patch against its base when the patch is at most this share of it. */
export const PATCH_MIN_FILE = 1024 * 1024;
export const PATCH_MAX_SHARE = 0.5;

export interface Patch {
  /** Bytes of the patch (what the archive carries for the file). */
  size: number;
  /** Bytes the device takes from its base file. */
  copied: number;
  /** Bytes carried in the patch. */
  carried: number;
}

const TOO_BIG = new Error('the patch is larger than it is worth');

/**
 * Write to `out` the patch that makes `file` from `base` (archive/chunks.ts): both are cut into
 * content-defined chunks; each chunk of the file that the base also has becomes a COPY of the
 * base's bytes (runs of them one range), the rest are carried as DATA, less the bytes at their
 * ends that are the base's own (flush). Both files are read once in 1 MiB blocks, and the base's
 * bytes around each edit again; only the base's chunk hashes are kept (~100 bytes per 16 KiB). undefined,
 * and nothing left at `out`, when the base's bytes do not have `baseSha256` or the patch would
 * pass `maxSize` (the file is then carried whole; a rewritten file costs no full-size temp file).
 */
export function writePatch(file: string, base: string, out: string, o: { baseSha256: string; maxSize: number; size: number }): Patch | undefined {
  const have = new Map<string, number>();
  const baseHash = createHash('sha256');
  const b = openSync(base, 'r');
  try {
    chunkFd(b, (c) => {
      baseHash.update(c.data);
      if (!have.has(c.sha256)) have.set(c.sha256, c.offset);
    });
  } finally {
    closeSync(b);
  }
  // A base whose bytes are not what its manifest says (edited after install) is no base.
  if (baseHash.digest('hex') !== o.baseSha256) return undefined;
  const fd = openSync(out, CREATE_NEW, 0o600);
  const f = openSync(file, 'r');
  const bfd = openSync(base, 'r');
  const patch: Patch = { size: 0, copied: 0, carried: 0 };
  const write = (buf: Buffer): void => {
    // Past the most worth sending, the file goes whole: stop here rather than write it all out.
    if (patch.size + buf.length > o.maxSize) throw TOO_BIG;
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    patch.size += buf.length;
  };
  let tooBig = false;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let copy: { offset: number; length: number } | undefined;
  /** Where in the base the run of new chunks being gathered starts to differ (the end of the COPY before it), until its first DATA record. */
  let gapBase: number | undefined;
  const flushCopy = (): void => {
    if (copy === undefined) return;
    const rec = Buffer.alloc(17);
    rec[0] = OP_COPY;
    rec.writeBigUInt64BE(BigInt(copy.offset), 1);
    rec.writeBigUInt64BE(BigInt(copy.length), 9);
    write(rec);
    patch.copied += copy.length;
    copy = undefined;
  };
  /**
   * Write the gathered new chunks as DATA. A chunk is the unit of finding, not of change: an edit
   * in place leaves the bytes around it in its chunks the same as the base's there. Those are
   * taken from the base instead: the bytes the run shares with the base where the COPY before
   * it ended (grown onto that COPY), and, when the run ends at a chunk found at `nextBase`, the
   * bytes it shares with the base just before that (a COPY the next one grows onto). Every
   * record stays longer than a chunk's least (install's rule against floods of tiny records).
   */
  const flush = (nextBase?: number): void => {
    if (pendingBytes === 0) return;
    let data = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    if (gapBase !== undefined) {
      const p = sameBytes(bfd, gapBase, data, 'head', data.length - CHUNK_MIN - 1);
      // Onto the COPY before the run; at the start of the file, a COPY of its own if long enough.
      if (copy !== undefined || p > CHUNK_MIN) {
        copy = copy === undefined ? { offset: gapBase, length: p } : { offset: copy.offset, length: copy.length + p };
        data = data.subarray(p);
      }
      gapBase = undefined;
    }
    flushCopy();
    const tail = nextBase === undefined ? 0 : sameBytes(bfd, nextBase, data, 'tail', data.length - CHUNK_MIN - 1);
    const head = Buffer.alloc(5);
    head[0] = OP_DATA;
    head.writeUInt32BE(data.length - tail, 1);
    write(head);
    write(data.subarray(0, data.length - tail));
    patch.carried += data.length - tail;
    if (tail > 0) copy = { offset: (nextBase as number) - tail, length: tail };
  };
  let seen = 0;
  try {
    write(PATCH_MAGIC);
    // The file's size as walked and hashed (`size`): nothing past it is read.
    chunkFd(f, (c) => {
      seen += c.data.length;
      const at = have.get(c.sha256);
      if (at !== undefined) {
        flush(at);
        // Chunks that follow each other in the base too are one range: an edit in place leaves a few records.
        if (copy !== undefined && copy.offset + copy.length === at) copy.length += c.data.length;
        else {
          flushCopy();
          copy = { offset: at, length: c.data.length };
        }
        return;
      }
      // A run of new chunks starts where the COPY before it ends in the base (or at the start of
      // both files); one that goes on after a full DATA record has no such place.
      if (pendingBytes === 0) gapBase = copy !== undefined ? copy.offset + copy.length : patch.size === PATCH_MAGIC.length ? 0 : undefined;
      if (pendingBytes + c.data.length > MAX_DATA_RECORD) flush();
      pending.push(Buffer.from(c.data)); // the chunk's bytes are valid only during the callback
      pendingBytes += c.data.length;
    }, o.size);
    if (seen !== o.size) throw new FussyError('BAD_SOURCE', `${file} changed size while it was being packed (${o.size} bytes when listed, ${seen} now)`, { hint: 'do not change the tree while packing it' });
    flush();
    flushCopy();
    write(Buffer.from([OP_END]));
  } catch (err) {
    rmSync(out, { force: true }); // no patch is left at `out` unless one was made
    if (err !== TOO_BIG) throw err;
    tooBig = true;
  } finally {
    closeSync(f);
    closeSync(bfd);
    closeSync(fd);
  }
  return tooBig ? undefined : patch;
}

/**
 * How many bytes `data` shares with the base file (descriptor `fd`): its first bytes with the
 * base's from `at` on (`head`), or its last bytes with the base's just before `at` (`tail`); at
 * most `limit`, and never past either end of the base.
 */
function sameBytes(fd: number, at: number, data: Buffer, side: 'head' | 'tail', limit: number): number {
  const most = Math.min(limit, data.length, side === 'tail' ? at : Number.MAX_SAFE_INTEGER);
  const buf = Buffer.allocUnsafe(64 * 1024);
  let same = 0;
  while (same < most) {
    const want = Math.min(buf.length, most - same);
    // head: base[at + same, ...) against data[same, ...); tail: base[at - same - want, at - same) against data's bytes as far from its end.
    const n = readSync(fd, buf, 0, want, side === 'head' ? at + same : at - same - want);
    if (n <= 0 || (side === 'tail' && n !== want)) break;
    if (side === 'head') {
      for (let i = 0; i < n; i++) if (buf[i] !== data[same + i]) return same + i;
    } else {
      const end = data.length - same;
      for (let i = 1; i <= n; i++) if (buf[n - i] !== data[end - i]) return same + i - 1;
    }
    same += n;
  }
  return same;
}
