import { createHash } from 'node:crypto';
import { close, createReadStream, fsync, lstatSync, mkdirSync, openSync, rmSync, symlinkSync, utimesSync, write } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { FussyError, isErrno } from '../errors.js';
import { FILE_NOFOLLOW } from '../util/dir-fd.js';
import { fsyncDir, isTempName, openNewFile, tempBeside, unlinkIfExists, writeAtomic } from '../util/fs-atomic.js';
import { checkName, SCRIPT_ID } from './names.js';

const writeFd = promisify(write);
const fsyncFd = promisify(fsync);
const closeFd = promisify(close);

/** Who stored a script: the client certificate's CN and SHA-256 fingerprint. */
export interface ByWhom {
  cn: string;
  fingerprint: string;
}

export interface ScriptVersion {
  id: string;
  size: number;
  updated: string;
  by: ByWhom;
}

/** A name, the version it points at, and the versions it pointed at before (newest first; still runnable by id). */
export interface ScriptEntry extends ScriptVersion {
  name: string;
  older: ScriptVersion[];
}

/** A script to run or read: its object file, and the name its kind comes from (the extension). */
export interface ResolvedScript {
  name: string;
  id: string;
  size: number;
  path: string;
  /** STATE/scripts/named/<id>/<name>, a symlink to the object: what an executable script runs as, so that its `$0` is its name. */
  named?: string;
}

interface Index {
  names: Record<string, Omit<ScriptEntry, 'name'>>;
  /** Every id ever stored, with the name it was last stored under (an id keeps its kind after its name moved on or was removed). */
  ids: Record<string, { name: string; size: number }>;
}

export interface ScriptStoreOptions {
  /** Bytes a script may have (max-script-bytes, 1 MiB). */
  maxBytes?: number;
  /** How many older versions a name remembers (20). */
  keepOlder?: number;
  now?: () => Date;
}

/**
 * Scripts stored by content (STATE/scripts/objects/<sha256>, written once, mode 0500) and an
 * index of names (STATE/scripts/index.json, replaced atomically). A name points at its newest
 * id; the ids it pointed at before stay runnable, so the history's ids mean what ran. An object
 * no name points at any more (a removed name's, or a version past `keepOlder`) is removed by
 * prune() once it has been neither stored nor run for history-days: by then no run record in the
 * history names it.
 */
export class ScriptStore {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private index: Index,
    private readonly o: Required<ScriptStoreOptions>,
  ) {}

  static async open(stateDir: string, o: ScriptStoreOptions = {}): Promise<ScriptStore> {
    const dir = join(stateDir, 'scripts');
    await mkdir(join(dir, 'objects'), { recursive: true, mode: 0o700 });
    return new ScriptStore(dir, await readIndex(join(dir, 'index.json')), { maxBytes: o.maxBytes ?? 1024 * 1024, keepOlder: o.keepOlder ?? 20, now: o.now ?? (() => new Date()) });
  }

  /** Store `source` under `name`: streamed to a temp file with the size cap, hashed on the way, never whole in memory. */
  put(name: string, source: Readable | Uint8Array, by: ByWhom): Promise<ScriptEntry> {
    checkName(name);
    return this.serial(async () => {
      const { id, size } = await this.writeObject(name, source);
      this.link(id, name);
      const was = this.index.names[name];
      const older = was === undefined || was.id === id ? (was?.older ?? []) : [{ id: was.id, size: was.size, updated: was.updated, by: was.by }, ...was.older.filter((v) => v.id !== id)];
      const entry = { id, size, updated: this.o.now().toISOString(), by: { cn: by.cn, fingerprint: by.fingerprint }, older: older.slice(0, this.o.keepOlder) };
      const next: Index = { names: { ...this.index.names, [name]: entry }, ids: { ...this.index.ids, [id]: { name, size } } };
      await this.save(next);
      return { name, ...entry };
    });
  }

  list(): ScriptEntry[] {
    return Object.entries(this.index.names)
      .map(([name, e]) => ({ name, ...e }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** A name's current version, or an id (any ever stored): NOT_FOUND otherwise. A name wins over an id that looks the same. */
  resolve(nameOrId: string): ResolvedScript {
    const byName = this.index.names[nameOrId];
    if (byName !== undefined) return { name: nameOrId, id: byName.id, size: byName.size, path: this.objectPath(byName.id), ...this.named(byName.id, nameOrId) };
    const byId = SCRIPT_ID.test(nameOrId) ? this.index.ids[nameOrId] : undefined;
    if (byId !== undefined) return { name: byId.name, id: nameOrId, size: byId.size, path: this.objectPath(nameOrId), ...this.named(nameOrId, byId.name) };
    checkName(nameOrId);
    throw new FussyError('NOT_FOUND', `no script ${JSON.stringify(nameOrId)}`, { hint: 'list the stored scripts; a script is named by its name or its sha256 id', details: { script: nameOrId } });
  }

  /** Whether a name is stored (resolve() without the refusal). */
  has(name: string): boolean {
    return this.index.names[name] !== undefined;
  }

  /** The bytes of a script (never through a symlink planted in the store). */
  open(nameOrId: string): Readable {
    const path = this.resolve(nameOrId).path;
    return createReadStream(path, { fd: openSync(path, FILE_NOFOLLOW) });
  }

  /** Forget a name; its ids stay (runnable and readable by id). */
  remove(name: string): Promise<void> {
    checkName(name);
    return this.serial(async () => {
      if (this.index.names[name] === undefined) this.resolve(name);
      const names = { ...this.index.names };
      delete names[name];
      await this.save({ names, ids: this.index.ids });
    });
  }

  /** A run of `id` starts: its object's mtime says when it was last used (prune keeps it that much longer). */
  used(id: string): void {
    try {
      const now = this.o.now();
      utimesSync(this.objectPath(id), now, now);
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'EPERM', 'EACCES', 'EROFS')) throw err; // best effort: the run goes on
    }
  }

  /**
   * Remove the objects no name points at (as its current or one of its older versions) that were
   * neither stored nor run for `maxAgeMs`, and temp files a crash left (an hour old). Returns the
   * ids removed (fussyd logs them).
   */
  prune(maxAgeMs: number): Promise<string[]> {
    return this.serial(async () => {
      const live = new Set<string>();
      for (const e of Object.values(this.index.names)) for (const v of [e, ...e.older]) live.add(v.id);
      const now = this.o.now().getTime();
      const removed: string[] = [];
      for (const name of await readdir(join(this.dir, 'objects'))) {
        const temp = isTempName(name);
        if (!temp && (!SCRIPT_ID.test(name) || live.has(name))) continue;
        const st = await lstat(this.objectPath(name)).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
        if (st === undefined || now - st.mtimeMs <= (temp ? 3_600_000 : maxAgeMs)) continue;
        await unlinkIfExists(this.objectPath(name));
        if (temp) continue;
        rmSync(join(this.dir, 'named', name), { recursive: true, force: true });
        removed.push(name);
      }
      if (removed.length === 0) return removed;
      const ids = { ...this.index.ids };
      for (const id of removed) delete ids[id];
      await this.save({ names: this.index.names, ids });
      await fsyncDir(join(this.dir, 'objects'));
      return removed;
    });
  }

  /**
   * STATE/scripts/named/<id>/<name> -> ../../objects/<id> (made at put; fussyd's, in its 0700
   * scripts dir). The object never changes, so neither does what the link runs.
   */
  private link(id: string, name: string): void {
    const dir = join(this.dir, 'named', id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    try {
      symlinkSync(join('..', '..', 'objects', id), join(dir, name));
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }

  /** The named link of `id` as `name`, when it is there (a store older than the links has none: the object path serves). */
  private named(id: string, name: string): { named?: string } {
    const path = join(this.dir, 'named', id, name);
    try {
      return lstatSync(path).isSymbolicLink() ? { named: path } : {};
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return {};
      throw err;
    }
  }

  private objectPath(id: string): string {
    return join(this.dir, 'objects', id);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch((err: unknown) => err);
    return run;
  }

  private async save(next: Index): Promise<void> {
    await writeAtomic(join(this.dir, 'index.json'), JSON.stringify(next) + '\n', { mode: 0o600 });
    this.index = next;
  }

  private async writeObject(name: string, source: Readable | Uint8Array): Promise<{ id: string; size: number }> {
    const tmp = tempBeside(this.objectPath('x'), 'script');
    const fd = openNewFile(tmp, 0o500);
    const hash = createHash('sha256');
    let size = 0;
    let done = false;
    try {
      try {
        for await (const chunk of source instanceof Uint8Array ? [source] : source) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
          size += buf.length;
          if (size > this.o.maxBytes) throw tooLarge(name, this.o.maxBytes);
          hash.update(buf);
          for (let off = 0; off < buf.length; ) off += (await writeFd(fd, buf, off, buf.length - off)).bytesWritten;
        }
        await fsyncFd(fd);
      } finally {
        await closeFd(fd);
      }
      const id = hash.digest('hex');
      await rename(tmp, this.objectPath(id)); // same id, same bytes: replacing an object changes nothing
      done = true;
      await fsyncDir(join(this.dir, 'objects'));
      return { id, size };
    } finally {
      if (!done) await unlinkIfExists(tmp);
    }
  }
}

function tooLarge(name: string, max: number): FussyError {
  return new FussyError('TOO_LARGE', `script ${name} is larger than ${max} bytes`, { hint: 'raise max-script-bytes in fussyd.conf, or keep big inputs as data files', details: { name, max } });
}

async function readIndex(file: string): Promise<Index> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { names: {}, ids: {} };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<Index>;
    return { names: parsed.names ?? {}, ids: parsed.ids ?? {} };
  } catch (err) {
    throw new FussyError('STATE_UNREADABLE', `${file} does not parse: ${(err as Error).message}`, { cause: err, hint: 'restore it from a backup, or remove it and store the scripts again', details: { path: file } });
  }
}
