import { createHash } from 'node:crypto';
import { fstatSync, readSync } from 'node:fs';

/**
 * Content-defined chunking for delta packages (docs/format.md, "Delta packages"): a file that
 * changed a little is cut where its content says (a gear hash over the bytes), so an edit moves
 * only the boundaries near it and every other chunk is found again in the base file. FastCDC's
 * cut (normalized chunking, Xia et al. 2016): sizes from MIN to MAX, about AVG on average. The
 * gear table and the masks are part of the format: pack and install must cut alike.
 */
export const CHUNK_MIN = 4 * 1024;
export const CHUNK_AVG = 16 * 1024;
export const CHUNK_MAX = 64 * 1024;

/** 256 fixed pseudo-random 32-bit values (xorshift32 from a fixed seed). */
const GEAR = (() => {
  const t = new Uint32Array(256);
  let x = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    t[i] = x;
  }
  return t;
})();
// 16 KiB average: 14 bits; one more before the average, one less after (normalization level 1),
// taken from the hash's high bits, which have seen the most bytes.
const MASK_SMALL = 0xfffe0000 >>> 0; // 15 bits
const MASK_LARGE = 0xfff80000 >>> 0; // 13 bits

/** The length of the chunk that starts at `buf[start]` (`end`: how much of `buf` is valid; `last`: nothing follows it). */
export function cut(buf: Uint8Array, start: number, end: number, last: boolean): number | undefined {
  const n = end - start;
  if (n <= CHUNK_MIN) return last ? n : undefined;
  const stop = Math.min(n, CHUNK_MAX);
  const normal = Math.min(stop, CHUNK_AVG);
  let h = 0;
  let i = CHUNK_MIN;
  for (; i < normal; i++) {
    h = ((h << 1) + (GEAR[buf[start + i] as number] as number)) >>> 0;
    if ((h & MASK_SMALL) === 0) return i + 1;
  }
  for (; i < stop; i++) {
    h = ((h << 1) + (GEAR[buf[start + i] as number] as number)) >>> 0;
    if ((h & MASK_LARGE) === 0) return i + 1;
  }
  if (stop === CHUNK_MAX) return CHUNK_MAX;
  return last ? n : undefined;
}

export interface Chunk {
  /** Offset in the file. */
  offset: number;
  /** The chunk's bytes: valid only during the callback. */
  data: Buffer;
  sha256: string;
}

/**
 * Every chunk of the first `size` bytes of the file open at `fd` (default: its size now), in
 * order, read in 1 MiB blocks (memory stays flat). Nothing past `size` is read: a file that grows
 * meanwhile (a sparse terabyte in an instant) is not read to its new end; the caller's hash of
 * the chunks tells a file that changed.
 */
export function chunkFd(fd: number, onChunk: (c: Chunk) => void, size: number = fstatSync(fd).size): void {
  const buf = Buffer.allocUnsafe((1 << 20) + CHUNK_MAX);
  let have = 0;
  let offset = 0;
  let read = 0;
  let eof = false;
  while (!eof || have > 0) {
    if (!eof) {
      const n = read < size ? readSync(fd, buf, have, Math.min(buf.length - have, size - read), read) : 0;
      if (n === 0) eof = true;
      have += n;
      read += n;
    }
    let at = 0;
    for (;;) {
      const len = cut(buf, at, have, eof);
      if (len === undefined || len === 0) break;
      const data = buf.subarray(at, at + len);
      onChunk({ offset, data, sha256: createHash('sha256').update(data).digest('hex') });
      offset += len;
      at += len;
    }
    buf.copy(buf, 0, at, have);
    have -= at;
    if (eof && have === 0) break;
  }
}

/**
 * The data of a patched file in a delta package's archive: "FYD1", then records, then a 0 byte.
 * COPY (1): a u64 offset and a u64 length, big-endian: bytes the device takes from its base file
 * (pack found them there as whole chunks, and joins chunks that follow each other in both).
 * DATA (2): a u32 length, at most 1 MiB, and that many bytes, carried here. The device checks
 * the file it made against the manifest's size and sha256, so a record needs no hash of its own.
 */
export const PATCH_MAGIC = Buffer.from('FYD1');
export const OP_END = 0;
export const OP_COPY = 1;
export const OP_DATA = 2;
export const MAX_DATA_RECORD = 1 << 20;
