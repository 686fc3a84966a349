import { createInflate, createInflateRaw, type Inflate, type InflateRaw } from 'node:zlib';
import { FussyError } from '../errors.js';
import { ByteReader } from '../util/byte-reader.js';
import { INFLATE_STREAM_OPTIONS, throughZlib } from '../util/zlib-pipe.js';
import { newLength, packetHeader, type BodyLength } from './packet-length.js';
import { reframeLiterals } from './reframe-literal.js';

/** RFC 4880 §5.6 Compressed Data Packet: tag 8; algorithm 0 = uncompressed, 1 = ZIP (raw deflate), 2 = ZLIB. */
const TAG_COMPRESSED = 8;
const UNCOMPRESSED = 0;
const BZIP2 = 3;
const INFLATERS: Record<number, (() => Inflate | InflateRaw) | undefined> = {
  1: () => createInflateRaw(INFLATE_STREAM_OPTIONS),
  2: () => createInflate(INFLATE_STREAM_OPTIONS),
};

/**
 * Packages made by the original pipeline (`tar czf - | gpg --sign`) wrap everything in an
 * OpenPGP compressed packet (ZIP by default). OpenPGP.js inflates it in JavaScript at ~60 MB/s
 * and buffers heavily (measured: 6.1 s and 214 MB for a 188 MB tree); node's zlib does it on
 * the thread pool at ~400 MB/s. So when the message's outermost packet is a ZIP or ZLIB
 * compressed packet, its body is inflated here and the inner packets (one-pass signature,
 * literal data, signature) are handed on as the message. Signatures cover the literal data,
 * not the compression, so verification is unchanged; the inflated size is capped (bomb guard, as
 * maxDecompressedMessageSize for OpenPGP.js). Compressed or not, the packets then pass through
 * reframeLiterals (literal parts re-framed, the packet grammar and its bounds enforced). Data
 * after the end of the deflate stream, or after the compressed packet, is refused: the same rule
 * as for data after an uncompressed message (gpg ignores both). A BZip2 packet is refused (node
 * has no bzip2, and inside it OpenPGP.js would read any number of packets before the signature
 * check). `where` names the sequence.
 */
export async function* inflateOuterLayer(source: AsyncIterable<Uint8Array>, maxBytes: number, file: string, where = 'the package'): AsyncGenerator<Uint8Array> {
  const r = new ByteReader(source);
  const head = await r.fill(8);
  const h = packetHeader(head);
  if (h === undefined) {
    yield* r.rest(); // not a packet: let OpenPGP.js produce the error
    return;
  }
  const { tag, length, headerLen } = h;
  const algorithm = head[headerLen];
  if (tag !== TAG_COMPRESSED || algorithm === undefined) {
    yield* reframeLiterals(r.rest(), file, where);
    return;
  }
  const inflater = INFLATERS[algorithm];
  if (inflater === undefined && algorithm !== UNCOMPRESSED) {
    // BZip2 (or an unknown algorithm): node cannot inflate it, and OpenPGP.js would parse the
    // packets inside, any number of signatures, before the signature is checked (5,000 one-pass
    // signatures in 1.6 KB: 11 s and 600 MB). Refused: gpg writes it only when told to.
    throw new FussyError('BAD_SIGNATURE', `${file}: ${where} is compressed with ${algorithm === BZIP2 ? 'BZip2' : `algorithm ${algorithm}`}, which fussy does not read`, { hint: "sign it with gpg's default compression (ZIP or ZLIB), or without (-z 0), or with fussy pack" });
  }
  if (length.kind === 'fixed' && length.length < 1) throw truncatedPacket(file, where);
  r.take(headerLen + 1);
  const firstRemaining = length.kind === 'indeterminate' ? Infinity : length.length - 1;
  const body = compressedBody(r, length, firstRemaining, file, where);
  yield* reframeLiterals(inflater === undefined ? body : inflateCapped(body, inflater(), maxBytes, file, where), file, `the compressed data of ${where}`);
}

function truncatedPacket(file: string, where: string): FussyError {
  return new FussyError('BAD_SIGNATURE', `${file}: the compressed data packet of ${where} is cut short (truncated)`, { hint: 'the package is damaged or was cut short; nothing was installed' });
}

function trailing(file: string, what: string): FussyError {
  return new FussyError('BAD_SIGNATURE', `${file}: ${what}; it is not covered by the signature`, { hint: 'the package was tampered with or badly made; nothing was installed' });
}

async function* inflateCapped(body: AsyncIterable<Buffer>, z: Inflate | InflateRaw, maxBytes: number, file: string, where: string): AsyncGenerator<Buffer> {
  // zlib stops at the end of the deflate stream and ignores what follows; so the feeder reads
  // `body` through a view that counts and never closes it, and what is left is checked after.
  const it = body[Symbol.asyncIterator]();
  let fed = 0;
  let failed: { err: unknown } | undefined;
  const view: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        try {
          const n = await it.next();
          if (n.done !== true) fed += n.value.length;
          return n;
        } catch (err) {
          failed = { err };
          throw err;
        }
      },
    }),
  };
  let total = 0;
  let checked = false;
  try {
    try {
      for await (const out of throughZlib(view, z)) {
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
    if (failed !== undefined) throw failed.err;
    const after = `data follows the end of the deflate stream in the compressed packet of ${where}`;
    if (fed > z.bytesWritten) throw trailing(file, `${after} (${fed - z.bytesWritten} bytes or more)`);
    for (let n = await it.next(); n.done !== true; n = await it.next()) {
      if (n.value.length > 0) throw trailing(file, after);
    }
    checked = true;
  } finally {
    if (!checked) void it.return?.(undefined).catch(() => {}); // the reader stopped early: let go of the package
  }
}

/** The body of the compressed packet, with partial-length headers removed; nothing may follow it. */
async function* compressedBody(r: ByteReader, length: BodyLength, firstRemaining: number, file: string, where: string): AsyncGenerator<Buffer> {
  if (length.kind === 'indeterminate') {
    for await (const c of r.rest()) yield Buffer.from(c);
    return;
  }
  let remaining = firstRemaining;
  let partial = length.kind === 'partial';
  for (;;) {
    while (remaining > 0) {
      const c = await r.chunk(remaining);
      if (c.length === 0) throw truncatedPacket(file, where);
      remaining -= c.length;
      yield c;
    }
    if (!partial) break;
    const l = newLength(await r.fill(5));
    if (l === undefined) throw truncatedPacket(file, where);
    r.take(l[1]);
    remaining = l[0].kind === 'indeterminate' ? 0 : l[0].length;
    partial = l[0].kind === 'partial';
  }
  if ((await r.fill(1)).length > 0) throw trailing(file, `data follows the compressed data packet of ${where}`);
}
