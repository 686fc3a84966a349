import { closeSync, createReadStream, fstatSync, openSync, type ReadStream } from 'node:fs';
import { link, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { at, DIR_NOFOLLOW, FILE_NOFOLLOW } from '../util/dir-fd.js';
import { CREATE_NEW, fsyncDir, isTempName, tempName, unlinkIfExists } from '../util/fs-atomic.js';
import { checkName, NAME } from './router.js';
import { tooLarge } from './http-io.js';

/**
 * The data files scripts share (STATE/data/, docs/daemon.md). Every name is one checked
 * component, and every file is reached through the descriptor of the data directory opened once
 * (util/dir-fd.ts: /proc/self/fd/N/NAME is NAME inside exactly that directory), never through a
 * symlink the directory holds: reads open O_NOFOLLOW and must find a regular file; writes go to
 * a fresh `.fussy-tmp-data-*` (O_EXCL|O_NOFOLLOW), fsynced, then link(2)ed to the name (no
 * overwrite: EEXIST is ALREADY_EXISTS, the old file untouched) or rename(2)d over it (overwrite).
 * Until that step nothing is visible under the name; a failed or aborted write removes its temp
 * file, and a crash's temp files are removed when the store opens.
 */

export interface DataEntry {
  name: string;
  size: number;
  mtime: string;
}

export interface DataFile {
  stream: ReadStream;
  size: number;
  mtime: string;
}

export class DataStore {
  readonly #fd: number;
  readonly dir: string;

  private constructor(dir: string, fd: number) {
    this.dir = dir;
    this.#fd = fd;
  }

  /** Open (create) `stateDir/data` and remove the temp files of an interrupted write. */
  static async open(stateDir: string): Promise<DataStore> {
    const dir = join(stateDir, 'data');
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const store = new DataStore(dir, openSync(dir, DIR_NOFOLLOW));
    for (const name of await readdir(store.#at())) if (isTempName(name, 'data')) await unlinkIfExists(store.#at(name));
    return store;
  }

  close(): void {
    closeSync(this.#fd);
  }

  #at(name?: string): string {
    return at(this.#fd, name);
  }

  async list(): Promise<DataEntry[]> {
    const out: DataEntry[] = [];
    for (const e of await readdir(this.#at(), { withFileTypes: true })) {
      if (!e.isFile() || !NAME.test(e.name)) continue;
      try {
        const st = await lstat(this.#at(e.name));
        if (st.isFile()) out.push({ name: e.name, size: st.size, mtime: st.mtime.toISOString() });
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err; // removed meanwhile
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The bytes of `name`: a regular file reached without a symlink. */
  async read(name: string): Promise<DataFile> {
    checkName(name);
    // A plain descriptor, not a FileHandle: the stream closes it, and nothing else may (a
    // FileHandle left to the garbage collector closes its number again, whatever it is by then).
    let fd: number;
    try {
      fd = openSync(this.#at(name), FILE_NOFOLLOW);
    } catch (err) {
      throw lookupError(err, name);
    }
    let st;
    try {
      st = fstatSync(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (!st.isFile()) {
      closeSync(fd);
      throw notRegular(name);
    }
    return { stream: createReadStream('', { fd, autoClose: true }), size: st.size, mtime: st.mtime.toISOString() };
  }

  /** Store `body` as `name`: at most `maxBytes`, no overwrite unless asked. */
  async write(name: string, body: AsyncIterable<Buffer> & { complete?: boolean }, o: { overwrite: boolean; maxBytes: number }): Promise<{ name: string; size: number }> {
    checkName(name);
    const tmp = tempName('data');
    const fh = await open(this.#at(tmp), CREATE_NEW, 0o640);
    let size = 0;
    try {
      try {
        await fh.chmod(0o640);
        for await (const chunk of body) {
          size += chunk.length;
          if (size > o.maxBytes) throw tooLarge(o.maxBytes, `data file ${name}`);
          await fh.write(chunk);
        }
        if (body.complete === false) throw new FussyError('BAD_REQUEST', `the upload of ${name} ended before its body did`, { details: { status: 400 } });
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.#place(tmp, name, o.overwrite);
    } catch (err) {
      await unlinkIfExists(this.#at(tmp));
      throw err;
    }
    await fsyncDir(this.#at());
    return { name, size };
  }

  /** Rename `from` to `to`: no overwrite unless asked; `from` must be a regular file. */
  async move(from: string, to: string, overwrite: boolean): Promise<void> {
    checkName(from);
    checkName(to);
    if (from === to) throw new FussyError('BAD_REQUEST', `${from} cannot be moved onto itself`, { details: { status: 400 } });
    await this.#regular(from);
    await this.#place(from, to, overwrite);
    await fsyncDir(this.#at());
  }

  async remove(name: string): Promise<void> {
    checkName(name);
    await this.#regular(name);
    try {
      await unlink(this.#at(name));
    } catch (err) {
      throw lookupError(err, name);
    }
    await fsyncDir(this.#at());
  }

  /** `from` (a file of ours) becomes `to`: link + unlink refuses an existing `to` atomically; rename replaces it. */
  async #place(from: string, to: string, overwrite: boolean): Promise<void> {
    if (overwrite) {
      try {
        if (!(await lstat(this.#at(to))).isFile()) throw notRegular(to);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      await rename(this.#at(from), this.#at(to));
      return;
    }
    try {
      await link(this.#at(from), this.#at(to));
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new FussyError('ALREADY_EXISTS', `data file ${to} exists`, { hint: 'ask for overwrite (fussy remote ... --overwrite) to replace it' });
      throw err;
    }
    await unlink(this.#at(from));
  }

  async #regular(name: string): Promise<void> {
    let isFile: boolean;
    try {
      isFile = (await lstat(this.#at(name))).isFile();
    } catch (err) {
      throw lookupError(err, name);
    }
    if (!isFile) throw notRegular(name);
  }
}

function lookupError(err: unknown, name: string): unknown {
  if (isErrno(err, 'ENOENT')) return new FussyError('NOT_FOUND', `no data file ${name}`, { hint: 'fussy remote ls --data lists them', details: { status: 404 } });
  if (isErrno(err, 'ELOOP')) return notRegular(name);
  return err;
}

function notRegular(name: string): FussyError {
  return new FussyError('NOT_REGULAR_FILE', `data file ${name} is not a regular file (a symlink, directory or device): fussyd does not follow or replace it`, { hint: 'root on the device removes it from the data directory' });
}
