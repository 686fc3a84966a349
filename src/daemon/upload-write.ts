import type { Hash } from 'node:crypto';
import { fsync, write } from 'node:fs';
import { promisify } from 'node:util';
import { FussyError } from '../errors.js';
import { fsFailure } from '../util/fs-failure.js';

/** A request body (a Readable), or chunks in hand. */
export type UploadSource = AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;

const writeFd = promisify(write);
const fsyncFd = promisify(fsync);

/**
 * Write `source` into `fd` from `have` up to `size` and return the new `have`. Each chunk is
 * written before the next is read (the source waits: memory does not grow with the package);
 * `running` hashes exactly the bytes written. Bytes past `size` are refused (TOO_LARGE) after
 * what fits was written. Whatever ends the stream, what was written is fsynced first, so a cut
 * connection keeps what arrived. `fd` undefined: nothing may be written (the upload is whole).
 */
export async function writeStream(fd: number | undefined, have: number, size: number, source: UploadSource, running: { hash: Hash; bytes: number } | undefined, sha256: string): Promise<number> {
  let pos = have;
  try {
    for await (const chunk of source) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const fits = Math.min(buf.length, size - pos);
      for (let off = 0; off < fits; ) {
        const n = (await writeFd(fd as number, buf, off, fits - off, pos)).bytesWritten;
        running?.hash.update(buf.subarray(off, off + n));
        if (running !== undefined) running.bytes += n;
        off += n;
        pos += n;
      }
      if (fits < buf.length) {
        throw new FussyError('TOO_LARGE', `upload ${sha256} is ${size} bytes: more bytes than that were sent (the first ${size} are kept)`, {
          hint: 'send exactly the size named when the upload began',
          details: { sha256, size, have: pos },
        });
      }
    }
  } catch (err) {
    if (fd !== undefined) await fsyncFd(fd);
    throw fd !== undefined && !(err instanceof FussyError) && isWriteError(err) ? fsFailure(err, `upload ${sha256}`, 'write') : err;
  }
  if (fd !== undefined) await fsyncFd(fd);
  return pos;
}

/** An errno from writing the file (ENOSPC, EIO), not one the source stream failed with (ECONNRESET). */
function isWriteError(err: unknown): boolean {
  const syscall = (err as NodeJS.ErrnoException).syscall;
  return syscall === 'write' || syscall === 'fsync';
}
