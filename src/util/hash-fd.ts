import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';

/** The sha256 (hex) of what is left to read from `fd`, read with the caller's buffer. */
export function sha256OfFd(fd: number, buf: Buffer): string {
  const hash = createHash('sha256');
  for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) hash.update(buf.subarray(0, n));
  return hash.digest('hex');
}

/**
 * The sha256 (hex) of the first `size` bytes of `fd`, read at their offsets (the descriptor's
 * own offset is left alone); undefined if the file is shorter.
 */
export function sha256OfFirst(fd: number, size: number, buf: Buffer): string | undefined {
  const hash = createHash('sha256');
  for (let at = 0; at < size; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), at);
    if (n === 0) return undefined;
    hash.update(buf.subarray(0, n));
    at += n;
  }
  return hash.digest('hex');
}
