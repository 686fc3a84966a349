import { FussyError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { newLength, packetHeader, type BodyLength } from './packet-length.js';
import { PacketGrammar } from './packet-grammar.js';

const TAG_LITERAL = 11;
/** Partial body length octet for 2^20 bytes (RFC 4880 §4.2.2.4: 224 + 20). */
const PART_BITS = 20;
const PART = 1 << PART_BITS;
/** Parts at least this large are left as they are (OpenPGP.js writes 512 KiB): no copy. */
const SMALL_PART = 64 * 1024;

/**
 * Walk a packet sequence (the package, or what came out of its compression or encryption) on
 * its way to OpenPGP.js, packet by packet:
 * - Literal data packets written with small partial body lengths are re-framed into 1 MiB parts.
 *   gpg writes data it reads from a pipe (`tar czf - | gpg --sign`, every package of the original
 *   Fussy) as 8 KiB partial-length pieces, and OpenPGP.js hands each piece on as its own chunk
 *   through several web streams: 20,000 chunks for a 160 MB package, measured 1.8 s to verify
 *   instead of 0.45 s at 1 MiB. The framing is not signed (a signature covers the literal
 *   packet's fields and content, RFC 4880 §5.2.4), so verification is unchanged; the content is
 *   copied once. Every other packet passes through byte for byte.
 * - Every packet must be one a package can hold, where it can hold it (packet-grammar.ts): what
 *   follows the end of the message is refused, the same rule as after the encrypted data or the
 *   compressed packet; the packets OpenPGP.js keeps in memory (signatures, session keys) are
 *   bounded before it reads them.
 * `where` names the sequence in messages ("the package", "the compressed data", ...).
 */
export async function* reframeLiterals(source: AsyncIterable<Uint8Array>, file: string, where = 'the package'): AsyncGenerator<Uint8Array> {
  const r = new ByteReader(source);
  const grammar = new PacketGrammar(file, where);
  let offset = 0;
  for (;;) {
    const head = await r.fill(6);
    if (head.length === 0) return;
    const h = packetHeader(head);
    if (h === undefined) {
      if ((head[0] as number) & 0x80 && head.length < 6) throw truncated(file);
      throw new FussyError('BAD_SIGNATURE', `${file}: byte ${offset} of ${where} is not the start of an OpenPGP packet`, { hint: 'the package is damaged or was tampered with; nothing was installed' });
    }
    grammar.next(h, offset);
    const { tag, headerLen, length } = h;
    if (length.kind === 'partial' && tag === TAG_LITERAL && length.length < SMALL_PART) {
      r.take(headerLen);
      offset += headerLen;
      for await (const c of reframeBody(r, length.length, file)) {
        offset += c.length; // re-framed: offsets after it count the new framing, close enough for a message
        yield c;
      }
      continue;
    }
    if (length.kind === 'indeterminate') {
      yield* r.rest(); // runs to the end of the sequence
      return;
    }
    for await (const c of passBody(r, headerLen, length, file)) {
      offset += c.length;
      yield c;
    }
  }
}

/** One packet (header and body, partial-length headers included) passed on as it is. */
async function* passBody(r: ByteReader, headerLen: number, length: Exclude<BodyLength, { kind: 'indeterminate' }>, file: string): AsyncGenerator<Uint8Array> {
  let left = headerLen + length.length;
  let partial = length.kind === 'partial';
  for (;;) {
    while (left > 0) {
      const c = await r.chunk(left);
      if (c.length === 0) throw truncated(file);
      left -= c.length;
      yield c;
    }
    if (!partial) return;
    const l = newLength(await r.fill(5));
    if (l === undefined) throw truncated(file);
    partial = l[0].kind === 'partial';
    left = l[1] + (l[0].kind === 'indeterminate' ? 0 : l[0].length);
  }
}

/** The body of a partial-length literal packet, as a new-format packet with 1 MiB parts. */
async function* reframeBody(r: ByteReader, firstPart: number, file: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from([0xc0 | TAG_LITERAL]);
  let left = firstPart;
  let partial = true;
  // The first part's buffer grows from what the first length promises up to a part: a small
  // package (gpg writes 8 KiB parts) does not cost 1 MiB; after a full part, parts are full size.
  let out = Buffer.allocUnsafe(1 + Math.min(PART, Math.max(firstPart, 64 << 10)));
  let fill = 0;
  let full: Buffer | undefined; // a complete part, sent once it is known not to be the last
  for (;;) {
    while (left > 0) {
      if (fill === PART) {
        full = out;
        out = Buffer.allocUnsafe(1 + PART);
        fill = 0;
      } else if (fill === out.length - 1) {
        const grown = Buffer.allocUnsafe(1 + Math.min(PART, fill * 4));
        out.copy(grown, 0, 0, 1 + fill);
        out = grown;
      }
      const n = await r.copyInto(out.subarray(1 + fill), Math.min(left, out.length - 1 - fill));
      if (n === 0) throw truncated(file);
      if (full !== undefined) {
        full[0] = 0xe0 | PART_BITS;
        yield full;
        full = undefined;
      }
      fill += n;
      left -= n;
    }
    if (!partial) break;
    const l = newLength(await r.fill(5));
    if (l === undefined || l[0].kind === 'indeterminate') throw truncated(file);
    r.take(l[1]);
    left = l[0].length;
    partial = l[0].kind === 'partial';
  }
  const last = Buffer.allocUnsafe(5);
  last[0] = 0xff;
  last.writeUInt32BE(fill, 1);
  yield last;
  if (fill > 0) yield out.subarray(1, 1 + fill);
}

function truncated(file: string): FussyError {
  return new FussyError('BAD_SIGNATURE', `${file}: the signed data ends in the middle of a packet (truncated)`, { hint: 'the package is damaged or was cut short; nothing was installed' });
}
