import { closeSync, fchmodSync, fchownSync, fstatSync, lstatSync, openSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { FussyError, isErrno } from '../errors.js';
import { DIR_NOFOLLOW } from './dir-fd.js';
import { unlinkIfExistsSync } from './fs-atomic.js';

/** Paths longer than this are moved up to the top before going deeper (PATH_MAX is 4096). */
const FLATTEN_BYTES = 2048;

/**
 * Remove `path` and everything below it, like `rm -rf`, safely as root in a tree others can
 * write (release directories may hold directories owned by service users). Node's recursive rm
 * walks by path: a user who swaps a subdirectory for a symlink between its lstat and its
 * readdir makes root delete what the link points at. Here every directory is locked before
 * anything inside it is read: opened O_DIRECTORY|O_NOFOLLOW (a symlink is never entered), checked
 * to be on the top's file system (never cross a mount), then made root's and 0700 through the
 * descriptor (fchown, fchmod). From then on nobody else can create, rename or remove entries in
 * it, so the paths below a locked directory are stable; the path used to open a directory always
 * lies in an already locked parent. Then files and symlinks are unlinked (never followed) and
 * directories removed bottom-up. `path` itself must lie in a directory only root can change (the
 * target, `.fussy`). A subtree deeper than PATH_MAX allows is moved up to the top (a rename inside
 * the locked tree) and removed from there, so a user cannot make the tree unremovable by depth.
 * Without root (a target the user owns), directories are only made 0700 when the user owns them.
 */
export async function removeTree(path: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(path, DIR_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    if (!isErrno(err, 'ENOTDIR', 'ELOOP')) throw err;
    unlinkIfExistsSync(path); // a file or a symlink: the entry itself goes
    return;
  }
  const dev = lock(fd, path, undefined);
  const r = new Remover(path, dev);
  await r.empty(path);
  for (let next = r.moved.pop(); next !== undefined; next = r.moved.pop()) {
    await r.empty(next);
    rmdirGone(next);
  }
  rmdirGone(path);
}

class Remover {
  readonly top: string;
  readonly dev: number;
  /** Subtrees moved up to the top because their paths grew too long. */
  readonly moved: string[] = [];
  #n = 0;

  constructor(top: string, dev: number) {
    this.top = top;
    this.dev = dev;
  }

  /** Remove everything inside `dir`, which is locked. */
  async empty(dir: string): Promise<void> {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (!e.isDirectory()) {
        unlinkIfExistsSync(p);
        continue;
      }
      let fd: number;
      try {
        fd = openSync(p, DIR_NOFOLLOW);
      } catch (err) {
        // Only root can change a locked directory; a root process replaced it: remove the entry.
        if (!isErrno(err, 'ENOTDIR', 'ELOOP')) throw err;
        unlinkIfExistsSync(p);
        continue;
      }
      lock(fd, p, this.dev);
      if (Buffer.byteLength(p) > FLATTEN_BYTES) {
        const up = this.#freeName();
        renameSync(p, up);
        this.moved.push(up);
        continue;
      }
      await this.empty(p);
      rmdirGone(p);
    }
    await yieldToLoop();
  }

  #freeName(): string {
    for (;;) {
      const p = join(this.top, `.fussy-deep-${++this.#n}`);
      if (lstatSync(p, { throwIfNoEntry: false }) === undefined) return p;
    }
  }
}

/** Lock a directory open as `fd` (see removeTree) and close it; returns its device. */
function lock(fd: number, path: string, dev: number | undefined): number {
  try {
    const st = fstatSync(fd);
    if (dev !== undefined && st.dev !== dev) {
      throw new FussyError('MOUNT_IN_TREE', `${path} is another file system mounted inside the tree being removed: fussy does not remove across file systems`, { hint: `unmount ${path}, then run the command again` });
    }
    if (process.geteuid?.() === 0) {
      fchownSync(fd, 0, 0);
      fchmodSync(fd, 0o700);
    } else {
      try {
        fchmodSync(fd, 0o700);
      } catch (err) {
        if (!isErrno(err, 'EPERM')) throw err; // not ours: without root there is nothing to defend
      }
    }
    return st.dev;
  } finally {
    closeSync(fd);
  }
}

function rmdirGone(p: string): void {
  try {
    rmdirSync(p);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}
