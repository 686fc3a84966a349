import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { isErrno } from '../errors.js';
import { MANIFEST_NAME, type Manifest } from '../archive/manifest.js';
import { sha256OfFd } from '../util/hash-fd.js';
import { HashCache } from './hash-cache.js';

export interface FileIdentity {
  sha256: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
}

interface Candidate {
  abs: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** Claimed by the release's manifest; undefined for releases installed without one. */
  sha256?: string;
}

const metaKey = (size: number, mode: number, uid: number, gid: number): string => `${size}:${mode}:${uid}:${gid}`;

/**
 * Files of the releases already on the device, findable by content. Dedup is by sha256 plus
 * mode and owner (all shared by hard links), never by size+mtime: rsync --link-dest links files
 * whose content differs when size and mtime agree (security-perf.md §5.1). A candidate is
 * re-hashed before it is linked, because hooks or people can edit files in place and a stale
 * manifest would otherwise spread the damage into the new release; the re-hash is skipped when the
 * hash cache (hash-cache.ts) vouches for the inode, i.e. its ctime has not moved since it was
 * hashed or written by fussy. Releases without a manifest
 * (factory image, Fussy-installed) are indexed by size and hashed only when a size matches.
 */
export class DedupIndex {
  /** Files of releases with a manifest, by the sha256 it claims. */
  readonly #bySha = new Map<string, Candidate[]>();
  /** Files of releases without one, by size and metadata (hashed only on a match). */
  readonly #bySize = new Map<string, Candidate[]>();
  readonly #verified = new Map<string, string>(); // dev:ino -> actual sha256
  /** One read buffer for all candidate hashing: no garbage per file. */
  readonly #buf = Buffer.allocUnsafe(1 << 20);
  readonly cache: HashCache;
  /** Total size of the files indexed: the most dedup could ever share. */
  bytes = 0;

  private constructor(cache: HashCache) {
    this.cache = cache;
  }

  static build(releaseDirs: string[], cache = HashCache.load(undefined)): DedupIndex {
    const index = new DedupIndex(cache);
    for (const dir of releaseDirs) index.#add(dir);
    return index;
  }

  #add(dir: string): void {
    let manifest: Manifest | undefined;
    try {
      manifest = JSON.parse(readFileSync(join(dir, MANIFEST_NAME), 'utf8')) as Manifest;
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !(err instanceof SyntaxError)) throw err;
    }
    if (manifest !== undefined && Array.isArray(manifest.entries)) {
      for (const e of manifest.entries) {
        if (e.type !== 'file' || e.sha256 === undefined || e.size === undefined) continue;
        const c: Candidate = { abs: join(dir, e.path), size: e.size, mode: e.mode, uid: e.uid, gid: e.gid, sha256: e.sha256 };
        this.bytes += e.size;
        const list = this.#bySha.get(e.sha256);
        if (list === undefined) this.#bySha.set(e.sha256, [c]);
        else list.push(c);
      }
      return;
    }
    const walk = (abs: string): void => {
      for (const name of readdirSync(abs)) {
        const p = join(abs, name);
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isFile()) this.#push({ abs: p, size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
      }
    };
    walk(dir);
  }

  #push(c: Candidate): void {
    this.bytes += c.size;
    const key = metaKey(c.size, c.mode, c.uid, c.gid);
    const list = this.#bySize.get(key);
    if (list === undefined) this.#bySize.set(key, [c]);
    else list.push(c);
  }

  /**
   * Cheap guess for the disk-space check and pre-creation: does a release claim this content
   * (manifest), or hold a file of this size and metadata (no manifest, so maybe)?
   */
  probablyHas(f: FileIdentity): boolean {
    return this.#bySha.get(f.sha256)?.some((c) => sameIdentity(c, f)) === true || this.#bySize.has(metaKey(f.size, f.mode, f.uid, f.gid));
  }

  /**
   * Does a release's manifest claim this content with this metadata? Unlike probablyHas, a file
   * of a release without a manifest that merely has the size does not count (the space check).
   */
  claims(f: FileIdentity): boolean {
    return this.#bySha.get(f.sha256)?.some((c) => sameIdentity(c, f)) === true;
  }

  /** A path whose current content and metadata equal `f`, verified now, or undefined. */
  find(f: FileIdentity): string | undefined {
    for (const c of this.#bySha.get(f.sha256) ?? []) {
      if (sameIdentity(c, f) && this.#actualSha(c, f) === f.sha256) return c.abs;
    }
    for (const c of this.#bySize.get(metaKey(f.size, f.mode, f.uid, f.gid)) ?? []) {
      if (this.#actualSha(c, f) === f.sha256) return c.abs;
    }
    return undefined;
  }

  #actualSha(c: Candidate, f: FileIdentity): string | undefined {
    // One lstat answers most lookups (cache hits); only a miss opens and reads the file.
    let st: Stats | undefined;
    try {
      st = lstatSync(c.abs, { throwIfNoEntry: false });
    } catch (err) {
      if (isErrno(err, 'ELOOP', 'EACCES', 'ENOTDIR')) return undefined;
      throw err;
    }
    if (st === undefined || !sameMeta(st, f)) return undefined;
    const key = `${st.dev}:${st.ino}`;
    const known = this.#verified.get(key) ?? this.cache.get(st);
    if (known !== undefined) return known;
    let fd: number;
    try {
      fd = openSync(c.abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ELOOP', 'EACCES', 'ENOTDIR')) return undefined;
      throw err;
    }
    try {
      const fst = fstatSync(fd);
      if (fst.dev !== st.dev || fst.ino !== st.ino || !sameMeta(fst, f)) return undefined; // replaced meanwhile
      const sha = sha256OfFd(fd, this.#buf);
      this.#verified.set(key, sha);
      this.cache.note(fst, sha);
      return sha;
    } finally {
      closeSync(fd);
    }
  }
}

function sameIdentity(c: Candidate, f: FileIdentity): boolean {
  return c.size === f.size && c.mode === f.mode && c.uid === f.uid && c.gid === f.gid;
}

function sameMeta(st: Stats, f: FileIdentity): boolean {
  return st.isFile() && st.size === f.size && (st.mode & 0o7777) === f.mode && st.uid === f.uid && st.gid === f.gid;
}
