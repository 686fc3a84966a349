/**
 * Worker-thread side of Precreator (precreate.ts): creates the listed files, empty, in order,
 * claiming each one first so the main thread never creates the same file. Shared state:
 * state[i] per file (FREE, WORKER, CREATED, FAILED, MAIN); state[n] = how far the main thread
 * is; state[n + 1] = stop.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { CREATED, FAILED, FREE, LOOKAHEAD, WORKER } from './precreate-states.js';
import { isSystemError } from '../errors.js';

const { paths, shared } = workerData as { paths: string[]; shared: SharedArrayBuffer };
const state = new Int32Array(shared);
const n = paths.length;
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

for (let i = 0; i < n; i++) {
  if (Atomics.load(state, n + 1) !== 0) break;
  // Stay at most LOOKAHEAD files ahead of the main thread (bounded work if the unpack fails).
  for (let at = Atomics.load(state, n); i - at > LOOKAHEAD; at = Atomics.load(state, n)) {
    Atomics.wait(state, n, at, 50);
    if (Atomics.load(state, n + 1) !== 0) break;
  }
  if (Atomics.load(state, n + 1) !== 0) break;
  if (Atomics.compareExchange(state, i, FREE, WORKER) !== FREE) continue; // the main thread got there first
  let outcome = CREATED;
  try {
    closeSync(openSync(paths[i] as string, CREATE, 0o600));
  } catch (err) {
    if (!isSystemError(err)) throw err;
    outcome = FAILED; // the main thread creates it itself and reports the real error
  }
  Atomics.store(state, i, outcome);
  Atomics.notify(state, i);
}
