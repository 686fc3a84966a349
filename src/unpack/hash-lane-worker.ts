/**
 * Worker-thread side of HashLane (hash-lane.ts): the sha256 of files the main thread is writing,
 * read back through the very descriptors that write them, as far as the main thread says it has
 * written ([id, fd, upTo]), and ended at their size ([id, fd, size, true]: the answer [id, hex],
 * or [id, null, why] when the file is shorter or cannot be read); [id] drops a file. One reused
 * 1 MiB buffer.
 */
import { createHash, type Hash } from 'node:crypto';
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

const buf = Buffer.allocUnsafe(1 << 20);
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
  const [id, fd, upTo, last] = m as [number, number?, number?, boolean?];
  if (failed.has(id)) {
    if (last === true || fd === undefined) failed.delete(id);
    return;
  }
  if (fd === undefined || upTo === undefined) return void files.delete(id);
  let f = files.get(id);
  if (f === undefined) files.set(id, (f = { hash: createHash('sha256'), done: 0 }));
  let answer: [number, string | null, string?] | undefined;
  try {
    const whole = advance(f, fd, upTo);
    if (last === true) answer = whole ? [id, f.hash.digest('hex')] : [id, null, 'it is shorter than was written'];
  } catch (err) {
    answer = [id, null, (err as Error).message];
  }
  if (answer === undefined) return;
  files.delete(id);
  if (answer[1] === null && last !== true) failed.add(id);
  parentPort?.postMessage(answer);
});
