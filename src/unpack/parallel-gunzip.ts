import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import { FussyError } from '../errors.js';
import { MEMBER_DATA_BYTES, MEMBER_MAX_BYTES, memberLength } from '../archive/gzip-member.js';
import { ByteReader } from '../util/byte-reader.js';
import { INFLATE_STREAM_OPTIONS, throughZlib } from '../util/zlib-pipe.js';

const gunzipAsync = promisify(gunzip);
const STEP = 64 << 10;

/** An inflation's outcome as a value: a queued member's failure must not be a rejection nobody awaits. */
type Inflated = { ok: true; out: Buffer } | { ok: false; err: unknown };

/**
 * gunzip that inflates fussy's indexed members (archive/gzip-member.ts) several at a time on the
 * thread pool, in order, and falls back to one streaming gunzip for anything else (the original
 * pipeline's single-member .tar.gz). zlib checks every member's CRC-32 and length; each member's
 * output is capped at its declared size, so one member cannot balloon memory.
 *
 * The input is unsigned until the end, so what a member claims buys no memory: only a member
 * that fits what fussy pack writes (MEMBER_MAX_BYTES long, at most MEMBER_DATA_BYTES inflated)
 * is buffered, in one of `parallel + 1` recycled buffers (each at most MEMBER_MAX_BYTES, and
 * no larger than a member needs); a member claiming more is streamed,
 * with the rest of the input, like any other gzip. In flight: about (2 * parallel + 1) MiB.
 */
export async function* parallelGunzip(source: AsyncIterable<Uint8Array>, parallel = 4): AsyncGenerator<Buffer> {
  const r = new ByteReader(source);
  const inflight: Promise<Inflated>[] = [];
  // Members are copied from the input chunks into recycled buffers rather than joined into
  // fresh ones: the same few MiB stay warm instead of 1 MiB of new memory per member.
  const pool: Buffer[] = [];
  const next = async (): Promise<Buffer> => {
    const done = await (inflight.shift() as Promise<Inflated>);
    if (!done.ok) throw done.err;
    return done.out;
  };
  let afterShort = false;
  try {
    for (;;) {
      const head = await r.fill(64);
      if (head.length === 0) break;
      const total = memberLength(head);
      // fussy's members are full MEMBER_DATA_BYTES but the last: members after a short one are not
      // fussy's shape. Tiny members would cost a zlib context each (~40 KB of native memory that
      // only a garbage collection gives back): one streaming gunzip takes the rest instead.
      if (total === undefined || total === 'short' || total > MEMBER_MAX_BYTES || afterShort) {
        // Not (or no longer) one of fussy's members: finish whatever is queued, then stream the rest.
        while (inflight.length > 0) yield await next();
        yield* streamGunzip(r.rest());
        return;
      }
      // A recycled buffer if one is large enough; a new one sized to the member (in 64 KiB
      // steps, so that fussy's full members, a few hundred KiB each, fit each other's).
      const reuse = pool.findIndex((b) => b.length >= total);
      const buf = reuse >= 0 ? (pool.splice(reuse, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(Math.min(MEMBER_MAX_BYTES, Math.ceil(total / STEP) * STEP));
      const got = await r.copyInto(buf, total);
      if (got < total) throw bad('the package payload ends inside a gzip member (truncated)');
      const member = buf.subarray(0, total);
      const isize = member.readUInt32LE(total - 4);
      if (isize > MEMBER_DATA_BYTES) {
        // Claims more output than fussy puts in a member: it and the rest go through the stream.
        while (inflight.length > 0) yield await next();
        yield* streamGunzip(prepend(member, r.rest()));
        return;
      }
      const out = gunzipAsync(member, { chunkSize: isize + 1024, maxOutputLength: isize + 1 });
      afterShort = isize < MEMBER_DATA_BYTES;
      inflight.push(
        out.then(
          (b): Inflated => {
            pool.push(buf);
            return { ok: true, out: b };
          },
          (err: unknown): Inflated => ({ ok: false, err }),
        ),
      );
      while (inflight.length >= parallel) yield await next();
    }
    while (inflight.length > 0) yield await next();
  } finally {
    // However the generator ends (a bad member, a reader that stopped), no inflation is left
    // running unobserved: each settles into a value, and all are waited for before returning.
    await Promise.all(inflight.splice(0));
  }
}

function streamGunzip(rest: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  return throughZlib(coalesce(rest, 1 << 20), createGunzip(INFLATE_STREAM_OPTIONS));
}

async function* prepend(first: Buffer, rest: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield first;
  yield* rest;
}

/**
 * Join small chunks into ~`size` ones: every zlib stream write is a thread-pool round trip, and
 * gpg frames the original pipeline's payload in 8 KiB partial-length pieces (20,000 writes for a
 * 160 MB package, measured 1.5 s slower than 160 writes).
 */
async function* coalesce(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Buffer> {
  let parts: Uint8Array[] = [];
  let length = 0;
  for await (const c of source) {
    if (parts.length === 0 && c.length >= size) {
      yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
      continue;
    }
    parts.push(c);
    length += c.length;
    if (length >= size) {
      yield Buffer.concat(parts, length);
      parts = [];
      length = 0;
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}

function bad(message: string): FussyError {
  return new FussyError('BAD_ARCHIVE', message, { hint: 'the package is malformed; it is refused as a whole' });
}
