import { createHash } from 'node:crypto';
import { closeSync, readSync } from 'node:fs';
import type { ReadEntry } from 'tar';
import { chunkFd, CHUNK_MAX, MAX_DATA_RECORD, OP_COPY, OP_DATA, OP_END, PATCH_MAGIC } from '../archive/chunks.js';
import { FussyError } from '../errors.js';
import type { Found } from '../store/dedup-index.js';
import { copyVerified, openVerified, writeAll } from './file-io.js';
import { blocks, FILE, type Meta, type StagingWriter } from './staging-writer.js';

/**
 * A file a delta package leaves out (from: "base"): a hard link to a verified identical file
 * (content, mode, owner), else a copy of `content` (findContent's), hashed again as copied.
 */
export function fromLocal(w: StagingWriter, rel: string, sha256: string, size: number, meta: Meta, mtime: Date, content: Found): void {
  w.files += 1;
  const same = w.o.index.find({ sha256, size, ...meta });
  if (same !== undefined && w.linkFound(same, rel)) {
    w.track(rel, FILE, 0);
    w.linked += size;
    w.hashes.push([rel, sha256]);
    return;
  }
  w.track(rel, FILE, blocks(size));
  const fd = w.createFile(rel);
  try {
    const n = copyVerified(content, fd, sha256, rel, w.abs(rel));
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
 * written): the base is cut into chunks as pack cut it, and the patch's COPY records take those
 * chunks, its DATA records carry the rest. The result must be exactly the manifest's file (its
 * size and sha256): anything else, or a patch that does not parse, refuses the package.
 */
export function patched(w: StagingWriter, rel: string, entry: ReadEntry, meta: Meta, sha256: string, size: number, base: Found): void {
  w.files += 1;
  w.track(rel, FILE, blocks(size));
  const src = openVerified(base, `the base of "${rel}"`);
  const chunks = new Map<string, { offset: number; length: number }>();
  try {
    chunkFd(src, (c) => {
      if (!chunks.has(c.sha256)) chunks.set(c.sha256, { offset: c.offset, length: c.data.length });
    });
  } catch (err) {
    closeSync(src);
    throw err;
  }
  const fd = w.createFile(rel);
  const abs = w.abs(rel);
  const hash = createHash('sha256');
  const copyBuf = Buffer.allocUnsafe(CHUNK_MAX);
  let out = 0;
  const emit = (b: Buffer): void => {
    if (out + b.length > size) throw bad(rel, `makes more than the ${size} bytes of its manifest entry`);
    hash.update(b);
    writeAll(fd, b, abs);
    out += b.length;
    w.written += b.length;
    w.o.onWritten?.(b.length);
  };
  // The patch arrives in pieces: parse what has come, keep the rest.
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
          continue;
        }
        if (op === OP_DATA) {
          if (pending.length < 5) return;
          dataLeft = pending.readUInt32BE(1);
          if (dataLeft === 0 || dataLeft > MAX_DATA_RECORD) throw bad(rel, `has a DATA record of ${dataLeft} bytes`);
          pending = pending.subarray(5);
          state = 'data';
        } else if (op === OP_COPY) {
          if (pending.length < 37) return;
          const length = pending.readUInt32BE(1);
          const sha = pending.subarray(5, 37).toString('hex');
          const c = chunks.get(sha);
          if (c === undefined || c.length !== length) throw bad(rel, `asks for a chunk (${sha.slice(0, 12)}, ${length} bytes) that the base file does not have`);
          const got = readSync(src, copyBuf, 0, length, c.offset);
          if (got !== length) throw bad(rel, 'ran past the end of the base file (it changed?)');
          emit(copyBuf.subarray(0, length));
          pending = pending.subarray(37);
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
        if (out !== size || hash.digest('hex') !== sha256) throw bad(rel, `does not make the file of its manifest entry (${out} of ${size} bytes, or another sha256)`);
        w.applyMeta(fd, meta, entry.mtime);
        ok = true;
      }
    } catch (err) {
      w.o.onError(err);
    } finally {
      closeSync(fd);
      closeSync(src);
    }
    if (ok) w.hashes.push([rel, sha256]);
  });
}
