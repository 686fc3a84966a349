import { lstatSync, readFileSync, type Stats } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../errors.js';

/** Entries whose ctime is this close to the moment they were recorded are not trusted. */
const RACY_MS = 200;
/** Beyond this many entries only the newest release's are kept (a device has a few releases). */
const MAX_ENTRIES = 500_000;
const VERSION = 2;

interface Stored {
  /** ctime in ms with its sub-ms fraction (sub-µs resolution), as node's Stats give it */
  c: string;
  s: number;
  h: string;
}

/**
 * sha256 of files already on the device, trusted only while the inode's ctime is unchanged: any
 * write, chmod, chown or link to the file moves its ctime, which no unprivileged program can set
 * back. This is git's index / OSTree's devino cache idea. It spares dedup from re-reading every
 * file of the previous release on each update. Entries whose ctime was within 200 ms of the
 * moment they were recorded are "racy" (a write in the same timestamp tick as our stat would
 * keep the ctime) and are re-hashed instead. The cache is only a hint: missing, corrupt or
 * foreign files are ignored, and a miss falls back to hashing the file.
 */
export class HashCache {
  readonly #entries: Map<string, Stored & { at: number }>;
  readonly #fresh = new Map<string, Stored & { at: number }>();

  private constructor(entries: Map<string, Stored & { at: number }>) {
    this.#entries = entries;
  }

  static load(file: string | undefined): HashCache {
    const entries = new Map<string, Stored & { at: number }>();
    if (file === undefined) return new HashCache(entries);
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown; groups?: unknown };
      if (data.version === VERSION && Array.isArray(data.groups)) {
        for (const g of data.groups as Array<{ at: string; files: Record<string, Stored> }>) {
          const at = Number(g.at);
          if (!Number.isFinite(at)) continue;
          for (const [k, v] of Object.entries(g.files)) {
            if (typeof v?.c === 'string' && typeof v.s === 'number' && typeof v.h === 'string') entries.set(k, { c: v.c, s: v.s, h: v.h, at });
          }
        }
      }
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'EACCES') && !(err instanceof SyntaxError) && !(err instanceof TypeError) && !(err instanceof RangeError)) throw err;
    }
    return new HashCache(entries);
  }

  /** The recorded sha256 of this inode, if its ctime and size are what they were and not racy. */
  get(st: Stats): string | undefined {
    const key = `${st.dev}:${st.ino}`;
    const e = this.#fresh.get(key) ?? this.#entries.get(key);
    if (e === undefined || e.c !== String(st.ctimeMs) || e.s !== st.size) return undefined;
    if (st.ctimeMs > e.at - RACY_MS) return undefined;
    return e.h;
  }

  /** Remember a hash computed just now (the ctime is checked against `now` when next read). */
  note(st: Stats, sha256: string): void {
    this.#fresh.set(`${st.dev}:${st.ino}`, { c: String(st.ctimeMs), s: st.size, h: sha256, at: Date.now() });
  }

  /**
   * Record the files of a release just installed (paths relative to `dir` with their sha256),
   * merge with what was known, and write the cache atomically. Asynchronous, so it can run while
   * the release's hooks do: the recording time is taken first, and any file a hook changes after
   * it has a ctime inside the racy window, so it is never trusted. Best effort: a cache that
   * cannot be written only costs the next install some hashing.
   */
  async save(file: string, dir: string, files: Array<[string, string]>): Promise<void> {
    const at = Date.now();
    const mine: Record<string, Stored> = {};
    let n = 0;
    // lstatSync in slices, yielding between them: a promise per file costs ~4x more, and the
    // main thread has little else to do while a hook runs.
    const SLICE = 256;
    for (let i = 0; i < files.length; i += SLICE) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      for (const [rel, sha] of files.slice(i, i + SLICE)) {
        let st: Stats | undefined;
        try {
          st = lstatSync(join(dir, rel), { throwIfNoEntry: false });
        } catch {
          st = undefined;
        }
        if (st === undefined || !st.isFile()) continue;
        mine[`${st.dev}:${st.ino}`] = { c: String(st.ctimeMs), s: st.size, h: sha };
        n += 1;
      }
    }
    const byAt = new Map<number, Record<string, Stored>>();
    if (n < MAX_ENTRIES) {
      let kept = n;
      for (const [k, e] of [...this.#entries, ...this.#fresh]) {
        if (k in mine || kept >= MAX_ENTRIES) continue;
        let g = byAt.get(e.at);
        if (g === undefined) byAt.set(e.at, (g = {}));
        g[k] = { c: e.c, s: e.s, h: e.h };
        kept += 1;
      }
    }
    const groups = [...byAt].map(([a, f]) => ({ at: String(a), files: f }));
    groups.push({ at: String(at), files: mine });
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, JSON.stringify({ version: VERSION, groups }));
      await rename(tmp, file);
    } catch {
      // best effort (read-only state dir, full disk): the next install hashes instead
    }
  }
}
