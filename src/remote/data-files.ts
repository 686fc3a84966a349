import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import { FussyError, isErrno } from '../errors.js';
import { commitFile, openNewFile, tempBeside, unlinkIfExists } from '../util/fs-atomic.js';
import type { RemoteClient } from './client.js';

/** The data-file verbs of `fussy remote` over one client (docs/daemon.md, "HTTP API"). */

export interface RemoteDataEntry {
  name: string;
  size: number;
  mtime: string;
}

const dataPath = (name?: string): string => (name === undefined ? '/v1/data' : `/v1/data/${encodeURIComponent(name)}`);

export async function listData(c: RemoteClient): Promise<RemoteDataEntry[]> {
  const r = await c.json('GET', dataPath());
  return Array.isArray(r.files) ? (r.files as RemoteDataEntry[]) : [];
}

/** Upload the local `file` as `name` (default: its base name), streamed. */
export async function putData(c: RemoteClient, file: string, o: { name?: string; overwrite?: boolean }): Promise<{ name: string; size: number }> {
  const name = o.name ?? basename(file);
  const { size } = await uploadFile(c, file, `${dataPath(name)}${o.overwrite === true ? '?overwrite=1' : ''}`);
  return { name, size };
}

/** PUT the bytes of the local regular `file` to `path`, streamed; its size and the device's JSON answer. */
export async function uploadFile(c: RemoteClient, file: string, path: string): Promise<{ size: number; answer: Record<string, unknown> }> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'EISDIR', 'EACCES')) throw new FussyError('USAGE', `cannot read ${file}: ${err.code}`, { cause: err });
    throw err;
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new FussyError('USAGE', `${file} is not a regular file`);
  }
  const stream = createReadStream('', { fd: fh, autoClose: true });
  return { size: st.size, answer: await c.upload(path, stream, st.size) };
}

/** Stream `name` into `sink` (stdout for cat: left open). */
export function readData(c: RemoteClient, name: string, sink: Writable): Promise<number> {
  return c.download(dataPath(name), sink, { end: false });
}

/** Download `name` to the local `file`: written beside it under a temp name, renamed when complete. */
export function getDataToFile(c: RemoteClient, name: string, file: string): Promise<number> {
  return downloadToFile(c, dataPath(name), file);
}

/** GET `path` into the local `file`, written beside it under a temp name and renamed when complete. */
export async function downloadToFile(c: RemoteClient, path: string, file: string): Promise<number> {
  const tmp = tempBeside(file, 'remote-get');
  const fd = openNewFile(tmp, 0o644);
  try {
    const n = await c.download(path, createWriteStream('', { fd, autoClose: true }));
    await commitFile(tmp, file);
    return n;
  } catch (err) {
    await unlinkIfExists(tmp);
    throw err;
  }
}

export async function moveData(c: RemoteClient, from: string, to: string, overwrite: boolean): Promise<void> {
  await c.json('POST', `${dataPath(from)}/move`, { to, overwrite });
}

export async function removeData(c: RemoteClient, name: string): Promise<void> {
  await c.json('DELETE', dataPath(name));
}
