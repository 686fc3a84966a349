/**
 * Worker-thread side of packageDigest (history.ts): the sha256 of one file, read with a reused
 * 1 MiB buffer, at nice 19 for this thread only (on Linux setpriority(PRIO_PROCESS, 0) applies
 * to the calling thread). Anything but a regular file (a FIFO, a device) is not hashed: opening
 * with O_NONBLOCK never waits for a writer, and the answer is then `undefined`.
 */
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { isSystemError } from '../errors.js';
import { sha256OfFd } from '../util/hash-fd.js';

const { file, size } = workerData as { file: string; size?: number };
try {
  setPriority(19);
} catch (err) {
  // Not allowed here (a seccomp'd sandbox, EACCES/EPERM): the digest runs at the normal priority.
  if (!(err instanceof Error && 'info' in err)) throw err;
}

function digest(): string | undefined {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    return sha256OfFd(fd, Buffer.allocUnsafe(1 << 20), size ?? st.size);
  } finally {
    closeSync(fd);
  }
}

let sha256: string | undefined;
try {
  sha256 = digest();
} catch (err) {
  // Unreadable now (gone, EACCES, EIO): the history records no digest, the install decides.
  if (!isSystemError(err)) throw err;
  sha256 = undefined;
}
parentPort?.postMessage(sha256);
