/**
 * Worker-thread side of decryptSeipd (seipd.ts): decrypts one SEIPDv1 packet (RFC 4880 §5.13,
 * RFC 9580 §5.13.1) of a package file with AES in OpenPGP CFB mode (zero IV, no resync) and
 * checks its modification detection code: SHA-1 over the random prefix, the plaintext and the
 * MDC packet's two header bytes must equal the 20 bytes at the end. The plaintext (prefix and
 * MDC packet removed) is sent to the main thread in transferred 1 MiB pieces, at most IN_FLIGHT
 * of them unread at a time; nothing of it is trusted before 'end' says the MDC holds.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { packetHeader, newLength, type BodyLength } from './packet-length.js';
import { IN_FLIGHT, SEIPD_TAG, type SeipdMessage, type SeipdWork } from './seipd-protocol.js';

const { file, offset, cipher, key, shared } = workerData as SeipdWork;
const state = new Int32Array(shared); // [0]: pieces sent and not yet read; [1]: stop
const post = (m: SeipdMessage, transfer: ArrayBuffer[] = []): void => parentPort?.postMessage(m, transfer);
const MDC_LEN = 22; // 0xD3 0x14 + SHA-1
const BLOCK = 16;
const PIECE = 1 << 20;

class Failure extends Error {
  constructor(
    readonly kind: 'format' | 'truncated' | 'quick-check' | 'mdc',
    message: string,
  ) {
    super(message);
  }
}

const fd = openSync(file, 'r');
let pos = offset;
// One read buffer for the whole packet: what the thread allocates per piece is only the
// decrypted piece, which is transferred to the main thread (the thread's heap stays small).
const readBuffer = Buffer.allocUnsafe(PIECE);
/** Up to `n` bytes at the current position into readBuffer at `at`; how many were read. */
function readInto(at: number, n: number): number {
  const got = readSync(fd, readBuffer, at, n, pos);
  pos += got;
  return got;
}

/**
 * The packet's body, partial lengths removed, in pieces of PIECE bytes (the last one shorter):
 * gpg writes 8 KiB parts, and a message per part would cost more than the decryption. Each piece
 * is valid until the next one is asked for.
 */
function* body(): Generator<Buffer> {
  const head = Buffer.allocUnsafe(6);
  const h = packetHeader(head.subarray(0, readSync(fd, head, 0, 6, pos)));
  if (h === undefined || h.tag !== SEIPD_TAG) throw new Failure('format', 'not an integrity-protected encrypted data packet');
  pos = offset + h.headerLen;
  let length: BodyLength = h.length;
  let fill = 0;
  for (;;) {
    if (length.kind === 'indeterminate') {
      for (let got = readInto(fill, PIECE - fill); got > 0; got = readInto(fill, PIECE - fill)) {
        fill += got;
        if (fill === PIECE) {
          yield readBuffer;
          fill = 0;
        }
      }
      break;
    }
    for (let left = length.length; left > 0; ) {
      const got = readInto(fill, Math.min(left, PIECE - fill));
      if (got === 0) throw new Failure('truncated', 'the encrypted data ends early (truncated file)');
      left -= got;
      fill += got;
      if (fill === PIECE) {
        yield readBuffer;
        fill = 0;
      }
    }
    if (length.kind === 'fixed') break;
    const lb = Buffer.allocUnsafe(5);
    const l = newLength(lb.subarray(0, readSync(fd, lb, 0, 5, pos)));
    if (l === undefined) throw new Failure('truncated', 'the encrypted data ends inside a length header (truncated file)');
    pos += l[1];
    length = l[0];
  }
  if (fill > 0) yield readBuffer.subarray(0, fill);
}

/**
 * Hand a piece to the main thread, waiting while IN_FLIGHT are unread; false when told to stop.
 * `move`: the piece starts its own ArrayBuffer, which nothing else uses: transfer it.
 */
function send(piece: Buffer, move: boolean): boolean {
  while (Atomics.load(state, 0) >= IN_FLIGHT) {
    if (Atomics.load(state, 1) !== 0) return false;
    Atomics.wait(state, 0, Atomics.load(state, 0), 100);
  }
  if (Atomics.load(state, 1) !== 0) return false;
  const chunk = move ? new Uint8Array(piece.buffer, 0, piece.length) : Uint8Array.from(piece);
  Atomics.add(state, 0, 1);
  post({ type: 'data', chunk }, [chunk.buffer as ArrayBuffer]);
  return true;
}

function run(): void {
  const decipher = createDecipheriv(cipher, key, Buffer.alloc(BLOCK));
  const sha1 = createHash('sha1');
  let version: number | undefined;
  let prefix: Buffer | undefined = Buffer.alloc(0); // until its BLOCK + 2 bytes are complete
  let tail = Buffer.alloc(0); // the last MDC_LEN bytes seen: possibly the MDC packet
  for (let ct of body()) {
    if (Atomics.load(state, 1) !== 0) return;
    if (version === undefined) {
      version = ct[0];
      if (version !== 1) throw new Failure('format', `SEIPD version ${String(version)} is not version 1`);
      ct = ct.subarray(1);
    }
    let pt = decipher.update(ct);
    if (prefix !== undefined) {
      const need = BLOCK + 2 - prefix.length;
      prefix = Buffer.concat([prefix, pt.subarray(0, need)]);
      pt = pt.subarray(need);
      if (prefix.length < BLOCK + 2) continue;
      // The last two bytes of the random prefix repeat the two before them: a wrong key shows here.
      if (prefix[BLOCK] !== prefix[BLOCK - 2] || prefix[BLOCK + 1] !== prefix[BLOCK - 1]) throw new Failure('quick-check', 'the session key does not decrypt this package');
      sha1.update(prefix);
      prefix = undefined;
    }
    // Hold back the last MDC_LEN bytes: they are the MDC packet if the data ends here. The
    // bytes held back from the piece before go out first, then this piece without its tail.
    const all = Buffer.concat([tail, pt.subarray(0, Math.min(pt.length, MDC_LEN))]);
    if (tail.length + pt.length <= MDC_LEN) {
      tail = all;
      continue;
    }
    const fromTail = all.length - MDC_LEN; // how much of the old tail (and the piece's head) is data
    const head = pt.length > MDC_LEN ? tail : all.subarray(0, fromTail);
    const body = pt.length > MDC_LEN ? pt.subarray(0, pt.length - MDC_LEN) : pt.subarray(0, 0);
    tail = Buffer.from(pt.length > MDC_LEN ? pt.subarray(pt.length - MDC_LEN) : all.subarray(fromTail));
    // The decipher's output owns its memory (not node's shared small-buffer pool): moved, not copied.
    const movable = pt.byteOffset === 0 && pt.buffer.byteLength === pt.length;
    for (const [out, move] of [[head, false], [body, movable]] as const) {
      if (out.length === 0) continue;
      sha1.update(out);
      if (!send(out, move)) return;
    }
  }
  decipher.final();
  // Nothing may follow the encrypted data: appended bytes are no part of what was encrypted.
  const size = fstatSync(fd).size;
  if (pos !== size) throw new Failure('format', `${size - pos} bytes follow the encrypted data`);
  if (prefix !== undefined || tail.length < MDC_LEN) throw new Failure('truncated', 'the encrypted data is too short to hold its integrity check');
  if (tail[0] !== 0xd3 || tail[1] !== 0x14) throw new Failure('mdc', 'no modification detection code at the end of the encrypted data');
  sha1.update(tail.subarray(0, 2));
  if (!sha1.digest().equals(tail.subarray(2))) throw new Failure('mdc', 'modification detected: the encrypted data does not match its SHA-1 integrity check');
  post({ type: 'end' });
}

try {
  run();
} catch (err) {
  post({ type: 'error', kind: err instanceof Failure ? err.kind : 'io', message: (err as Error).message });
} finally {
  closeSync(fd);
}
