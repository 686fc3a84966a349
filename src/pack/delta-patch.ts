import { createHash } from 'node:crypto';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { chunkFd, MAX_DATA_RECORD, OP_COPY, OP_DATA, OP_END, PATCH_MAGIC } from '../archive/chunks.js';
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
 * base's bytes (runs of them one range), the rest are carried as DATA. Both files are read once,
 * in 1 MiB blocks; only the base's chunk hashes are kept (~100 bytes per 16 KiB). undefined,
 * and nothing left at `out`, when the base's bytes do not have `baseSha256` or the patch would
 * pass `maxSize` (the file is then carried whole; a rewritten file costs no full-size temp file).
 */
export function writePatch(file: string, base: string, out: string, o: { baseSha256: string; maxSize: number }): Patch | undefined {
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
  const flush = (): void => {
    if (pendingBytes === 0) return;
    const head = Buffer.alloc(5);
    head[0] = OP_DATA;
    head.writeUInt32BE(pendingBytes, 1);
    write(head);
    for (const p of pending) write(p);
    patch.carried += pendingBytes;
    pending = [];
    pendingBytes = 0;
  };
  try {
    write(PATCH_MAGIC);
    chunkFd(f, (c) => {
      const at = have.get(c.sha256);
      if (at !== undefined) {
        flush();
        // Chunks that follow each other in the base too are one range: an edit in place leaves a few records.
        if (copy !== undefined && copy.offset + copy.length === at) copy.length += c.data.length;
        else {
          flushCopy();
          copy = { offset: at, length: c.data.length };
        }
        return;
      }
      flushCopy();
      if (pendingBytes + c.data.length > MAX_DATA_RECORD) flush();
      pending.push(Buffer.from(c.data)); // the chunk's bytes are valid only during the callback
      pendingBytes += c.data.length;
    });
    flushCopy();
    flush();
    write(Buffer.from([OP_END]));
  } catch (err) {
    if (err !== TOO_BIG) throw err;
    tooBig = true;
  } finally {
    closeSync(f);
    closeSync(fd);
  }
  if (!tooBig) return patch;
  rmSync(out, { force: true });
  return undefined;
}
