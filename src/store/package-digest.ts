import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { cannotStartThread, isSystemError } from '../errors.js';
import { sha256OfFd } from '../util/hash-fd.js';

/**
 * Packages up to this size are hashed on the calling thread: a worker thread costs ~0.1 s of CPU
 * to start (a V8 isolate) on x86 and more on ARM, while 16 MiB of SHA-256 costs ~15 ms with SHA
 * instructions and ~120 ms without; and while the install starts, the cores are busy with its
 * own threads (a 14.6 MB delta installed ~0.1 s sooner hashed here; docs/performance.md).
 */
export const INLINE_DIGEST_MAX = 16 << 20;

/**
 * The package's sha256 for the history. A large package is hashed on a worker thread at nice 19
 * (digest-worker.ts) with node's SHA-256, which uses the CPU's SHA extensions where it has them:
 * ~0.1 s of CPU for a 160 MB package where coreutils' sha256sum took ~0.45 s
 * (docs/performance.md). Started first thing, it runs on whatever CPU the install leaves idle.
 * A small one (INLINE_DIGEST_MAX) is read and hashed here, synchronously (util/hash-fd.ts).
 * Undefined when the file is not a regular file, cannot be read, or `signal` aborts it (a command
 * that ends before it needs the digest must not wait for it). Nothing here keeps the process alive.
 * `size`: the package's bytes as the install reads them (PackageSource.size(), its size when it
 * was opened): exactly those are hashed, never what its owner appends meanwhile (a sparse
 * terabyte would keep the install waiting for its history record with the lock held); a file
 * cut short meanwhile has no digest. Default: the file's size when it is opened here.
 */
export async function packageDigest(file: string, signal?: AbortSignal, size?: number): Promise<string | undefined> {
  if (signal?.aborted === true) return undefined;
  const small = await inlineDigest(file, signal, size);
  return small === LARGE ? workerDigest(file, signal, size) : small;
}

const LARGE = Symbol('large');

/** The digest of a small regular file, read here; LARGE for a regular file past INLINE_DIGEST_MAX. */
async function inlineDigest(file: string, signal?: AbortSignal, size?: number): Promise<string | undefined | typeof LARGE> {
  let fh;
  try {
    // O_NONBLOCK: opening a FIFO never waits for a writer (it is not hashed).
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if (isSystemError(err)) return undefined; // unreadable now: the history records no digest, the install decides
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const bytes = size ?? st.size;
    if (bytes > INLINE_DIGEST_MAX) return LARGE;
    // At most 16 MiB: read and hashed in one go, no thread-pool hand-off per read.
    return signal?.aborted === true ? undefined : sha256OfFd(fh.fd, Buffer.allocUnsafe(Math.max(1, Math.min(bytes, 1 << 20))), bytes);
  } catch (err) {
    if (isSystemError(err)) return undefined;
    throw err;
  } finally {
    await fh.close();
  }
}

function workerDigest(file: string, signal: AbortSignal | undefined, size: number | undefined): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve(undefined);
    let worker: Worker;
    try {
      worker = new Worker(new URL('./digest-worker.js', import.meta.url), { workerData: { file, size } });
    } catch (err) {
      if (!cannotStartThread(err)) throw err;
      return resolve(undefined); // no thread to be had: the history records no digest
    }
    worker.unref();
    const done = (v: string | undefined): void => {
      signal?.removeEventListener('abort', abort);
      resolve(v);
    };
    const abort = (): void => {
      void worker.terminate();
      done(undefined);
    };
    signal?.addEventListener('abort', abort, { once: true });
    worker.once('message', (v: unknown) => done(typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? v : undefined));
    worker.once('error', () => done(undefined));
    worker.once('exit', () => done(undefined));
  });
}
