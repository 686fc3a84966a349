/**
 * Worker-thread side of HashLane (hash-lane.ts): the sha256 of files the main thread is writing,
 * read back through the very descriptors that write them, as far as the main thread says it has
 * written ([id, fd, upTo]), and ended at their size ([id, fd, size, true]: the answer [id, hex],
 * or [id, null, why] when the file is shorter or cannot be read); [id] drops a file. One reused
 * 1 MiB buffer. [id, fd, upTo, false, k, n]: the last `n` bytes up to `upTo` are in shared piece
 * `k` (hash-lane.ts; the pieces come first, once, as { shared, busy, slot }), hashed there; the
 * piece is handed back (busy[k] = 0) whatever happens.
 */
import { createHash, type Hash } from 'node:crypto';
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

const buf = Buffer.allocUnsafe(1 << 20);
/** The pieces, sent once by the first file that uses them ({ shared, busy, slot }). */
let pieces: { shared: SharedArrayBuffer; busy: Int32Array; slot: number } | undefined;
const files = new Map<number, { hash: Hash; done: number }>();
/** Files whose failure was answered: their later messages are dropped. */
const failed = new Set<number>();

/** Hash `fd` from where its file got to up to `upTo`; false if the file ends first. */
function advance(f: { hash: Hash; done: number }, fd: number, upTo: number): boolean {
  while (f.done < upTo) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, upTo - f.done), f.done);
    if (n === 0) return false;
    f.hash.update(buf.subarray(0, n));
    f.done += n;
  }
  return true;
}

parentPort?.on('message', (m: unknown) => {
  if (!Array.isArray(m)) {
    const p = m as { shared: SharedArrayBuffer; busy: SharedArrayBuffer; slot: number };
    pieces = { shared: p.shared, busy: new Int32Array(p.busy), slot: p.slot };
    return;
  }
  const [, , , , k] = m as [number, number?, number?, boolean?, number?];
  try {
    onMessage(m);
  } finally {
    if (k !== undefined && pieces !== undefined) {
      Atomics.store(pieces.busy, k, 0);
      Atomics.notify(pieces.busy, k);
    }
  }
});

function onMessage(m: unknown): void {
  const [id, fd, upTo, last, k, n] = m as [number, number?, number?, boolean?, number?, number?];
  if (failed.has(id)) {
    if (last === true || fd === undefined) failed.delete(id);
    return;
  }
  if (fd === undefined || upTo === undefined) return void files.delete(id);
  let f = files.get(id);
  if (f === undefined) files.set(id, (f = { hash: createHash('sha256'), done: 0 }));
  let answer: [number, string | null, string?] | undefined;
  try {
    let whole: boolean;
    if (k === undefined || n === undefined) whole = advance(f, fd, upTo);
    else if ((whole = advance(f, fd, upTo - n))) {
      if (pieces === undefined) throw new Error('a piece came before the pieces');
      f.hash.update(new Uint8Array(pieces.shared, k * pieces.slot, n));
      f.done += n;
    }
    // A file shorter than was written fails at once (a piece's bytes are never skipped over).
    if (!whole) answer = [id, null, 'it is shorter than was written'];
    else if (last === true) answer = [id, f.hash.digest('hex')];
  } catch (err) {
    answer = [id, null, (err as Error).message];
  }
  if (answer === undefined) return;
  files.delete(id);
  if (answer[1] === null && last !== true) failed.add(id);
  parentPort?.postMessage(answer);
}
