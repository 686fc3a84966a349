import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';
import { permissionDenied } from '../util/system-error.js';
import type { WalkEntry } from './walk.js';

export interface FileDigest {
  sha256: string;
  /** Its bytes look random: store them rather than burn CPU deflating noise. */
  incompressible: boolean;
}

/** Below this, deciding costs more than compressing. */
const PROBE_MIN_SIZE = 32 * 1024;
const PROBE_SIZE = 16 * 1024;
/**
 * Order-0 entropy in bits per byte above which deflate gains under ~3%: random data, JPEG,
 * squashfs/xz/gzip members measure 7.95-8.0; text 4-5; ELF binaries 5-7.
 */
const INCOMPRESSIBLE_BITS = 7.9;
const READ_SIZE = 1024 * 1024;

/** Shannon entropy of the byte histogram of `b`, in bits per byte. */
export function byteEntropy(b: Uint8Array): number {
  const counts = new Uint32Array(256);
  for (let i = 0; i < b.length; i++) counts[b[i] as number]! += 1;
  let h = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i] as number;
    if (c === 0) continue;
    const p = c / b.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * sha256 of every regular file (for the manifest, which precedes the data in the archive) plus a
 * compressibility probe from the middle of the first 1 MiB. Synchronous reads with one reused
 * buffer: they keep the thread pool free for the compressor and memory flat whatever the size.
 */
export function digestFiles(entries: WalkEntry[], onBytes: (n: number) => void = () => {}): Map<string, FileDigest> {
  const out = new Map<string, FileDigest>();
  const buf = Buffer.allocUnsafe(READ_SIZE);
  for (const e of entries) {
    if (e.type !== 'file') continue;
    const hash = createHash('sha256');
    let total = 0;
    let incompressible = false;
    const fd = openForRead(e.abs);
    try {
      for (;;) {
        // No further than one byte past the size listed: a file that grows meanwhile (a log, a
        // sparse terabyte) is told at once, not read to its new end.
        const n = readSync(fd, buf, 0, Math.min(READ_SIZE, e.stat.size + 1 - total), null);
        if (n === 0) break;
        if (total === 0 && n >= PROBE_MIN_SIZE) {
          const start = (n - PROBE_SIZE) >> 1;
          incompressible = byteEntropy(buf.subarray(start, start + PROBE_SIZE)) > INCOMPRESSIBLE_BITS;
        }
        hash.update(buf.subarray(0, n));
        total += n;
        onBytes(n);
      }
    } finally {
      closeSync(fd);
    }
    if (total !== e.stat.size) {
      throw new FussyError('BAD_SOURCE', `${e.abs} changed size while it was being packed (${e.stat.size} bytes when listed, ${total > e.stat.size ? 'more' : total} now)`, {
        hint: 'do not change the tree while packing it',
      });
    }
    out.set(e.path, { sha256: hash.digest('hex'), incompressible });
  }
  return out;
}

/** Open a tree file for reading; O_NOFOLLOW so a file swapped for a symlink is not followed. */
export function openForRead(abs: string): number {
  try {
    return openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'EACCES', 'EPERM')) throw permissionDenied(err, `cannot read ${abs}: ${err.code}`, { path: abs, hint: 'run fussy pack as a user who may read the whole tree, fix its permissions, or exclude it with --exclude' });
    if (isErrno(err, 'EIO', 'ENOENT', 'ELOOP')) {
      throw new FussyError('BAD_SOURCE', `cannot read ${abs}: ${err.code}`, {
        cause: err,
        hint: 'do not change the tree while packing it, check the disk it is on, or exclude it with --exclude',
      });
    }
    throw err;
  }
}
