import { createHash } from 'node:crypto';
import { unlinkSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { abortable } from '../util/abort.js';
import { openNewFile, tempName } from '../util/fs-atomic.js';
import { PackageSource } from './package-source.js';

export interface SpoolOptions {
  /** The target's state dir (`.fussy/`): same file system as the releases, so the same space. */
  stateDir: string;
  /** Bytes the spooled package may take: the free space less the reserve. */
  maxBytes: number;
  signal?: AbortSignal;
  /** Told once the copy exists only as a descriptor, before the first read (which may wait). */
  onWaiting?: () => void;
}

export interface Spooled {
  /** The spooled copy, read like a regular package file. */
  source: PackageSource;
  sha256: string;
  bytes: number;
}

/**
 * Read a package that arrives through a pipe (`fussy install -`, a FIFO) into the state dir,
 * BEFORE the target's lock is taken: fussy never waits on input while it holds the lock. The copy
 * is created O_EXCL|O_NOFOLLOW, mode 0600, and unlinked at once: it lives only as the descriptor
 * (read through /proc/PID/fd/N), so nothing is left behind however the install ends; a crash
 * in the instant before the unlink leaves `.fussy-tmp-spool-*` (util/fs-atomic.ts), which recovery sweeps. Bounded by
 * `maxBytes` (NO_SPACE past it); the sha256 for the history is taken as it streams. The bytes
 * are then read, decrypted and verified exactly like a package file.
 */
export async function spoolPackage(pipe: PackageSource, o: SpoolOptions): Promise<Spooled> {
  const tmp = join(o.stateDir, tempName('spool'));
  const fd = openNewFile(tmp, 0o600, { readable: true });
  const out = new PackageSource(pipe.name, fd, 'file');
  try {
    unlinkSync(tmp);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err; // a concurrent recovery swept it already: as good
  }
  o.onWaiting?.();
  const hash = createHash('sha256');
  let bytes = 0;
  const input = new Socket({ fd: pipe.take(), readable: true, writable: false });
  try {
    for await (const chunk of abortable<Buffer>(input, o.signal)) {
      bytes += chunk.length;
      if (bytes > o.maxBytes) {
        throw new FussyError('NO_SPACE', `the package from ${pipe.name} is larger than the ${o.maxBytes} bytes ${o.stateDir} has free (less the reserve)`, { hint: 'free space with fussy clean, or lower --reserve, then install again' });
      }
      hash.update(chunk);
      for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at);
    }
  } catch (err) {
    out.close();
    throw err;
  } finally {
    input.destroy();
  }
  return { source: out, sha256: hash.digest('hex'), bytes };
}
