import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';

/**
 * The sha256 (hex) of the first `size` bytes of the regular file open at `fd`, read with the
 * caller's buffer at explicit offsets; undefined when the file no longer holds `size` bytes (it
 * was cut short while it was read). Never read past `size`: a file its owner grows while root
 * hashes it (a sparse 15 TiB in an instant) would otherwise keep root reading zeros for hours,
 * with the target's lock held (docs/security.md, "Local users against fussy running as root").
 */
export function sha256OfFd(fd: number, buf: Buffer, size: number): string | undefined {
  const hash = createHash('sha256');
  for (let at = 0; at < size; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - at), at);
    if (n === 0) return undefined;
    hash.update(buf.subarray(0, n));
    at += n;
  }
  return hash.digest('hex');
}

