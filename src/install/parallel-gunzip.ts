import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import { FussyError } from '../errors.js';
import { memberLength } from '../archive/gzip-member.js';
import { ByteReader } from '../util/byte-reader.js';
import { INFLATE_STREAM_OPTIONS, throughZlib } from '../util/zlib-pipe.js';

const gunzipAsync = promisify(gunzip);

/** fussy writes 1 MiB members; anything claiming far more is not ours to trust with memory. */
const MAX_MEMBER_OUTPUT = 64 * 1024 * 1024;

/**
 * gunzip that inflates fussy's indexed members (archive/gzip-member.ts) several at a time on the
 * thread pool, in order, and falls back to one streaming gunzip for anything else (the original
 * pipeline's single-member .tar.gz). zlib checks every member's CRC-32 and length; each member's
 * output is capped at its declared size, so one member cannot balloon memory.
 */
export async function* parallelGunzip(source: AsyncIterable<Uint8Array>, parallel = 4): AsyncGenerator<Buffer> {
  const r = new ByteReader(source);
  const inflight: Promise<Buffer>[] = [];
  for (;;) {
    const head = await r.fill(64);
    if (head.length === 0) break;
    const total = memberLength(head);
    if (total === undefined || total === 'short') {
      // Not (or no longer) indexed: finish whatever is queued, then stream the rest.
      while (inflight.length > 0) yield await (inflight.shift() as Promise<Buffer>);
      yield* streamGunzip(r.rest());
      return;
    }
    const member = (await r.fill(total)).subarray(0, total);
    if (member.length < total) throw bad('the package payload ends inside a gzip member (truncated)');
    r.take(total);
    const isize = member.readUInt32LE(total - 4);
    if (isize > MAX_MEMBER_OUTPUT) throw bad(`a gzip member claims ${isize} bytes, more than fussy ever writes`);
    inflight.push(gunzipAsync(member, { chunkSize: Math.max(64 * 1024, isize + 1024), maxOutputLength: isize + 1 }));
    while (inflight.length >= parallel) yield await (inflight.shift() as Promise<Buffer>);
  }
  while (inflight.length > 0) yield await (inflight.shift() as Promise<Buffer>);
}

function streamGunzip(rest: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  return throughZlib(rest, createGunzip(INFLATE_STREAM_OPTIONS));
}

function bad(message: string): FussyError {
  return new FussyError('BAD_ARCHIVE', message, { hint: 'the package is malformed; it is refused as a whole' });
}
