import { randomBytes } from 'node:crypto';
import { closeSync, constants as FS, fchmodSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { FussyError, isErrno } from '../errors.js';

/**
 * A temp name beside `file` that nobody can guess (128 random bits): with a predictable name
 * (`file.PID.tmp`), anyone who can write the directory can plant a symlink or a file there first.
 */
export function randomTempName(file: string, suffix = '.tmp'): string {
  return `${file}.${randomBytes(16).toString('hex')}${suffix}`;
}

/**
 * Create `path` as a new file and write `data` through the descriptor: O_CREAT|O_EXCL|O_NOFOLLOW,
 * so whatever already has that name (a planted symlink, a FIFO, a file) makes this fail with
 * EEXIST instead of being written through. The mode is set on the descriptor (not left to the
 * umask; `sync`: fsync'd too). Permission and space errors of the directory become SETUP / NO_SPACE naming it.
 */
export function writeNewFile(path: string, data: string | Buffer, mode: number, opts: { sync?: boolean } = {}): void {
  let fd: number;
  try {
    fd = openSync(path, FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW | FS.O_NOCTTY, mode);
  } catch (err) {
    throw fileError(err, path);
  }
  let ok = false;
  try {
    fchmodSync(fd, mode);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    if (opts.sync === true) fsyncSync(fd);
    ok = true;
  } catch (err) {
    throw fileError(err, path);
  } finally {
    closeSync(fd);
    if (!ok) unlinkQuietly(path);
  }
}

function unlinkQuietly(path: string): void {
  try {
    // Only our own new file can be at this name: it was created O_EXCL just before.
    unlinkSync(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

function fileError(err: unknown, path: string): unknown {
  if (isErrno(err, 'EACCES', 'EPERM', 'EROFS')) {
    return new FussyError('SETUP', `cannot create ${path}: ${err.code}`, { cause: err, hint: 'check who owns that directory and its mode (fussy needs to write there)', details: { path } });
  }
  if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
    return new FussyError('NO_SPACE', `cannot write ${path}: ${err.code}`, { cause: err, hint: 'free some space on that file system', details: { path } });
  }
  return err;
}
