import { closeSync, constants as FS, fstatSync, lstatSync, openSync, type Stats } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';
import { at } from '../util/dir-fd.js';
import { CREATE_NEW, unlinkIfExistsSync, writeAtomic } from '../util/fs-atomic.js';
import { fsFailure } from '../util/fs-failure.js';
import { readSmallFile } from '../util/read-small-file.js';

/*
 * The files of one upload in STATE/uploads, each named inside the directory's descriptor
 * (util/dir-fd.ts `at`), never through a link planted at its name:
 *   <sha256>.json  {size, created}: the upload was begun with this size (written first, removed last)
 *   <sha256>.part  the bytes received so far (0600)
 *   <sha256>.pkg   the whole package once its sha256 was checked (the .part renamed)
 */

export const SIDECAR = '.json';
export const PART = '.part';
export const DONE = '.pkg';

export interface Sidecar {
  size: number;
  created: string;
}

/** Opening an existing .part for writing: never through a symlink (ELOOP), never blocking on a FIFO (ENXIO). */
const OPEN_PART = FS.O_WRONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK | FS.O_NOCTTY;
const READ_PART = FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK | FS.O_NOCTTY;

/** The sidecar of `sha256`, undefined when there is none (or what is there is not one we wrote). */
export function readSidecar(dirFd: number, sha256: string): Sidecar | undefined {
  const f = readSmallFile(at(dirFd, sha256 + SIDECAR), 4096);
  if (f === undefined || 'problem' in f) return undefined;
  try {
    const v = JSON.parse(f.data.toString('utf8')) as Partial<Sidecar>;
    return Number.isSafeInteger(v.size) && typeof v.created === 'string' ? { size: v.size as number, created: v.created } : undefined;
  } catch (err) {
    if (err instanceof SyntaxError) return undefined; // torn by hand: the upload starts again
    throw err;
  }
}

export async function writeSidecar(dirFd: number, sha256: string, s: Sidecar): Promise<void> {
  try {
    await writeAtomic(at(dirFd, sha256 + SIDECAR), JSON.stringify(s) + '\n', { mode: 0o600, purpose: 'upload' });
  } catch (err) {
    throw fsFailure(err, sha256 + SIDECAR, 'write');
  }
}

/** lstat of `name` in the directory, undefined when nothing is there. */
export function lstatAt(dirFd: number, name: string): Stats | undefined {
  try {
    return lstatSync(at(dirFd, name));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Whether `st` is a file this store wrote: a regular file with no other name. */
export function isOwnFile(st: Stats | undefined): st is Stats {
  return st !== undefined && st.isFile() && st.nlink === 1;
}

/** Bytes held by a .part (0 when it is missing or not a plain file: that one is never used). */
export function partSize(dirFd: number, sha256: string): number {
  const st = lstatAt(dirFd, sha256 + PART);
  return isOwnFile(st) ? st.size : 0;
}

/**
 * The .part of `sha256`, open for writing: the existing one, or a new empty one when nothing
 * usable is there. A symlink, FIFO, device or hard link planted at the name is removed (unlink
 * never follows) and never written through. `fresh`: a new file was made.
 */
export function openPart(dirFd: number, sha256: string): { fd: number; fresh: boolean } {
  const path = at(dirFd, sha256 + PART);
  try {
    const fd = openSync(path, OPEN_PART);
    if (isOwnFile(fstatSync(fd))) return { fd, fresh: false };
    closeSync(fd);
  } catch (err) {
    // A directory at the name (EISDIR) is not ours to remove: SETUP, for an administrator.
    if (!isErrno(err, 'ENOENT', 'ELOOP', 'ENXIO')) throw fsFailure(err, sha256 + PART, 'open');
  }
  unlinkIfExistsSync(path);
  try {
    return { fd: openSync(path, CREATE_NEW, 0o600), fresh: true };
  } catch (err) {
    throw fsFailure(err, sha256 + PART, 'create');
  }
}

/** The .part (or verified .pkg) open for reading, with its size; undefined when there is no usable one. */
export function openForReading(dirFd: number, name: string): { fd: number; size: number } | undefined {
  let fd: number;
  try {
    fd = openSync(at(dirFd, name), READ_PART);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ELOOP', 'ENXIO')) return undefined;
    throw fsFailure(err, name, 'open');
  }
  const st = fstatSync(fd);
  if (isOwnFile(st)) return { fd, size: st.size };
  closeSync(fd);
  return undefined;
}

/** Remove the files of an upload, the sidecar last (so no .part is ever left without one). */
export function removeFiles(dirFd: number, sha256: string): boolean {
  let removed = false;
  for (const name of [sha256 + PART, sha256 + DONE, sha256 + SIDECAR]) {
    if (lstatAt(dirFd, name) === undefined) continue;
    unlinkIfExistsSync(at(dirFd, name));
    removed = true;
  }
  return removed;
}

export function noUpload(sha256: string): FussyError {
  return new FussyError('NOT_FOUND', `no upload ${sha256}`, { hint: 'begin the upload first: name its sha256 and size', details: { sha256 } });
}
