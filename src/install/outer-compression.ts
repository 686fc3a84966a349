import { createInflate, createInflateRaw, type Inflate, type InflateRaw } from 'node:zlib';
import { FussyError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { INFLATE_STREAM_OPTIONS, throughZlib } from '../util/zlib-pipe.js';
import { newLength, packetHeader, type BodyLength } from './packet-length.js';
import { reframeLiterals } from './reframe-literal.js';

/** RFC 4880 §5.6 Compressed Data Packet: tag 8; algorithm 1 = ZIP (raw deflate), 2 = ZLIB. */
const TAG_COMPRESSED = 8;
const TAG_ONE_PASS_SIGNATURE = 4;
const INFLATERS: Record<number, (() => Inflate | InflateRaw) | undefined> = {
  1: () => createInflateRaw(INFLATE_STREAM_OPTIONS),
  2: () => createInflate(INFLATE_STREAM_OPTIONS),
};

/**
 * Packages made by the original pipeline (`tar czf - | gpg --sign`) wrap everything in an
 * OpenPGP compressed packet (ZIP by default). OpenPGP.js inflates it in JavaScript at ~60 MB/s
 * and buffers heavily (PERF-NOTES: 6.1 s and 214 MB for a 188 MB tree); node's zlib does it on
 * the thread pool at ~400 MB/s. So when the message's outermost packet is a ZIP or ZLIB
 * compressed packet, its body is inflated here and the inner packets (one-pass signature,
 * literal data, signature) are handed on as the message. Signatures cover the literal data,
 * not the compression, so verification is unchanged; the inflated size is capped (bomb guard, as
 * maxDecompressedMessageSize for OpenPGP.js). Inflated or not, a signed message's literal packet
 * is re-framed into 1 MiB parts (reframe-literal.ts); anything else (encrypted messages, garbage)
 * passes through untouched.
 */
export async function* inflateOuterLayer(source: AsyncIterable<Uint8Array>, maxBytes: number, file: string): AsyncGenerator<Uint8Array> {
  const r = new ByteReader(source);
  const head = await r.fill(8);
  const h = packetHeader(head);
  if (h === undefined) {
    yield* r.rest(); // not a packet: let OpenPGP.js produce the error
    return;
  }
  const { tag, length, headerLen } = h;
  const algorithm = head[headerLen];
  const inflater = tag === TAG_COMPRESSED && algorithm !== undefined ? INFLATERS[algorithm] : undefined;
  if (inflater === undefined) {
    // A signed message without compression (gpg -z0): its literal packet may still be in 8 KiB pieces.
    yield* tag === TAG_ONE_PASS_SIGNATURE ? reframeLiterals(r.rest(), file) : r.rest();
    return;
  }
  r.take(headerLen + 1);
  const body = compressedBody(r, length, length.kind === 'fixed' ? length.length - 1 : length.kind === 'partial' ? length.length - 1 : Infinity);
  yield* reframeLiterals(inflateCapped(body, inflater(), maxBytes, file), file);
}

async function* inflateCapped(body: AsyncIterable<Buffer>, z: Inflate | InflateRaw, maxBytes: number, file: string): AsyncGenerator<Buffer> {
  let total = 0;
  try {
    for await (const out of throughZlib(body, z)) {
      total += out.length;
      if (total > maxBytes) {
        throw new FussyError('BAD_SIGNATURE', `${file}: the compressed OpenPGP data expands beyond ${maxBytes} bytes (decompression bomb?)`, { hint: 'the package is refused; nothing was installed' });
      }
      yield out;
    }
  } catch (err) {
    if (err instanceof FussyError) throw err;
    throw new FussyError('BAD_SIGNATURE', `${file}: cannot inflate the compressed OpenPGP data: ${(err as Error).message}`, { cause: err, hint: 'the package is damaged or was tampered with' });
  }
}

/** The body of the compressed packet, with partial-length headers removed. */
async function* compressedBody(r: ByteReader, length: BodyLength, firstRemaining: number): AsyncGenerator<Buffer> {
  if (length.kind === 'indeterminate') {
    for await (const c of r.rest()) yield Buffer.from(c);
    return;
  }
  let remaining = firstRemaining;
  let partial = length.kind === 'partial';
  for (;;) {
    while (remaining > 0) {
      const c = await r.chunk(remaining);
      if (c.length === 0) throw new Error('truncated compressed packet');
      remaining -= c.length;
      yield c;
    }
    if (!partial) return;
    const l = newLength(await r.fill(5));
    if (l === undefined) throw new Error('truncated partial body length');
    r.take(l[1]);
    remaining = l[0].kind === 'indeterminate' ? 0 : l[0].length;
    partial = l[0].kind === 'partial';
  }
}
