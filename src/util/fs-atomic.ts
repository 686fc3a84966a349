import { constants as FS } from 'node:fs';
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

/**
 * Replace `file` with `text` so that a crash leaves either the old or the new content: write
 * `file.tmp-PID`, fsync, rename over `file`, fsync the directory. The temp file is created
 * O_EXCL|O_NOFOLLOW, never written through whatever is at its name: a leftover of a crashed
 * process with the same pid is removed first (unlink does not follow links).
 */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}${TMP_SUFFIX}${process.pid}`;
  const flags = FS.O_WRONLY | FS.O_CREAT | FS.O_EXCL | FS.O_NOFOLLOW;
  let fh;
  try {
    fh = await open(tmp, flags, 0o644);
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    await unlink(tmp);
    fh = await open(tmp, flags, 0o644);
  }
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await fsyncDir(dirname(file));
}

/** Remove a file if it exists. */
export async function unlinkIfExists(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}
