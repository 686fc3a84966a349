import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isErrno } from '../errors.js';

/** fsync a directory so a rename inside it survives a power cut (rename(2), fsync(2)). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r+');
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

/** Remove a file if it exists. */
export async function unlinkIfExists(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}
