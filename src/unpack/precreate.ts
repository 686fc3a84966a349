import { Worker } from 'node:worker_threads';
import { CREATED, FREE, MAIN, WORKER } from './precreate-states.js';

/**
 * Creates the files an unpack is about to write, empty, on a worker thread running ahead of
 * the main thread. Creating an inode is the costliest step of a fresh install on ext4 (tens to
 * hundreds of µs of kernel time each, more right after large deletes); here it runs on the
 * other core while the main thread verifies, parses, hashes and writes. Only used with a
 * manifest (the list of names comes from it, checked before use), in the private staging dir.
 * claim() decides, without locks or races, who creates file i: if the worker has not started
 * on it, the main thread takes it over; if the worker is creating it, the main thread waits.
 */
export class Precreator {
  readonly #worker: Worker;
  readonly #state: Int32Array;
  readonly #n: number;
  readonly #exited: Promise<void>;

  constructor(paths: string[]) {
    this.#n = paths.length;
    const shared = new SharedArrayBuffer(4 * (paths.length + 2));
    this.#state = new Int32Array(shared);
    this.#worker = new Worker(new URL('./precreate-worker.js', import.meta.url), { workerData: { paths, shared } });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', () => resolve());
      this.#worker.once('error', () => resolve()); // a dead worker only means the main thread creates
    });
  }

  /** true: file i exists (created by the worker, empty, 0600); false: the caller must create it. */
  claim(i: number): boolean {
    Atomics.store(this.#state, this.#n, i);
    Atomics.notify(this.#state, this.#n);
    if (Atomics.compareExchange(this.#state, i, FREE, MAIN) === FREE) return false;
    for (let waited = 0; Atomics.load(this.#state, i) === WORKER; waited++) {
      // One create takes microseconds to milliseconds; a minute means the worker is gone.
      if (waited === 60) throw new Error(`the file-creating worker stopped while creating file #${i}`);
      Atomics.wait(this.#state, i, WORKER, 1000);
    }
    return Atomics.load(this.#state, i) === CREATED; // FAILED: the caller creates it and sees why
  }

  /** Stop the worker and wait until it has let go of the staging directory. */
  async finish(): Promise<void> {
    Atomics.store(this.#state, this.#n + 1, 1);
    Atomics.notify(this.#state, this.#n);
    await this.#exited;
  }
}
