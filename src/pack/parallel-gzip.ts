import { readSync } from 'node:fs';
import { indexMember, MEMBER_DATA_BYTES } from '../archive/gzip-member.js';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

/** Archive bytes in memory (headers, padding, the manifest). */
export interface DataSegment {
  data: Buffer;
  store: boolean;
}

/**
 * `length` bytes to be read from `fd` straight into the compressor's chunk buffer (no
 * intermediate copies or garbage); the compressor adds what it read to `read`, so the producer
 * can check the file was as long as it said once the segment has been consumed.
 */
export interface FileSegment {
  fd: number;
  length: number;
  store: boolean;
  read: number;
}

export type Segment = DataSegment | FileSegment;

export interface ParallelGzipOptions {
  /** zlib level for compressible data. */
  level?: number;
  /** Uncompressed bytes per gzip member (default MEMBER_DATA_BYTES; install streams larger members instead of inflating them in parallel). */
  chunkSize?: number;
  /** Members queued at once; zlib runs them on the libuv thread pool. */
  parallel?: number;
}

/** zlib level 5: on the benchmark trees 0.3% larger than level 6 for ~40% less CPU (docs/performance.md). */
export const DEFAULT_LEVEL = 5;
/** A chunk at least this much random-looking data is stored rather than deflated. */
const STORE_FRACTION = 0.9;

/**
 * Compress a segment stream as a series of independent gzip members, several at a time.
 * RFC 1952 §2.2: a gzip file is a series of members; gunzip, GNU tar and node's zlib read them as
 * one stream. A chunk made mostly of segments tagged `store` (data that looked random) becomes
 * a member of stored deflate blocks, which costs nothing to make and ~0.01% in size. Output order is input order;
 * at most `parallel` chunks are held, so memory does not grow with the input. Each member records
 * its own length (archive/gzip-member.ts) so that install can inflate members in parallel too.
 */
export async function* parallelGzip(input: AsyncIterable<Segment>, opts: ParallelGzipOptions = {}): AsyncGenerator<Buffer> {
  const level = opts.level ?? DEFAULT_LEVEL;
  const chunkSize = opts.chunkSize ?? MEMBER_DATA_BYTES;
  const parallel = Math.max(1, opts.parallel ?? 8);
  const inflight: Promise<Buffer>[] = [];
  // Input buffers are recycled once their member is compressed: a fixed set of parallel + 1
  // buffers instead of a fresh MiB per chunk, so peak memory does not depend on GC timing.
  const free: Buffer[] = [];
  const take = (): Buffer => free.pop() ?? Buffer.allocUnsafe(chunkSize);
  let cur = take();
  let filled = 0;
  let stored = 0;

  const flush = (): void => {
    if (filled === 0) return;
    const input = cur;
    // Members are always full chunks (a member per file switch made thousands of tiny members,
    // each a thread-pool call on install). A chunk that is mostly random data is stored.
    const chunkLevel = stored >= filled * STORE_FRACTION ? 0 : level;
    // One output buffer past deflate's worst case: one trip to the thread pool per member
    // instead of one main-thread callback per 16 KiB of output (zlib's default chunkSize).
    const outSize = Math.max(64 * 1024, filled + (filled >> 8) + 1024);
    inflight.push(
      gzipAsync(input.subarray(0, filled), { level: chunkLevel, chunkSize: outSize }).then((out) => {
        free.push(input);
        return indexMember(out);
      }),
    );
    cur = take();
    filled = 0;
    stored = 0;
  };

  for await (const seg of input) {
    const length = 'data' in seg ? seg.data.length : seg.length;
    let done = 0;
    while (done < length) {
      const room = Math.min(chunkSize - filled, length - done);
      let n: number;
      if ('data' in seg) {
        n = seg.data.copy(cur, filled, done, done + room);
      } else {
        n = readSync(seg.fd, cur, filled, room, null);
        if (n === 0) break; // short file: the producer sees seg.read < length and fails
        seg.read += n;
      }
      filled += n;
      done += n;
      if (seg.store) stored += n;
      if (filled === chunkSize) flush();
      while (inflight.length >= parallel) yield await (inflight.shift() as Promise<Buffer>);
    }
  }
  flush();
  while (inflight.length > 0) yield await (inflight.shift() as Promise<Buffer>);
}
