import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, statSync, type Stats } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';

/**
 * Acting inside a directory someone else can write, without openat(2): node has no *at() calls,
 * but on Linux a path through /proc/self/fd/N starts at the directory open as N, wherever the
 * path it was opened by leads now (proc(5): the fd entries are magic links to the open file
 * itself). `at(fd, name)` therefore names `name` inside exactly that directory, and open, lstat,
 * unlink, rename, link and symlink by that path behave like their *at() forms. The last component
 * is never followed by lstat/unlink/rename/link/symlink, and open follows it only without
 * O_NOFOLLOW.
 */
const PROC_FD = '/proc/self/fd';

/** open(2) flags for a directory that must not be reached through a symlink. */
export const DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** open(2) flags to look at a file without following a symlink or blocking on a FIFO. */
export const FILE_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

let procChecked = false;

function needProc(): void {
  if (procChecked) return;
  try {
    statSync(PROC_FD);
  } catch (err) {
    if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err;
    throw new FussyError('PROC_MISSING', `${PROC_FD} is missing: fussy acts inside release directories through their descriptors there`, { cause: err, hint: 'mount proc on /proc (mount -t proc proc /proc)' });
  }
  procChecked = true;
}

/** The path of `name` inside the directory open as `fd` (the directory itself without a name). */
export function at(fd: number, name?: string): string {
  return name === undefined ? `${PROC_FD}/${fd}` : `${PROC_FD}/${fd}/${name}`;
}

/** Open directory `name` inside the directory open as `parent`; a symlink there fails (ELOOP/ENOTDIR). */
export function openDirAt(parent: number, name: string): number {
  return openSync(at(parent, name), DIR_NOFOLLOW);
}

/**
 * Open the directory `rel` ('' or 'a/b') below `top`, one component at a time, each with
 * O_NOFOLLOW through its parent's descriptor: a component swapped for a symlink fails with
 * ELOOP or ENOTDIR instead of leading out of `top`. `top` itself is opened by its path, so it
 * must lie in a directory only root can change (the target, .fussy).
 */
export function openDirBeneath(top: string, rel: string): number {
  needProc();
  let fd = openSync(top, DIR_NOFOLLOW);
  for (const name of rel === '' || rel === '.' ? [] : rel.split('/')) {
    try {
      const next = openDirAt(fd, name);
      closeSync(fd);
      fd = next;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }
  return fd;
}

/** Run `fn` with a descriptor from openDirBeneath, closed afterwards. */
export function withDirBeneath<T>(top: string, rel: string, fn: (fd: number) => T): T {
  const fd = openDirBeneath(top, rel);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

export interface WalkOptions {
  /** Directories below this depth (top's entries are depth 1) are not entered. */
  maxDepth: number;
}

/**
 * Visit everything below `top` by descriptor, never following a symlink: each entry is lstat'd
 * through its parent's descriptor (`path` is that /proc path, valid during the call), and a
 * directory is entered by opening it O_NOFOLLOW and checking it is the inode just lstat'd. An
 * entry that vanishes or is replaced meanwhile (someone else owns the directory) is skipped,
 * never an error. `visit` returns false to not enter a directory. Returns top's own stats, or
 * undefined when top is not a directory (gone, or a symlink).
 */
export function walkBeneath(top: string, visit: (rel: string, st: Stats, path: string) => boolean | void, o: WalkOptions): Stats | undefined {
  needProc();
  let fd: number;
  try {
    fd = openSync(top, DIR_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
    throw err;
  }
  try {
    walkDir(fd, '', 1, visit, o.maxDepth);
    return fstatSync(fd);
  } finally {
    closeSync(fd);
  }
}

function walkDir(fd: number, relDir: string, depth: number, visit: (rel: string, st: Stats, path: string) => boolean | void, maxDepth: number): void {
  let names: string[];
  try {
    names = readdirSync(at(fd));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // removed while we held it open
    throw err;
  }
  for (const name of names) {
    const rel = relDir === '' ? name : `${relDir}/${name}`;
    const path = at(fd, name);
    let st: Stats | undefined;
    try {
      st = lstatSync(path, { throwIfNoEntry: false });
    } catch (err) {
      if (!isErrno(err, 'ENOTDIR')) throw err;
    }
    if (st === undefined) continue;
    if (visit(rel, st, path) === false || !st.isDirectory() || depth >= maxDepth) continue;
    let child: number;
    try {
      child = openDirAt(fd, name);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) continue; // replaced by a file or symlink meanwhile
      throw err;
    }
    try {
      const cst = fstatSync(child);
      if (cst.dev === st.dev && cst.ino === st.ino) walkDir(child, rel, depth + 1, visit, maxDepth);
    } finally {
      closeSync(child);
    }
  }
}
