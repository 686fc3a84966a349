import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';
import type { Found } from '../store/dedup-index.js';
import { sha256OfFd } from '../util/hash-fd.js';

/** Write all of `data` at the descriptor's offset; a full disk is NO_SPACE naming `abs`. */
export function writeAll(fd: number, data: Buffer, abs: string): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (err) {
      if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
        throw new FussyError('NO_SPACE', `the disk filled up while writing ${abs}`, { cause: err, hint: 'free space (fussy clean) and try again; nothing was installed' });
      }
      throw err;
    }
  }
}

/**
 * Copy the content of the inode `c` verified (dedup-index.ts findContent) to `fd`: opened without
 * following a link and checked to be that inode, hashed again as it is read, so a file edited
 * or swapped after it was verified never reaches the new release (DELTA_BASE_MISSING). Bytes copied.
 */
export function copyVerified(c: Found, fd: number, sha256: string, size: number, rel: string, abs: string): number {
  const src = openVerified(c, `the source of "${rel}"`);
  try {
    // Exactly `size` bytes, whatever the file has grown to since it was verified (its owner may be
    // a local user): no more is written than was charged.
    if (fstatSync(src).size !== size) throw missing(`${c.abs} changed size before it was copied into the new release as "${rel}"`);
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(4096, size)));
    let total = 0;
    while (total < size) {
      const n = readSync(src, buf, 0, Math.min(buf.length, size - total), null);
      if (n === 0) throw missing(`${c.abs} shrank while it was copied into the new release as "${rel}"`);
      hash.update(buf.subarray(0, n));
      writeAll(fd, buf.subarray(0, n), abs);
      total += n;
    }
    if (hash.digest('hex') !== sha256) throw missing(`${c.abs} changed while it was copied into the new release as "${rel}"`);
    return total;
  } finally {
    closeSync(src);
  }
}

/** The inode `c` was verified to be, opened without following a link; DELTA_BASE_MISSING if it is gone or swapped. */
export function openVerified(c: Found, what: string): number {
  let fd: number;
  try {
    fd = openSync(c.abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if (isErrno(err, 'EAGAIN')) throw missing(`${c.abs}, ${what}, is held by a lease of its owner (fcntl F_SETLEASE) and cannot be read now`);
    if (!isErrno(err, 'ENOENT', 'ELOOP', 'EACCES', 'ENOTDIR', 'ENXIO')) throw err;
    throw missing(`${c.abs}, ${what}, disappeared before it was used`);
  }
  const st = fstatSync(fd);
  // The same inode number on the same file system can be a new file (ext4 reuses a freed number
  // at once): a FIFO or directory made there since is not the file verified.
  if (st.dev !== c.dev || st.ino !== c.ino || !st.isFile()) {
    closeSync(fd);
    throw missing(`${c.abs}, ${what}, was replaced before it was used`);
  }
  return fd;
}

/**
 * Why a patch against the verified base `c` did not make its file, when it is the base's fault:
 * DELTA_BASE_MISSING when the base is gone, swapped, or no longer holds the content it was
 * verified to have (its owner edited or cut it while the patch was applied); undefined when it
 * still does, and the package is to blame. Hashed again only on this failure path (once per
 * install: after a refusal nothing more is unpacked).
 */
export function baseChanged(c: Found, what: string): FussyError | undefined {
  let fd: number;
  try {
    fd = openVerified(c, what);
  } catch (err) {
    if (err instanceof FussyError) return err;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (st.size === c.identity.size && sha256OfFd(fd, Buffer.allocUnsafe(1 << 20), st.size) === c.identity.sha256) return undefined;
  } finally {
    closeSync(fd);
  }
  return missing(`${c.abs}, ${what}, changed while the patch was applied`);
}

function missing(message: string): FussyError {
  return new FussyError('DELTA_BASE_MISSING', message, { hint: 'something edits the releases in place: install again, or install a full package' });
}

export function unsafe(message: string): FussyError {
  return new FussyError('UNSAFE_PATH', message, { hint: 'the package tries to write outside its release or replace what it wrote; it is refused as a whole' });
}

/** A file system error while making `rel` in `staging`: a full disk is NO_SPACE, a name taken a collision. */
export function stagingError(err: unknown, rel: string, staging: string): unknown {
  if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
    return new FussyError('NO_SPACE', `the disk filled up while writing ${rel} into ${staging}`, { cause: err, hint: 'free space (fussy clean) and try again; nothing was installed' });
  }
  if (isErrno(err, 'EEXIST')) return unsafe(`archive member "${rel}" collides with an existing entry`);
  return err;
}
