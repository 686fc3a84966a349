import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';

/** The sha256 (hex) of what is left to read from `fd`, read with the caller's buffer. */
export function sha256OfFd(fd: number, buf: Buffer): string {
  const hash = createHash('sha256');
  for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) hash.update(buf.subarray(0, n));
  return hash.digest('hex');
}
