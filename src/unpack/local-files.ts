import { createHash } from 'node:crypto';
import { closeSync, readSync } from 'node:fs';
import type { ReadEntry } from 'tar';
import { CHUNK_MIN, MAX_DATA_RECORD, OP_COPY, OP_DATA, OP_END, PATCH_MAGIC } from '../archive/chunks.js';
import { FussyError } from '../errors.js';
import type { Found } from '../store/dedup-index.js';
import { baseChanged, copyVerified, openVerified, writeAll } from './file-io.js';
import { blocks, FILE, type Meta, type StagingWriter } from './staging-writer.js';

/**
 * A file a delta package leaves out (from: "base"): a hard link to a verified identical file
 * (content, mode, owner), else a copy of `content` (findContent's), hashed again as copied.
 */
export function fromLocal(w: StagingWriter, rel: string, sha256: string, size: number, meta: Meta, mtime: Date, content: Found): void {
  w.files += 1;
  // The verified copy itself when its mode and owner are the ones wanted (no second lookup).
  const id = content.identity;
  const same = id.mode === meta.mode && id.uid === meta.uid && id.gid === meta.gid ? content : w.o.index.find({ sha256, size, ...meta });
  if (same !== undefined && w.linkFound(same, rel)) {
    w.track(rel, FILE, 0);
    w.linked += size;
    w.hashes.push([rel, sha256]);
    return;
  }
  w.track(rel, FILE, blocks(size));
  const fd = w.createFile(rel);
  try {
    const n = copyVerified(content, fd, sha256, size, rel, w.abs(rel));
    w.written += n;
    w.o.onWritten?.(n);
    w.applyMeta(fd, meta, mtime);
  } finally {
    closeSync(fd);
  }
  w.hashes.push([rel, sha256]);
}

const bad = (rel: string, why: string): FussyError => new FussyError('BAD_ARCHIVE', `the patch of "${rel}" ${why}`, { hint: 'the package is malformed; it is refused as a whole' });

/**
 * A large file of a delta package carried as a patch (from: "chunks"; archive/chunks.ts) against
 * the device's file whose content is `base` (verified by findContent before any data was
 * written, and read here through that very inode): COPY records take ranges of the base, DATA
 * records carry the rest. The result must be exactly the manifest's file (its size, checked as
 * it grows, and its sha256): anything else, or a patch that does not parse, refuses the package.
 * Work and disk are bounded by the manifest's size, charged before the first byte.
 */
export function patched(w: StagingWriter, rel: string, entry: ReadEntry, meta: Meta, sha256: string, size: number, base: Found): void {
  w.files += 1;
  w.track(rel, FILE, blocks(size));
  const src = w.hold(openVerified(base, `the base of "${rel}"`));
  const fd = w.hold(w.createFile(rel)); // src is closed by abandon() if this throws
  const abs = w.abs(rel);
  let out = 0;
  // A base its owner edited meanwhile is told as such, not blamed on the package.
  const wrong = (): FussyError => baseChanged(base, `the base of "${rel}"`) ?? bad(rel, `does not make the file of its manifest entry (${out} of ${size} bytes, or another sha256)`);
  // The hash lane hashes the copies where they were read (hash-lane.ts) and reads the rest back
  // as it is written (the main thread only copies), else the file is hashed here.
  const lane = w.onLane(fd, rel, size, sha256, wrong);
  const hash = lane === undefined ? createHash('sha256') : undefined;
  const copyBuf = Buffer.allocUnsafe(1 << 20);
  // `shared`: b is a piece of the lane's memory (hashed there, not read back).
  const emit = (b: Buffer, shared = false): void => {
    if (out + b.length > size) throw bad(rel, `makes more than the ${size} bytes of its manifest entry`);
    hash?.update(b);
    writeAll(fd, b, abs);
    if (shared) lane?.fed(b.length);
    else lane?.wrote(b.length);
    out += b.length;
    w.written += b.length;
    w.o.onWritten?.(b.length);
  };
  const copyRange = (offset: number, length: number): void => {
    if (out + length > size) throw bad(rel, `makes more than the ${size} bytes of its manifest entry`);
    for (let done = 0; done < length; ) {
      const piece = lane?.piece();
      const buf = piece ?? copyBuf;
      const n = readSync(src, buf, 0, Math.min(buf.length, length - done), offset + done);
      if (n === 0) throw baseChanged(base, `the base of "${rel}"`) ?? bad(rel, 'copies past the end of its base file');
      emit(buf.subarray(0, n), piece !== undefined);
      done += n;
    }
  };
  // Every record but the one that ends the file holds more than a chunk's least (pack's chunks
  // do): a crafted patch of tiny records cannot make install do a write per byte before the
  // signature is checked.
  const fullRecord = (len: number): boolean => len > CHUNK_MIN || (len > 0 && out + len === size);
  // The patch arrives in pieces: parse what has come, keep the rest (at most a record header).
  let pending: Buffer = Buffer.alloc(0);
  let state: 'magic' | 'op' | 'data' | 'end' = 'magic';
  let dataLeft = 0;
  const parse = (): void => {
    for (;;) {
      if (state === 'magic') {
        if (pending.length < 4) return;
        if (!pending.subarray(0, 4).equals(PATCH_MAGIC)) throw bad(rel, 'does not start with FYD1');
        pending = pending.subarray(4);
        state = 'op';
      } else if (state === 'op') {
        if (pending.length < 1) return;
        const op = pending[0];
        if (op === OP_END) {
          pending = pending.subarray(1);
          state = 'end';
        } else if (op === OP_DATA) {
          if (pending.length < 5) return;
          dataLeft = pending.readUInt32BE(1);
          if (dataLeft > MAX_DATA_RECORD || !fullRecord(dataLeft)) throw bad(rel, `has a DATA record of ${dataLeft} bytes`);
          pending = pending.subarray(5);
          state = 'data';
        } else if (op === OP_COPY) {
          if (pending.length < 17) return;
          const offset = pending.readBigUInt64BE(1);
          const length = pending.readBigUInt64BE(9);
          if (offset + length > BigInt(Number.MAX_SAFE_INTEGER) || !fullRecord(Number(length))) throw bad(rel, 'has a COPY record out of range, or shorter than a chunk');
          pending = pending.subarray(17);
          copyRange(Number(offset), Number(length));
        } else {
          throw bad(rel, `has an unknown record type ${String(op)}`);
        }
      } else if (state === 'data') {
        if (pending.length === 0) return;
        const take = Math.min(dataLeft, pending.length);
        emit(pending.subarray(0, take));
        pending = pending.subarray(take);
        dataLeft -= take;
        if (dataLeft === 0) state = 'op';
      } else {
        if (pending.length > 0) throw bad(rel, 'has bytes after its end');
        return;
      }
    }
  };
  let ok = false;
  entry.on('data', (c: Buffer) => {
    if (w.o.failed()) return;
    try {
      pending = pending.length === 0 ? c : Buffer.concat([pending, c]);
      parse();
    } catch (err) {
      w.o.onError(err);
    }
  });
  entry.on('end', () => {
    try {
      if (!w.o.failed()) {
        if (state !== 'end') throw bad(rel, 'ends before its end record');
        if (out !== size || (hash !== undefined && hash.digest('hex') !== sha256)) throw wrong();
        w.applyMeta(fd, meta, entry.mtime);
        ok = true;
      }
    } catch (err) {
      w.o.onError(err);
    } finally {
      w.release(src);
    }
    if (lane !== undefined) return ok ? lane.end() : lane.cancel();
    w.release(fd);
    if (ok) w.hashes.push([rel, sha256]);
  });
}
