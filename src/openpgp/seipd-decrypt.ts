/**
 * Decrypts one SEIPDv1 packet (RFC 4880 §5.13, RFC 9580 §5.13.1) of a package file with AES in
 * OpenPGP CFB mode (zero IV, no resync) and checks its modification detection code: SHA-1 over
 * the random prefix, the plaintext and the MDC packet's two header bytes must equal the 20 bytes
 * at the end. Shared by the worker thread (seipd-worker.ts) and the in-process path for small
 * packages (seipd.ts): the plaintext (prefix and MDC packet removed) comes out in pieces of at
 * most 1 MiB, and none of it is trusted before the generator has returned.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import { fstatSync, readSync } from 'node:fs';
import { packetHeader, newLength, type BodyLength } from './packet-length.js';
import { SEIPD_TAG } from './seipd-protocol.js';

const MDC_LEN = 22; // 0xD3 0x14 + SHA-1
const BLOCK = 16;
const PIECE = 1 << 20;

export type FailureKind = 'format' | 'truncated' | 'quick-check' | 'mdc';

export class SeipdFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A plaintext piece, and whether it is the only user of its ArrayBuffer from its start (the
 * worker may then transfer that buffer instead of copying the piece).
 */
export type Piece = [Buffer, boolean];

/**
 * The plaintext of the SEIPDv1 packet at `offset` of the open file `fd`, piece by piece, reading
 * nothing at or past `end` (the package's size when it was opened; default its size now). Throws
 * SeipdFailure on a malformed, truncated or modified packet, or a wrong session key; it returns
 * only when the MDC holds and nothing follows the packet. A reader that stops early simply stops
 * iterating: what it read is then unverified.
 */
export function* seipdPlaintext(fd: number, offset: number, cipher: string, key: Uint8Array, end: number = fstatSync(fd).size): Generator<Piece, void> {
  const decipher = createDecipheriv(cipher, key, Buffer.alloc(BLOCK));
  const sha1 = createHash('sha1');
  const reader = new PacketBody(fd, offset, end);
  let version: number | undefined;
  let prefix: Buffer | undefined = Buffer.alloc(0); // until its BLOCK + 2 bytes are complete
  let tail = Buffer.alloc(0); // the last MDC_LEN bytes seen: possibly the MDC packet
  for (let ct of reader.pieces()) {
    if (version === undefined) {
      version = ct[0];
      if (version !== 1) throw new SeipdFailure('format', `SEIPD version ${String(version)} is not version 1`);
      ct = ct.subarray(1);
    }
    let pt = decipher.update(ct);
    if (prefix !== undefined) {
      const need = BLOCK + 2 - prefix.length;
      prefix = Buffer.concat([prefix, pt.subarray(0, need)]);
      pt = pt.subarray(need);
      if (prefix.length < BLOCK + 2) continue;
      // The last two bytes of the random prefix repeat the two before them: a wrong key shows here.
      if (prefix[BLOCK] !== prefix[BLOCK - 2] || prefix[BLOCK + 1] !== prefix[BLOCK - 1]) throw new SeipdFailure('quick-check', 'the session key does not decrypt this package');
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
    // The decipher's output owns its memory (not node's shared small-buffer pool), and the tail
    // kept from it is a copy: the body may be moved.
    const movable = pt.byteOffset === 0 && pt.buffer.byteLength === pt.length;
    for (const piece of [[head, false], [body, movable]] as Piece[]) {
      if (piece[0].length === 0) continue;
      sha1.update(piece[0]);
      yield piece;
    }
  }
  decipher.final();
  // Nothing may follow the encrypted data: appended bytes are no part of what was encrypted.
  if (reader.pos !== end) throw new SeipdFailure('format', `${end - reader.pos} bytes follow the encrypted data`);
  if (prefix !== undefined || tail.length < MDC_LEN) throw new SeipdFailure('truncated', 'the encrypted data is too short to hold its integrity check');
  if (tail[0] !== 0xd3 || tail[1] !== 0x14) throw new SeipdFailure('mdc', 'no modification detection code at the end of the encrypted data');
  sha1.update(tail.subarray(0, 2));
  if (!sha1.digest().equals(tail.subarray(2))) throw new SeipdFailure('mdc', 'modification detected: the encrypted data does not match its SHA-1 integrity check');
}

/** The body of the packet at `offset`, partial lengths removed, read with one reused buffer. */
class PacketBody {
  pos: number;
  // What is allocated per piece is only the decrypted piece (the heap stays small). No larger
  // than the file's rest: a small package does not cost 1 MiB.
  readonly #buf: Buffer;

  constructor(
    readonly fd: number,
    readonly offset: number,
    /** Nothing at or past it is read: the file ends here, whatever is appended to it meanwhile. */
    readonly end: number,
  ) {
    this.pos = offset;
    this.#buf = Buffer.allocUnsafe(Math.max(1, Math.min(PIECE, end - offset)));
  }

  /** Up to `n` bytes at the current position into the buffer at `at`; how many were read. */
  #readInto(at: number, n: number): number {
    const got = this.#read(this.#buf, at, n, this.pos);
    this.pos += got;
    return got;
  }

  /** readSync at `pos`, never past `end`. */
  #read(buf: Buffer, at: number, n: number, pos: number): number {
    const len = Math.min(n, this.end - pos);
    return len > 0 ? readSync(this.fd, buf, at, len, pos) : 0;
  }

  /**
   * The body in pieces of PIECE bytes (the last one shorter): gpg writes 8 KiB parts, and a step
   * per part would cost more than the decryption. Each piece is valid until the next is asked for.
   */
  *pieces(): Generator<Buffer> {
    const head = Buffer.allocUnsafe(6);
    const h = packetHeader(head.subarray(0, this.#read(head, 0, 6, this.pos)));
    if (h === undefined || h.tag !== SEIPD_TAG) throw new SeipdFailure('format', 'not an integrity-protected encrypted data packet');
    this.pos = this.offset + h.headerLen;
    let length: BodyLength = h.length;
    let fill = 0;
    for (;;) {
      if (length.kind === 'indeterminate') {
        for (let got = this.#readInto(fill, this.#buf.length - fill); got > 0; got = this.#readInto(fill, this.#buf.length - fill)) {
          fill += got;
          if (fill === this.#buf.length) {
            yield this.#buf;
            fill = 0;
          }
        }
        break;
      }
      for (let left = length.length; left > 0; ) {
        const got = this.#readInto(fill, Math.min(left, this.#buf.length - fill));
        if (got === 0) throw new SeipdFailure('truncated', 'the encrypted data ends early (truncated file)');
        left -= got;
        fill += got;
        if (fill === this.#buf.length) {
          yield this.#buf;
          fill = 0;
        }
      }
      if (length.kind === 'fixed') break;
      const lb = Buffer.allocUnsafe(5);
      const l = newLength(lb.subarray(0, this.#read(lb, 0, 5, this.pos)));
      if (l === undefined) throw new SeipdFailure('truncated', 'the encrypted data ends inside a length header (truncated file)');
      this.pos += l[1];
      length = l[0];
    }
    if (fill > 0) yield this.#buf.subarray(0, fill);
  }
}
