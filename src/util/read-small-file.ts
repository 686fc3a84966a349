import { closeSync, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { isErrno } from '../errors.js';
import { FILE_NOFOLLOW } from './dir-fd.js';

export type SmallFile = { data: Buffer; st: Stats } | { problem: string };

/**
 * Read a file root did not necessarily write itself (a manifest in a release directory someone
 * else may own), without being led astray: a symlink is not followed, a FIFO does not block, a
 * device or anything but a regular file is not read, and nothing past `max` bytes is read (a
 * file that grows meanwhile is cut there and reported). undefined when there is no such file.
 */
export function readSmallFile(path: string, max: number): SmallFile | undefined {
  let fd: number;
  try {
    fd = openSync(path, FILE_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    if (isErrno(err, 'ELOOP')) return { problem: 'is a symlink' };
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: 'is not a regular file' };
    if (st.size > max) return { problem: `is larger than ${max} bytes` };
    const data = Buffer.allocUnsafe(st.size + 1); // one byte more shows a file that grew
    let n = 0;
    for (let r = 1; r > 0 && n < data.length; n += r) r = readSync(fd, data, n, data.length - n, null);
    if (n > st.size) return { problem: 'changed while it was read' };
    return { data: data.subarray(0, n), st };
  } finally {
    closeSync(fd);
  }
}
