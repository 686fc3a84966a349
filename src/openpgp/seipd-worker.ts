/**
 * Worker-thread side of decryptSeipd (seipd.ts) for large packages: runs seipdPlaintext
 * (seipd-decrypt.ts) and sends the plaintext to the main thread in transferred pieces of at most
 * 1 MiB, at most IN_FLIGHT of them unread at a time; nothing of it is trusted before 'end' says
 * the MDC holds.
 */
import '../util/quiet-warnings.js';
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { SeipdFailure, seipdPlaintext } from './seipd-decrypt.js';
import { IN_FLIGHT, type SeipdMessage, type SeipdWork } from './seipd-protocol.js';

const { file, offset, cipher, key, end, shared } = workerData as SeipdWork;
const state = new Int32Array(shared); // [0]: pieces sent and not yet read; [1]: stop
const post = (m: SeipdMessage, transfer: ArrayBuffer[] = []): void => parentPort?.postMessage(m, transfer);
const stopped = (): boolean => Atomics.load(state, 1) !== 0;

/**
 * Hand a piece to the main thread, waiting while IN_FLIGHT are unread; false when told to stop.
 * `move`: the piece starts its own ArrayBuffer, which nothing else uses: transfer it.
 */
function send(piece: Buffer, move: boolean): boolean {
  while (Atomics.load(state, 0) >= IN_FLIGHT) {
    if (stopped()) return false;
    Atomics.wait(state, 0, Atomics.load(state, 0), 100);
  }
  if (stopped()) return false;
  const chunk = move ? new Uint8Array(piece.buffer, 0, piece.length) : Uint8Array.from(piece);
  Atomics.add(state, 0, 1);
  post({ type: 'data', chunk }, [chunk.buffer as ArrayBuffer]);
  return true;
}

const fd = openSync(file, 'r');
try {
  let sent = true;
  for (const [piece, move] of seipdPlaintext(fd, offset, cipher, key, end)) if (!(sent = send(piece, move))) break;
  if (sent) post({ type: 'end' }); // the generator returned: the MDC holds
} catch (err) {
  post({ type: 'error', kind: err instanceof SeipdFailure ? err.kind : 'io', message: (err as Error).message });
} finally {
  closeSync(fd);
}
