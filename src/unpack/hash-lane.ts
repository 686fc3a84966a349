import { Worker } from 'node:worker_threads';
import { cannotStartThread } from '../errors.js';

/** Files at least this large are hashed on the lane; smaller ones as they are written (a round trip costs more than hashing them). */
export const LANE_MIN = 256 * 1024;
/** Files waiting for the lane at once (each keeps its descriptor open); past it, a file is hashed as written. */
const MAX_WAITING = 64;
/** Bytes waiting for the lane at once: the install waits for the backlog at the end. */
const MAX_WAITING_BYTES = 256 << 20;

/**
 * SHA-256 of the files an unpack has just written, on a worker thread (hash-lane-worker.ts),
 * read back from the page cache through the very descriptor that wrote them, while the main
 * thread goes on parsing and writing. Hashing was most of the main thread's time when it
 * assembled a large file from a patch, and a large file's share of a full install
 * (docs/performance.md). The caller keeps each descriptor open until its digest settles, and
 * closes the ones still waiting only after stop() (the thread reads them). The backlog is
 * bounded (MAX_WAITING files, MAX_WAITING_BYTES): past it the caller hashes as it writes.
 */
export class HashLane {
  readonly #worker: Worker;
  #ids = 0;
  readonly #waiting = new Map<number, { size: number; resolve: (hex: string) => void; reject: (err: Error) => void }>();
  #bytes = 0;
  #failure: Error | undefined;
  readonly #exited: Promise<void>;

  /** A lane, or undefined when no thread can be had (resource limits): files are hashed as written then. */
  static start(): HashLane | undefined {
    try {
      return new HashLane();
    } catch (err) {
      if (!cannotStartThread(err)) throw err;
      return undefined;
    }
  }

  private constructor() {
    this.#worker = new Worker(new URL('./hash-lane-worker.js', import.meta.url));
    this.#worker.unref(); // referenced only while a digest is due
    this.#worker.on('message', (m: unknown) => {
      const [id, hex, why] = m as [number, string | null, string?];
      const w = this.#waiting.get(id);
      if (w === undefined) return;
      this.#settled(id, w.size);
      if (hex === null) w.reject(new Error(`the hashing thread could not read the file: ${why ?? 'unknown'}`));
      else w.resolve(hex);
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('error', (err) => this.#fail(err));
      this.#worker.once('exit', () => {
        this.#fail(new Error('it ended'));
        resolve();
      });
    });
  }

  /** Whether a file of `size` bytes is best hashed here (large, and the backlog has room). */
  takes(size: number): boolean {
    return this.#failure === undefined && size >= LANE_MIN && this.#waiting.size < MAX_WAITING && this.#bytes + size <= MAX_WAITING_BYTES;
  }

  /** The sha256 (hex) of the first `size` bytes of `fd`, which the caller keeps open until this settles. */
  digest(fd: number, size: number): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.#failure !== undefined) return reject(this.#failure);
      const id = ++this.#ids;
      this.#waiting.set(id, { size, resolve, reject });
      this.#bytes += size;
      this.#worker.ref();
      this.#worker.postMessage([id, fd, size]);
    });
  }

  /** End the thread now, whatever it is doing; resolves once it has (its descriptors are then free to close). */
  stop(): Promise<void> {
    void this.#worker.terminate();
    return this.#exited;
  }

  #settled(id: number, size: number): void {
    this.#waiting.delete(id);
    this.#bytes -= size;
    if (this.#waiting.size === 0) this.#worker.unref();
  }

  #fail(err: Error): void {
    this.#failure ??= new Error(`the hashing thread stopped: ${err.message}`, { cause: err });
    for (const [id, w] of this.#waiting) {
      this.#settled(id, w.size);
      w.reject(this.#failure);
    }
  }
}
