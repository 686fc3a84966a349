import { closeSync, constants as FS, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { FussyError, isErrno, type ErrorCode } from '../errors.js';
import { isPermissionError, permissionDenied } from './system-error.js';

/**
 * Which directories fussy may rely on (OpenSSH StrictModes, systemd's chase with CHASE_SAFE):
 * a path is trusted when nobody but root and the caller can change what it names. Walking its
 * components from `/` and resolving every symbolic link on the way (as the kernel will), each
 * directory, symlink and the final entry must be owned by root or the caller, and no directory
 * may be writable by group or others unless it has the sticky bit (like /tmp, /run/lock): there
 * others can add entries but not rename or remove ours, which is why the next component must be
 * root's or the caller's. A regular file at the end must not be writable by group or others.
 * ACLs are not looked at. A component this user may not look at (EACCES) is not a finding about
 * the path: it is PERMISSION_DENIED, as is a directory it may not create.
 */
export interface TrustOptions {
  /** What the path is, for messages: "keyring", "target", "lock directory". */
  what: string;
  /** Whose entries count as trusted besides root's (default: the effective uid). */
  uid?: number;
  /** The path itself may be a shared directory (sticky, writable by others): its entries must then be checked one by one. */
  allowShared?: boolean;
  /** Hint when the path does not exist. */
  missingHint?: string;
  /** The codes of the refusals (exit 40 all): KEYRING_UNTRUSTED / KEYRING_MISSING, ... Default SETUP. */
  codes?: TrustCodes;
}

export interface TrustCodes {
  /** Someone else could change the path, or it is not what it must be. */
  untrusted: ErrorCode;
  /** It does not exist. */
  missing: ErrorCode;
}

export interface TrustedPath {
  /** The path with every symbolic link resolved. */
  real: string;
  /** lstat of `real`. */
  stats: Stats;
  /** A directory others can add entries to (sticky and group/other-writable). */
  shared: boolean;
}

/** The sticky bit (inode(7)): in such a directory only an entry's owner (or root) may rename or remove it. */
const S_ISVTX = 0o1000;

/** The kernel's limit on symbolic links followed in one lookup (path_resolution(7)). */
const MAX_LINKS = 40;

interface Missing {
  /** The first component that does not exist (its parent is real and trusted). */
  missing: string;
}

const isShared = (st: Stats): boolean => (st.mode & 0o022) !== 0 && (st.mode & S_ISVTX) !== 0;

/** `0755`, `1777`: the permission bits as ls -l's owner would write them for chmod. */
export function octalMode(st: Stats): string {
  return (st.mode & 0o7777).toString(8).padStart(4, '0');
}

/** "uid 65534 (nobody)": the name from /etc/passwd when there is one; only used in messages. */
export function describeUid(uid: number): string {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(uid));
    const name = line?.split(':')[0];
    return name === undefined || name === '' ? `uid ${uid}` : `uid ${uid} (${name})`;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'EACCES')) return `uid ${uid}`;
    throw err;
  }
}

function effectiveUid(o: TrustOptions): number {
  return o.uid ?? process.geteuid?.() ?? 0;
}

function refuse(o: TrustOptions, path: string, comp: string, st: Stats | undefined, problem: string, hint: string): never {
  throw new FussyError(o.codes?.untrusted ?? 'SETUP', `${o.what} ${path} is not safe to use: ${comp} ${problem}`, {
    hint,
    details: { path: comp, ...(st === undefined ? {} : { owner: st.uid, mode: octalMode(st) }) },
  });
}

/** "owner uid 0 (root), mode 1777" */
function ownerAndMode(st: Stats): string {
  return `owner ${describeUid(st.uid)}, mode ${octalMode(st)}`;
}

function owners(o: TrustOptions): string {
  const uid = effectiveUid(o);
  return uid === 0 ? 'root' : `root or you (uid ${uid})`;
}

/** One component: owned by root or the caller; a directory not writable by others unless sticky. */
function checkComponent(o: TrustOptions, path: string, comp: string, st: Stats, parent: string, parentShared: boolean): void {
  const uid = effectiveUid(o);
  if (st.uid !== 0 && st.uid !== uid) {
    const where = parentShared ? `, inside ${parent}, which anyone can write to` : '';
    refuse(o, path, comp, st, `is owned by ${describeUid(st.uid)} (mode ${octalMode(st)})${where}; only ${owners(o)} may own what fussy relies on`,
      parentShared ? `remove it (it is not fussy's), or use a path only ${owners(o)} can change` : `chown root ${comp}, or use a path only ${owners(o)} can change`);
  }
  if ((st.isDirectory() && !isShared(st)) || st.isFile()) {
    if ((st.mode & 0o022) !== 0) {
      const who = st.mode & 0o002 ? 'everyone' : 'its group';
      refuse(o, path, comp, st, `is writable by ${who} (${ownerAndMode(st)})${st.isDirectory() ? ': they could replace what fussy uses in it' : ''}`, `chmod go-w ${comp}`);
    }
  }
}

function lstatOrMissing(o: TrustOptions, path: string, comp: string): Stats | undefined {
  try {
    return lstatSync(comp);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    // Not a finding about who can change the path: this user may not look (PERMISSION_DENIED).
    if (isErrno(err, 'EACCES')) throw permissionDenied(err, `${o.what} ${path} cannot be checked: ${comp} (${err.code})`, { path: comp, hint: `run fussy as root, or as a user who may search every directory on the way to ${path}` });
    throw err;
  }
}

/** The walk itself: a TrustedPath, or the first component that does not exist yet. */
function walk(path: string, o: TrustOptions): TrustedPath | Missing {
  const abs = resolve(path);
  let todo = abs.split('/').filter((c) => c !== '');
  let cur = '/';
  let st = lstatSync('/');
  checkComponent(o, path, '/', st, '/', false);
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift() as string;
    if (name === '.') continue;
    if (name === '..') {
      // `cur` has no symlinks in it, so its parent is the real `..`, already checked.
      cur = dirname(cur);
      st = lstatSync(cur);
      continue;
    }
    const comp = join(cur, name);
    const s = lstatOrMissing(o, path, comp);
    if (s === undefined) return { missing: comp };
    checkComponent(o, path, comp, s, cur, isShared(st));
    if (s.isSymbolicLink()) {
      if (++links > MAX_LINKS) refuse(o, path, comp, s, 'has too many levels of symbolic links', 'fix the links');
      const target = readlinkSync(comp);
      todo = [...target.split('/').filter((c) => c !== ''), ...todo];
      if (isAbsolute(target)) {
        cur = '/';
        st = lstatSync('/');
      }
      continue;
    }
    if (!s.isDirectory()) {
      if (todo.length > 0) refuse(o, path, comp, s, `is not a directory (${ownerAndMode(s)})`, `check the path ${path}`);
      return { real: comp, stats: s, shared: false };
    }
    cur = comp;
    st = s;
  }
  const shared = st.isDirectory() && isShared(st);
  if (shared && o.allowShared !== true) {
    refuse(o, path, cur, st, `can be written by other users (${ownerAndMode(st)}), like /tmp`, `use a directory only ${owners(o)} can write, or chmod go-w ${cur}`);
  }
  return { real: cur, stats: st, shared };
}

/** Check an existing path (see TrustOptions); refusals (exit 40, `codes`) name the component, its owner and mode. */
export function checkTrustedPath(path: string, o: TrustOptions): TrustedPath {
  const r = walk(path, o);
  if ('missing' in r) {
    throw new FussyError(o.codes?.missing ?? 'SETUP', `${o.what} ${path} does not exist`, { hint: o.missingHint ?? `create it, or check the path (${r.missing} is missing)`, details: { path: r.missing } });
  }
  return r;
}

/**
 * A trusted directory, created (with exactly `mode`, whatever the umask) where it is missing:
 * each missing component is made in a parent that was just found trusted, and the whole path is
 * checked again afterwards, so a name someone else planted in between is refused, not used.
 */
export function ensureTrustedDir(path: string, o: TrustOptions & { mode: number }): TrustedPath {
  for (let round = 0; round < 64; round++) {
    const r = walk(path, o);
    if (!('missing' in r)) {
      if (!r.stats.isDirectory()) refuse(o, path, r.real, r.stats, `is not a directory (${ownerAndMode(r.stats)})`, `remove it or pass another ${o.what}`);
      return r;
    }
    try {
      mkdirSync(r.missing, o.mode);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) continue; // made by someone else meanwhile: the next walk judges it
      if (isPermissionError(err)) {
        throw permissionDenied(err, `cannot create ${o.what} ${r.missing}: ${err.code}`, { path: r.missing, hint: err.code === 'EROFS' ? undefined : `run fussy as root, or create ${r.missing} (owned by ${owners(o)}), or pass another ${o.what}` });
      }
      if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
        throw new FussyError('NO_SPACE', `cannot create ${o.what} ${r.missing}: ${err.code}`, { cause: err, hint: 'free some space on that file system', details: { path: r.missing, errno: err.code } });
      }
      throw err;
    }
    setDirMode(r.missing, o.mode, effectiveUid(o));
  }
  throw new FussyError(o.codes?.untrusted ?? 'SETUP', `${o.what} ${path} keeps changing while fussy creates it`, { hint: 'find out what else creates or removes it' });
}

/**
 * chmod a directory through a descriptor (O_NOFOLLOW, so never the target of a link planted
 * there), only if it is still a directory owned by `uid`. False when it was not.
 */
export function setDirMode(path: string, mode: number, uid: number): boolean {
  let fd: number;
  try {
    fd = openSync(path, FS.O_RDONLY | FS.O_DIRECTORY | FS.O_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ELOOP', 'ENOTDIR', 'ENOENT')) return false;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isDirectory() || st.uid !== uid) return false;
    if ((st.mode & 0o7777) !== mode) fchmodSync(fd, mode);
    return true;
  } finally {
    closeSync(fd);
  }
}
