import { createHash } from 'node:crypto';
import type { ReadEntry } from 'tar';
import { FussyError } from '../errors.js';
import { writeAll } from './file-io.js';
import { blocks, FILE, type Meta, type StagingWriter } from './staging-writer.js';

const notAsManifest = (rel: string, why: string): FussyError => new FussyError('BAD_ARCHIVE', `content of "${rel}" does not match its manifest (${why})`, { hint: 'the package is malformed; it is refused as a whole' });

/**
 * A regular file from `entry`'s data. `sha256`: what the signed manifest says its content is
 * (then a retained release's identical file is linked before the data arrives, and the data is
 * checked against it: a large file by the hash lane as it is written, hash-lane.ts, any other
 * here); without one the file is hashed while written and linked after.
 */
export function packageFile(w: StagingWriter, rel: string, entry: ReadEntry, meta: Meta, sha256: string | undefined): void {
  const size = entry.size;
  const abs = w.abs(rel);
  w.files += 1;
  const known = sha256 !== undefined ? w.o.index.find({ sha256, size, ...meta }) : undefined;
  const linked = known !== undefined && w.linkFound(known, rel);
  // The tar header's size is exactly what the parser will hand over: charged before a byte is written.
  w.track(rel, FILE, linked ? 0 : blocks(size));
  if (linked && sha256 !== undefined) {
    w.linked += size;
    w.hashes.push([rel, sha256]);
    entry.resume();
    return;
  }
  const fd = w.hold(w.openNew(rel));
  const lane = sha256 === undefined ? undefined : w.onLane(fd, rel, size, sha256, (actual) => notAsManifest(rel, `sha256 ${actual}, manifest ${sha256}`));
  const hash = lane === undefined ? createHash('sha256') : undefined;
  let ok = false;
  let got = 0;
  entry.on('data', (c: Buffer) => {
    if (w.o.failed()) return;
    try {
      hash?.update(c);
      writeAll(fd, c, abs);
      got += c.length;
      lane?.wrote(c.length);
      w.written += c.length;
      w.o.onWritten?.(c.length);
    } catch (err) {
      w.o.onError(err);
    }
  });
  entry.on('end', () => {
    try {
      if (!w.o.failed()) {
        w.applyMeta(fd, meta, entry.mtime);
        ok = true;
      }
    } catch (err) {
      w.o.onError(err);
    }
    // A member cut short (the archive ends inside it) is not its manifest's file, whatever the rest.
    if (ok && got !== size && sha256 !== undefined) {
      ok = false;
      w.o.onError(notAsManifest(rel, `the archive ends after ${got} of its ${size} bytes`));
    }
    if (lane !== undefined) return ok ? lane.end() : lane.cancel();
    w.release(fd);
    if (!ok || hash === undefined) return;
    const sha = hash.digest('hex');
    if (sha256 !== undefined && sha !== sha256) return w.o.onError(notAsManifest(rel, `sha256 ${sha}, manifest ${sha256}`));
    w.hashes.push([rel, sha]);
    if (sha256 === undefined) {
      // No manifest: hash while writing, link after.
      const same = w.o.index.find({ sha256: sha, size, ...meta });
      if (same !== undefined && w.o.index.replaceWith(same, abs)) {
        w.written -= size;
        w.refund(blocks(size));
        w.linked += size;
      }
    }
  });
}
