import { Worker } from 'node:worker_threads';
import { cannotStartThread } from '../errors.js';

/** Files at least this large are hashed on the lane; smaller ones as they are written (a round trip costs more than hashing them). */
export const LANE_MIN = 256 * 1024;
/** Files on the lane at once (each keeps its descriptor open until its digest); past it, a file is hashed as written. */
const MAX_FILES = 64;
/** Bytes of the files on the lane at once: what the install may wait for at the end. */
const MAX_BYTES = 256 << 20;
/** The lane is told how far a file is written at most this often: a message per MiB. */
const STEP = 1 << 20;
/**
 * Pieces of memory shared with the thread (SLOTS of SLOT bytes, 4 MiB in all): a file's bytes
 * read into one, written from it and hashed in it are hashed without being read back.
 */
const SLOTS = 4;
const SLOT = 1 << 20;

interface Pieces {
  shared: SharedArrayBuffer;
  /** Per piece: 1 while the thread has it to hash, else 0 (the main thread sets it, the thread clears it). */
  busy: Int32Array;
  views: Buffer[];
}

/**
 * The pieces a lane left when its thread ended, for the process's next lane: a long-lived process
 * (the library in a daemon) allocates them once, not 4 MiB per install (each a fresh mapping that
 * glibc kept: +10-15 MB of RSS over 100 installs in test/api/long-lived).
 */
let spare: Pieces | undefined;

/** A file on the lane. */
export interface LaneFile {
  /** `n` more bytes of it have been written (the lane may read them now). */
  wrote(n: number): void;
  /**
   * A piece of memory shared with the lane, for the file's next bytes (at most its length), or
   * undefined when the next one is not free yet: read or copy them into it, write them to the
   * file from it, then tell fed(). The lane hashes them there, without reading them back.
   */
  piece(): Buffer | undefined;
  /** The first `n` bytes of the piece just given are the file's next bytes, written. */
  fed(n: number): void;
  /** It is complete (its size as opened): `digest` settles with its sha256. */
  end(): void;
  /** It will not be completed: `digest` rejects at once; the thread may still read it until stop(). */
  cancel(): void;
  /** The sha256 (hex) of its `size` bytes, or why there is none (a shorter file, a read error, cancelled, the lane stopped). */
  digest: Promise<string>;
}

/**
 * SHA-256 of the files an unpack writes, on a worker thread (hash-lane-worker.ts) that reads
 * each one back from the page cache through the very descriptor that writes it, as far as it is
 * written, while the main thread writes on: hashing was as much of the main thread's time as
 * copying when it assembled a large file from a patch, and a large file's share of a full
 * install (docs/performance.md). The caller keeps each descriptor open until its digest settles,
 * and closes the ones still open only after stop() (the thread reads them). The files on the
 * lane are bounded (MAX_FILES, MAX_BYTES): past it the caller hashes as it writes. Bytes the
 * main thread reads anyway (a patch's copies of a base file) go through memory shared with the
 * thread instead (piece/fed): hashed where they were read, they are not read a second time.
 */
export class HashLane {
  readonly #worker: Worker;
  #ids = 0;
  readonly #waiting = new Map<number, { size: number; resolve: (hex: string) => void; reject: (err: Error) => void }>();
  #bytes = 0;
  #failure: Error | undefined;
  readonly #exited: Promise<void>;
  /** Taken when a file first asks for one (a full install's lane never does), then sent to the thread. */
  #pieces: Pieces | undefined;
  #next = 0;

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
    // Digests fail only once the thread is gone ('exit' comes after 'error'): a caller may then
    // close the descriptors it was reading.
    let died: Error | undefined;
    this.#exited = new Promise((resolve) => {
      this.#worker.once('error', (err) => (died = err));
      this.#worker.once('exit', () => {
        spare ??= this.#pieces; // the thread is gone: nothing else reads them
        this.#fail(died ?? new Error('it ended'));
        resolve();
      });
    });
  }

  /** Whether a file of `size` bytes is best hashed here (large, and the lane has room). */
  takes(size: number): boolean {
    return this.#failure === undefined && size >= LANE_MIN && this.#waiting.size < MAX_FILES && this.#bytes + size <= MAX_BYTES;
  }

  /** Put the file being written through `fd` (`size` bytes when complete) on the lane; the caller keeps `fd` open until `digest` settles. */
  open(fd: number, size: number): LaneFile {
    const id = ++this.#ids;
    let written = 0;
    let told = 0;
    const digest = new Promise<string>((resolve, reject) => {
      if (this.#failure !== undefined) return reject(this.#failure);
      this.#waiting.set(id, { size, resolve, reject });
      this.#bytes += size;
      this.#worker.ref();
    });
    const post = (m: unknown[]): void => {
      if (this.#waiting.has(id)) this.#worker.postMessage(m);
    };
    return {
      wrote: (n) => {
        written += n;
        if (written - told < STEP) return;
        told = written;
        post([id, fd, written]);
      },
      piece: () => (this.#waiting.has(id) ? this.#piece() : undefined),
      fed: (n) => {
        written += n;
        if (!this.#waiting.has(id)) return;
        const k = this.#next;
        this.#next = (k + 1) % SLOTS;
        Atomics.store((this.#pieces as Pieces).busy, k, 1);
        told = written;
        // The thread reads back what was written since it was last told, then hashes the piece.
        this.#worker.postMessage([id, fd, written, false, k, n]);
      },
      end: () => post([id, fd, size, true]),
      cancel: () => {
        const w = this.#waiting.get(id);
        post([id]);
        if (w === undefined) return;
        this.#settled(id, w.size);
        w.reject(new Error('cancelled'));
      },
      digest,
    };
  }

  /** End the thread now, whatever it is doing; resolves once it has (its descriptors are then free to close). */
  stop(): Promise<void> {
    this.#worker.terminate().catch((err: unknown) => (this.#failure ??= err as Error));
    return this.#exited;
  }

  /**
   * The next piece if the thread is done with it (pieces are handed out and hashed in turn), else
   * undefined: never waited for. Waiting would hold the main thread to the hash's pace (on a CPU
   * without SHA instructions, ~60 MB/s) and to a thread that may be gone; the bytes written
   * without a piece are read back, and written sooner, the disk flushes them sooner
   * (docs/performance.md).
   */
  #piece(): Buffer | undefined {
    if (this.#failure !== undefined) return undefined;
    if (this.#pieces === undefined) {
      const p = spare ?? newPieces();
      spare = undefined;
      p.busy.fill(0); // a thread that was stopped may have left one busy
      this.#pieces = p;
      this.#worker.postMessage({ shared: p.shared, busy: p.busy.buffer, slot: SLOT }); // before any message naming a piece
    }
    const k = this.#next;
    return Atomics.load(this.#pieces.busy, k) === 0 ? this.#pieces.views[k] : undefined; // only the thread clears it
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

function newPieces(): Pieces {
  const shared = new SharedArrayBuffer(SLOTS * SLOT);
  return { shared, busy: new Int32Array(new SharedArrayBuffer(SLOTS * 4)), views: Array.from({ length: SLOTS }, (_, k) => Buffer.from(shared, k * SLOT, SLOT)) };
}
