import { lstatSync, readFileSync, type Stats } from 'node:fs';
import { isErrno } from '../errors.js';
import { writeAtomic } from '../util/fs-atomic.js';

/**
 * Entries whose ctime is this close to the moment they were recorded are not trusted: more than
 * the lag of the kernel's coarse clock that stamps ctimes (one tick: 10 ms at HZ=100, the least).
 */
export const RACY_MS = 20;
/**
 * The same for a file system that keeps whole seconds (ext4 with 128-byte inodes, FAT-like
 * ones): a ctime with no fraction of a second may be up to 2 s behind the write that set it.
 */
const COARSE_RACY_MS = 2000;
/**
 * Recordings kept besides the new one: the releases of the last few installs. Entries of
 * releases removed since then would otherwise pile up with every install.
 */
const KEEP_GROUPS = 3;
/** 3: recorded at the sealing time, with a 20 ms window (2 kept the recording's own time and 200 ms). */
const VERSION = 3;

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
  readonly #fresh = new Map<string, Stored>();
  /** The earliest moment one of the fresh hashes' files was looked at (note's `at`): the racy check holds for each. */
  #freshAt = Infinity;

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
    const fresh = this.#fresh.get(key);
    const e = fresh ?? this.#entries.get(key);
    if (e === undefined || e.c !== String(st.ctimeMs) || e.s !== st.size) return undefined;
    const at = fresh !== undefined ? this.#freshAt : (e as Stored & { at: number }).at;
    if (st.ctimeMs > at - (st.ctimeMs % 1000 === 0 ? COARSE_RACY_MS + RACY_MS : RACY_MS)) return undefined;
    return e.h;
  }

  /**
   * Remember a hash just computed of the file whose stat is `st`, taken after `at` (Date.now()
   * before the fstat: a change after it has a ctime inside the racy window of `at`). Only for a
   * file no one but fussy's user can write (onlyMine).
   */
  note(st: Stats, sha256: string, at: number): void {
    if (!onlyMine(st)) return;
    this.#freshAt = Math.min(this.#freshAt, at);
    this.#fresh.set(`${st.dev}:${st.ino}`, { c: String(st.ctimeMs), s: st.size, h: sha256 });
  }

  /**
   * Record the files of a release just installed (paths relative to `dir` with their sha256),
   * merge with the hashes taken during this install and the newest KEEP_GROUPS recordings, and
   * write the cache atomically. `sealedAt` is when the release became reachable by anyone but
   * this process (sealAfter: the moment before its staging directory was renamed into place); it
   * is the recording time. Asynchronous, so it can run while the release's hooks do: any file a
   * hook (or anyone) changes has a ctime inside the racy window of `sealedAt`, so it is never
   * trusted. Best effort: a cache that
   * cannot be written only costs the next install some hashing. A file is recorded only when
   * every directory on its path is fussy's own (see safeDirs): the hash comes from the manifest
   * and the inode from a path, and a user who owns a directory of the release could otherwise
   * swap names (or whole subdirectories, which keeps the files' ctimes) so that the cache vouches
   * for one root-owned file with another's hash, and a later install links the wrong content.
   */
  async save(file: string, dir: string, files: Array<[string, string]>, sealedAt = Date.now()): Promise<void> {
    const at = sealedAt;
    const mine: Record<string, Stored> = {};
    // lstatSync in slices, yielding between them: a promise per file costs ~4x more, and the
    // main thread has little else to do while a hook runs.
    const SLICE = 256;
    const safe = safeDirs(dir);
    const me = process.geteuid?.() ?? 0;
    for (let i = 0; i < files.length; i += SLICE) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      for (const [rel, sha] of files.slice(i, i + SLICE)) {
        if (!safe(rel)) continue;
        let st: Stats | undefined;
        try {
          // A checked archive path (no "..", not absolute), so joined by hand: path.join's
          // normalising took ~5 ms for 3,000 files, half the lstats' time.
          st = lstatSync(`${dir}/${rel}`, { throwIfNoEntry: false });
        } catch (err) {
          if (!isErrno(err, 'ENOTDIR', 'EACCES', 'ELOOP')) throw err; // a hook replaced a directory meanwhile
          st = undefined;
        }
        if (st === undefined || !st.isFile() || !onlyMine(st, me)) continue;
        mine[`${st.dev}:${st.ino}`] = { c: String(st.ctimeMs), s: st.size, h: sha };
      }
    }
    const keep = new Set([...new Set([...this.#entries.values()].map((e) => e.at))].sort((a, b) => b - a).slice(0, KEEP_GROUPS));
    const byAt = new Map<number, Record<string, Stored>>();
    const put = (at: number, k: string, e: Stored): void => {
      if (k in mine) return;
      let g = byAt.get(at);
      if (g === undefined) byAt.set(at, (g = {}));
      g[k] = { c: e.c, s: e.s, h: e.h };
    };
    for (const [k, e] of this.#entries) if (keep.has(e.at) && !this.#fresh.has(k)) put(e.at, k, e);
    for (const [k, e] of this.#fresh) put(this.#freshAt, k, e);
    const groups = [...byAt].map(([a, f]) => ({ at: String(a), files: f }));
    groups.push({ at: String(at), files: mine });
    try {
      // 0600: it holds the sha256 of files only root may read (hash-cache-readable: a user could test guesses of a secret against it).
      await writeAtomic(file, JSON.stringify({ version: VERSION, groups }), { durable: false, mode: 0o600 });
    } catch (err) {
      // best effort (read-only state dir, full disk): the next install hashes instead
      if (!isErrno(err, 'EROFS', 'ENOSPC', 'EDQUOT', 'EACCES', 'EIO')) throw err;
    }
  }
}

/**
 * Whether only fussy's user can write the file: the cache vouches for no file a local user (its
 * owner, or its group or anyone by its mode) could change, since a change between the moment
 * install verifies a file and the moment it links it is hidden by the link's own ctime change.
 * Such files are hashed at every install instead.
 */
function onlyMine(st: Stats, me = process.geteuid?.() ?? 0): boolean {
  return st.uid === me && (st.mode & 0o022) === 0;
}

/** Milliseconds of the monotonic clock (performance.now() without loading perf_hooks, ~2 ms at start-up). */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Wait until the racy window has passed since `lastWrite` (monotonicMs() when the last of a
 * staged release's files was written or changed), and return the wall time: the sealing time of HashCache.save. Every
 * file written then has a ctime older than the window, so the cache vouches for all of them at
 * the next install (the large files a delta patches against most of all), while anything changed
 * after the release is reachable is still caught. At most RACY_MS of waiting; usually none.
 */
export async function sealAfter(lastWrite: number): Promise<number> {
  // Waited by the monotonic clock (monotonicMs), so a step of the wall clock cannot stretch
  // it; the seal itself is wall time, as ctimes are. A step back in between only makes entries racy.
  const until = lastWrite + RACY_MS + 1;
  for (let wait = until - monotonicMs(); wait > 0; wait = until - monotonicMs()) {
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
  return Date.now();
}

/**
 * A test for paths below `dir`: true when `dir` and every directory between it and the entry are
 * owned by this process's user and writable by nobody else, so no one else can have changed what
 * the path leads to. Directories are lstat'd once each.
 */
function safeDirs(dir: string): (rel: string) => boolean {
  const me = process.geteuid?.() ?? 0;
  const known = new Map<string, boolean>();
  const ok = (rel: string): boolean => {
    let v = known.get(rel);
    if (v !== undefined) return v;
    const slash = rel.lastIndexOf('/');
    v = rel === '' || ok(slash < 0 ? '' : rel.slice(0, slash));
    if (v) {
      let st: Stats | undefined;
      try {
        st = lstatSync(rel === '' ? dir : `${dir}/${rel}`, { throwIfNoEntry: false });
      } catch (err) {
        if (!isErrno(err, 'ENOTDIR', 'EACCES', 'ELOOP')) throw err;
      }
      v = st !== undefined && st.isDirectory() && st.uid === me && (st.mode & 0o022) === 0;
    }
    known.set(rel, v);
    return v;
  };
  return (rel) => {
    const slash = rel.lastIndexOf('/');
    return ok(slash < 0 ? '' : rel.slice(0, slash));
  };
}
