import { randomBytes } from 'node:crypto';
import { constants, constants as FS } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isErrno } from '../errors.js';

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

/** Suffix of the temp files writeAtomic leaves if it is cut short (swept by recovery). */
export const TMP_SUFFIX = '.tmp-';

/** A temp file writeAtomic (or an older fussy, `.tmp-PID`) may have left behind. */
export function isAtomicTemp(name: string): boolean {
  return /\.tmp-\d+(-[0-9a-f]{16})?$/.test(name);
}

/** open(2) flags for a new file that must not exist yet, nor be reached through a symlink. */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Replace `file` with `text` so that a crash leaves either the old or the new content: write
 * `file.tmp-PID-RANDOM`, fsync, rename over `file`, fsync the directory. The temp file is created
 * O_EXCL|O_NOFOLLOW under a name nobody can guess: a symlink or file planted beside `file` is
 * never written through. `durable: false` skips both fsyncs (caches only).
 */
export async function writeAtomic(file: string, text: string, o: { durable?: boolean } = {}): Promise<void> {
  const tmp = `${file}${TMP_SUFFIX}${process.pid}-${randomBytes(8).toString('hex')}`;
  const fh = await open(tmp, CREATE_NEW, 0o644);
  try {
    try {
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
