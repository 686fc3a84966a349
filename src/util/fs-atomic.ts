import { randomBytes } from 'node:crypto';
import { closeSync, constants as FS, fchmodSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { isPermissionError, permissionDenied } from './system-error.js';

/*
 * The one temp-file scheme of fussy. Every file fussy writes in place of another (journal,
 * device state, history head, hash cache, lock records, keys, repair copies, the spooled
 * package, packages it packs) is first created beside its destination as
 * `.fussy-tmp-<purpose>-<32 hex>`: 128 random bits nobody can guess, so nothing can be planted
 * at the name in advance; created O_CREAT|O_EXCL|O_NOFOLLOW with its mode set on the
 * descriptor, written and fsynced through the descriptor, renamed, and its directory fsynced.
 * A crash between the create and the rename leaves a file of exactly that pattern, and only
 * that: recovery sweeps them from `.fussy/` (txn/recover.ts), verify --repair from releases.
 */

/** What every temp name starts with. */
export const TEMP_PREFIX = '.fussy-tmp-';
/** A purpose: lower-case words joined by "-", at most 24 characters. */
const PURPOSE = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const TEMP_NAME = /^\.fussy-tmp-([a-z][a-z0-9]*(?:-[a-z0-9]+)*)-[0-9a-f]{32}$/;

/** A fresh temp name (one path component) for `purpose` ("journal", "lock", "repair", ...). */
export function tempName(purpose: string): string {
  if (!PURPOSE.test(purpose) || purpose.length > 24) throw new Error(`bad temp purpose ${JSON.stringify(purpose)}`);
  return `${TEMP_PREFIX}${purpose}-${randomBytes(16).toString('hex')}`;
}

/** A fresh temp path in the directory of `file` (same file system, so rename(2) is atomic). */
export function tempBeside(file: string, purpose: string): string {
  return join(dirname(file), tempName(purpose));
}

/** Whether `name` (one path component) is exactly a name tempName() makes (for `purpose`, if given). */
export function isTempName(name: string, purpose?: string): boolean {
  const m = TEMP_NAME.exec(name);
  return m !== null && m[1] !== undefined && m[1].length <= 24 && (purpose === undefined || m[1] === purpose);
}

/** writeAtomic's default purpose: the destination's name up to its first dot ("history.head" -> "history"). */
function purposeOf(file: string): string {
  const p = (basename(file).split('.')[0] ?? '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^[^a-z]+|-+$/g, '').slice(0, 24).replace(/-+$/, '');
  return PURPOSE.test(p) ? p : 'file';
}

/** fsync a directory so a rename inside it survives a power cut (rename(2), fsync(2)). */
export async function fsyncDir(dir: string): Promise<void> {
  // O_DIRECTORY: a FIFO at that name fails at once instead of blocking the open.
  const fh = await open(dir, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a file the caller just wrote (never through a symlink found at its name). */
export async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, FS.O_RDWR | FS.O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Make a fully written temp file durable under its final name: fsync, rename, fsync the dir. */
export async function commitFile(tmp: string, final: string): Promise<void> {
  await fsyncFile(tmp);
  await rename(tmp, final);
  await fsyncDir(dirname(final));
}

/** open(2) flags for a new file that must not exist yet, nor be reached through a symlink. */
export const CREATE_NEW = FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW | FS.O_NOCTTY;

/**
 * Create `path` as a new file and return its descriptor: O_CREAT|O_EXCL|O_NOFOLLOW, so whatever
 * already has that name (a planted symlink, a FIFO, a file) makes this fail with EEXIST instead
 * of being written through. The mode is set on the descriptor (not left to the umask).
 * `readable`: O_RDWR (the spooled package is read back through it). Permission and space errors
 * of the directory become PERMISSION_DENIED / NO_SPACE naming it.
 */
export function openNewFile(path: string, mode: number, o: { readable?: boolean } = {}): number {
  let fd: number;
  try {
    fd = openSync(path, o.readable === true ? (CREATE_NEW & ~FS.O_WRONLY) | FS.O_RDWR : CREATE_NEW, mode);
  } catch (err) {
    throw fileError(err, path);
  }
  try {
    fchmodSync(fd, mode);
  } catch (err) {
    closeSync(fd);
    unlinkIfExistsSync(path); // only our own new file can be at this name: it was created O_EXCL just before
    throw err;
  }
  return fd;
}

/**
 * Create `path` as a new file (openNewFile) and write `data` through the descriptor (`sync`:
 * fsync'd too). On failure nothing is left at `path`.
 */
export function writeNewFile(path: string, data: string | Buffer, mode: number, opts: { sync?: boolean } = {}): void {
  const fd = openNewFile(path, mode);
  let ok = false;
  try {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    if (opts.sync === true) fsyncSync(fd);
    ok = true;
  } catch (err) {
    throw fileError(err, path);
  } finally {
    closeSync(fd);
    if (!ok) unlinkIfExistsSync(path);
  }
}

/**
 * Replace `file` with `text` so that a crash leaves either the old or the new content: write a
 * temp file beside it (tempName(purpose), by default named after `file`), fsync, rename over
 * `file`, fsync the directory. `durable: false` skips both fsyncs (caches only).
 */
export async function writeAtomic(file: string, text: string, o: { durable?: boolean; purpose?: string; mode?: number } = {}): Promise<void> {
  const tmp = tempBeside(file, o.purpose ?? purposeOf(file));
  const mode = o.mode ?? 0o644;
  // Errors stay plain errnos here: callers decide (the hash cache is best effort).
  const fh = await open(tmp, CREATE_NEW, mode);
  try {
    try {
      await fh.chmod(mode);
      await fh.writeFile(text);
      if (o.durable !== false) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlinkIfExists(tmp);
    throw err;
  }
  if (o.durable !== false) await fsyncDir(dirname(file));
}

/** Remove a file if it exists. */
export async function unlinkIfExists(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/** Remove a file or symlink if it is still there (never follows it); anything but ENOENT is thrown. */
export function unlinkIfExistsSync(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

function fileError(err: unknown, path: string): unknown {
  if (isPermissionError(err)) return permissionDenied(err, `cannot create ${path}: ${err.code}`, { path, hint: err.code === 'EROFS' ? undefined : `run fussy as root, or make ${dirname(path)} writable by this user` });
  if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
    return new FussyError('NO_SPACE', `cannot write ${path}: ${err.code}`, { cause: err, hint: 'free some space on that file system', details: { path } });
  }
  return err;
}
