import { closeSync, fchmodSync, fchownSync, futimesSync, openSync } from 'node:fs';
import { DIR_NOFOLLOW } from '../util/dir-fd.js';

export interface DirMeta {
  abs: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: Date;
}

/**
 * Give directories their archive metadata once everything inside them exists: deepest first,
 * so a read-only directory (0555) does not block its own children and creating children does
 * not bump a parent's mtime afterwards. Directories the archive did not list get 0755.
 * Each directory is changed through a descriptor opened O_NOFOLLOW. The order also keeps the
 * paths trustworthy: until a directory is finalized it is root's and 0700 (unpack makes it so),
 * and every directory below it has a longer path, so it was finalized before; a directory handed
 * to a service user here is never traversed again. (Unlisted directories get 0755 first, but
 * stay root's: nobody else can change entries in them.)
 */
export function finalizeDirectories(dirs: DirMeta[], allDirs: string[], asRoot: boolean): void {
  const listed = new Set(dirs.map((d) => d.abs));
  for (const abs of allDirs) if (!listed.has(abs)) withDir(abs, (fd) => fchmodSync(fd, 0o755));
  const ordered = [...dirs].sort((a, b) => b.abs.length - a.abs.length);
  for (const d of ordered) {
    withDir(d.abs, (fd) => {
      if (asRoot) fchownSync(fd, d.uid, d.gid);
      fchmodSync(fd, d.mode); // after chown: chown(2) clears setgid
      if (d.mtime !== undefined) futimesSync(fd, d.mtime, d.mtime);
    });
  }
}

function withDir(abs: string, fn: (fd: number) => void): void {
  const fd = openSync(abs, DIR_NOFOLLOW);
  try {
    fn(fd);
  } finally {
    closeSync(fd);
  }
}
