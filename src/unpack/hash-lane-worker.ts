/**
 * Worker-thread side of HashLane (hash-lane.ts): the sha256 of the first `size` bytes of each
 * descriptor it is sent (a file of the staging tree the main thread has just written and keeps
 * open until the answer), in order, with one reused 1 MiB buffer. The answer is [id, hex], or
 * [id, null, why] when the file is shorter or cannot be read.
 */
import { parentPort } from 'node:worker_threads';
import { sha256OfFirst } from '../util/hash-fd.js';

const buf = Buffer.allocUnsafe(1 << 20);
parentPort?.on('message', (m: unknown) => {
  const [id, fd, size] = m as [number, number, number];
  let answer: [number, string | null, string?];
  try {
    const hex = sha256OfFirst(fd, size, buf);
    answer = hex === undefined ? [id, null, 'it is shorter than was written'] : [id, hex];
  } catch (err) {
    answer = [id, null, (err as Error).message];
  }
  parentPort?.postMessage(answer);
});
