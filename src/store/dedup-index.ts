import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, lstatSync, openSync, renameSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { isErrno } from '../errors.js';
import { noEvents, type LogEvent } from '../events.js';
import { MAX_DEPTH } from '../archive/entry-path.js';
import { walkBeneath } from '../util/dir-fd.js';
import { sha256OfFd } from '../util/hash-fd.js';
import { NO_FAILPOINTS, type Failpoints } from '../util/failpoint.js';
import { HashCache } from './hash-cache.js';
import { readInstalledManifest } from './installed-manifest.js';

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

/** A candidate whose content was verified: the inode that was hashed (or vouched for), by dev/ino. */
export interface Found {
  abs: string;
  dev: number;
  ino: number;
  identity: FileIdentity;
}

export interface DedupIndexOptions {
  /** The hash cache that vouches for inodes hashed before (default: an empty one). */
  cache?: HashCache;
  failpoints?: Failpoints;
  /** Hears of each release left out because its manifest was changed after install. */
  onEvent?: (e: LogEvent) => void;
}

const metaKey = (size: number, mode: number, uid: number, gid: number): string => `${size}:${mode}:${uid}:${gid}`;

/**
 * Files of the releases already on the device, findable by content. Dedup is by sha256 plus
 * mode and owner (all shared by hard links), never by size+mtime: rsync --link-dest links files
 * whose content differs when size and mtime agree (its --checksum is off by default). A candidate is
 * re-hashed before it is linked, because hooks or people can edit files in place and a stale
 * manifest would otherwise spread the damage into the new release; the re-hash is skipped when the
 * hash cache (hash-cache.ts) vouches for the inode, i.e. its ctime has not moved since it was
 * hashed or written by fussy. Releases without a manifest
 * (factory image, Fussy-installed) are indexed by size and hashed only when a size matches.
 * A release whose manifest no longer validates (readInstalledManifest's `problem`: edited, or
 * replaced by a symlink or FIFO) is left out altogether, with a log event: someone changed it
 * after install, `fussy verify` names it, and an install never depends on what it claims.
 */
export class DedupIndex {
  /** Files of releases with a manifest, by the sha256 it claims. */
  readonly #bySha = new Map<string, Candidate[]>();
  readonly #byIdentity = new Map<string, Candidate[]>(); // the same by sha256 and metadata: find's key
  /** Files of releases without one, by size and metadata (hashed only on a match). */
  readonly #bySize = new Map<string, Candidate[]>();
  /** The same files by size alone: where a delta's content may also be (findContent). */
  readonly #bySizeAny = new Map<number, Candidate[]>();
  readonly #verified = new Map<string, string>(); // dev:ino -> actual sha256
  /** Answers, and files without a manifest hashed by size: each looked at once per install (forged-lookup-flood). */
  readonly #answers = new Map<string, Found | undefined>();
  readonly #pools = new Map<string, Map<string, Found>>();
  /** One read buffer for all candidate hashing (no garbage per file): made at the first, grown to 1 MiB. */
  #buf: Buffer | undefined;
  readonly #fp: Failpoints;
  /** Temp names for replaceWith: unguessable, unique per call. */
  readonly #nonce = randomBytes(6).toString('hex');
  #tmp = 0;
  readonly cache: HashCache;
  /** Total size of the files indexed: the most dedup could ever share. */
  bytes = 0;

  private constructor(cache: HashCache, fp: Failpoints) {
    this.cache = cache;
    this.#fp = fp;
  }

  static build(releaseDirs: string[], o: DedupIndexOptions = {}): DedupIndex {
    const index = new DedupIndex(o.cache ?? HashCache.load(undefined), o.failpoints ?? NO_FAILPOINTS);
    const emit = o.onEvent ?? noEvents;
    for (const dir of releaseDirs) index.#add(dir, emit);
    return index;
  }

  #add(dir: string, emit: (e: LogEvent) => void): void {
    // Only a hint of where to look (every candidate is hashed or vouched for before use). A valid
    // manifest in a directory a user owns may still be forged (`distrust`), but its paths stay
    // inside the release: the schema refuses "..", absolute paths and NUL.
    const read = readInstalledManifest(dir);
    if (read !== undefined && 'problem' in read) {
      emit({ type: 'log', message: `${dir} is not used for dedup: ${read.problem} (run fussy verify)` });
      return;
    }
    if (read !== undefined) {
      for (const e of read.manifest.entries) {
        if (e.type !== 'file') continue;
        const size = e.size as number; // the schema requires size and sha256 of a file
        const c: Candidate = { abs: `${dir}/${e.path}`, size, mode: e.mode, uid: e.uid, gid: e.gid, sha256: e.sha256 };
        this.bytes += size;
        push(this.#bySha, e.sha256 as string, c);
        push(this.#byIdentity, `${e.sha256 as string}:${metaKey(size, e.mode, e.uid, e.gid)}`, c);
      }
      return;
    }
    // Users may own directories of a release and change them during the walk: by descriptor,
    // never through a symlink, vanished entries skipped; no release is deeper than an archive may be.
    walkBeneath(dir, (rel, st) => {
      if (st.isFile()) this.#push({ abs: join(dir, rel), size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    }, { maxDepth: MAX_DEPTH });
  }

  #push(c: Candidate): void {
    this.bytes += c.size;
    push(this.#bySize, metaKey(c.size, c.mode, c.uid, c.gid), c);
    push(this.#bySizeAny, c.size, c);
  }

  /**
   * Cheap guess for the disk-space check and pre-creation: does a release claim this content
   * (manifest), or hold a file of this size and metadata (no manifest, so maybe)?
   */
  probablyHas(f: FileIdentity): boolean {
    return this.claims(f) || this.#bySize.has(metaKey(f.size, f.mode, f.uid, f.gid));
  }

  /**
   * Does a release's manifest claim this content with this metadata? Unlike probablyHas, a file
   * of a release without a manifest that merely has the size does not count (the space check).
   */
  claims(f: FileIdentity): boolean {
    return this.#byIdentity.has(`${f.sha256}:${metaKey(f.size, f.mode, f.uid, f.gid)}`);
  }

  /**
   * A file whose current content and metadata equal `f`, verified now, or undefined. What was
   * verified is an inode, not a path: link it with linkTo or replaceWith, which check that the
   * inode linked is that one (a user who owns the candidate's directory can swap the name).
   */
  find(f: FileIdentity): Found | undefined {
    const meta = metaKey(f.size, f.mode, f.uid, f.gid);
    return this.#answer(`find:${f.sha256}:${meta}`, () => {
      for (const c of this.#byIdentity.get(`${f.sha256}:${meta}`) ?? []) {
        const v = this.#actualSha(c, f);
        if (v?.sha === f.sha256) return { abs: c.abs, dev: v.dev, ino: v.ino, identity: f };
      }
      const copy = this.#pool(`meta:${meta}`, this.#bySize.get(meta)).get(f.sha256);
      return copy === undefined ? undefined : { ...copy, identity: f };
    });
  }

  /**
   * A file whose current content is `sha256` (and `size`), whatever its mode and owner, verified
   * now: where a delta package's file comes from when no file with its metadata too is there to
   * link (it is then copied, and the copy hashed again). Candidates are the manifests' claims.
   */
  findContent(sha256: string, size: number): Found | undefined {
    // The manifests' claims first; then files of releases without one (a factory image) of that size, hashed.
    return this.#answer(`content:${sha256}:${size}`, () => {
      for (const c of this.#bySha.get(sha256) ?? []) {
        const found = c.size === size ? this.#asItIs(c) : undefined;
        if (found?.identity.sha256 === sha256) return found;
      }
      return this.#pool(`size:${size}`, this.#bySizeAny.get(size)).get(sha256);
    });
  }

  #answer(key: string, look: () => Found | undefined): Found | undefined {
    if (!this.#answers.has(key)) this.#answers.set(key, look());
    return this.#answers.get(key);
  }

  /** Files without a manifest in `list` (of one size), each hashed once, by content: the first copy of each. */
  #pool(key: string, list: Candidate[] | undefined): Map<string, Found> {
    let pool = this.#pools.get(key);
    if (pool !== undefined) return pool;
    pool = new Map();
    for (const c of list ?? []) {
      const found = this.#asItIs(c);
      if (found === undefined || !sameIdentity(c, found.identity) || pool.has(found.identity.sha256)) continue; // changed since the walk: not what the key says
      pool.set(found.identity.sha256, found);
    }
    this.#pools.set(key, pool);
    return pool;
  }

  /** The candidate as it is now: its own mode and owner (a release installed by another user has other owners than its manifest's) and its content, verified. */
  #asItIs(c: Candidate): Found | undefined {
    const st = lstatIfThere(c.abs);
    if (st === undefined || !st.isFile()) return undefined;
    const identity = { sha256: '', size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    const v = this.#actualSha(c, identity, st);
    if (v === undefined) return undefined;
    identity.sha256 = v.sha;
    return { abs: c.abs, dev: v.dev, ino: v.ino, identity };
  }

  /**
   * Hard-link the candidate `find` verified to `dest` (a new name in the private staging dir).
   * link(2) works by path, so the new name is checked to be the verified inode, still a regular
   * file of the wanted size, mode and owner; if not (the candidate was swapped after it was
   * verified), the new name is removed and false returned: the caller writes the data instead.
   * One lstat per link.
   */
  linkTo(c: Found, dest: string): boolean {
    this.#fp.at('dedup-before-link');
    try {
      linkSync(c.abs, dest);
    } catch (err) {
      // Gone or moved since it was verified, or at the link limit (EMLINK): write a copy instead.
      if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP', 'EMLINK')) return false;
      throw err;
    }
    const st = lstatSync(dest);
    if (st.dev === c.dev && st.ino === c.ino && sameMeta(st, c.identity)) return true;
    unlinkSync(dest);
    return false;
  }

  /**
   * Replace the file just written at `dest` with a hard link to the verified candidate (no
   * manifest: content is known only after writing). Linked beside it and renamed over it only
   * once linkTo's check passed, so on a mismatch the written file stays.
   */
  replaceWith(c: Found, dest: string): boolean {
    const tmp = join(dirname(dest), `.fussy-dedup-${this.#nonce}-${++this.#tmp}`); // short: dest's name may be near NAME_MAX
    if (!this.linkTo(c, tmp)) return false;
    renameSync(tmp, dest);
    return true;
  }

  /** `taken`: the candidate's lstat, if the caller just took it. */
  #actualSha(c: Candidate, f: FileIdentity, taken?: Stats): { sha: string; dev: number; ino: number } | undefined {
    // One lstat answers most lookups (cache hits); only a miss opens and reads the file.
    const st = taken ?? lstatIfThere(c.abs);
    if (st === undefined || !sameMeta(st, f)) return undefined;
    const key = `${st.dev}:${st.ino}`;
    const known = this.#verified.get(key) ?? this.cache.get(st);
    if (known !== undefined) return { sha: known, dev: st.dev, ino: st.ino };
    let fd: number;
    try {
      fd = openSync(c.abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      // EAGAIN: its owner holds a lease on it (fcntl F_SETLEASE, which any owner may take), and an
      // O_NONBLOCK open is told so rather than made to wait; ENXIO: a socket there now. Either way
      // not a copy to use (lease-blocks-install: it made every install an internal error).
      if (isErrno(err, 'ENOENT', 'ELOOP', 'EACCES', 'ENOTDIR', 'EAGAIN', 'ENXIO')) return undefined;
      throw err;
    }
    try {
      const at = Date.now(); // before the fstat: HashCache.note
      const fst = fstatSync(fd);
      if (fst.dev !== st.dev || fst.ino !== st.ino || !sameMeta(fst, f)) return undefined; // replaced meanwhile
      this.#fp.at('dedup-before-hash');
      const want = Math.min(1 << 20, Math.max(64 << 10, fst.size));
      if (this.#buf === undefined || this.#buf.length < want) this.#buf = Buffer.allocUnsafe(want);
      const sha = sha256OfFd(fd, this.#buf, fst.size); // never past the size checked: its owner may grow it meanwhile
      if (sha === undefined) return undefined; // cut short meanwhile
      this.#verified.set(key, sha);
      this.cache.note(fst, sha, at);
      return { sha, dev: fst.dev, ino: fst.ino };
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

function push<K>(map: Map<K, Candidate[]>, key: K, c: Candidate): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [c]);
  else list.push(c);
}

/** lstat, undefined when nothing (or a link loop, an unreadable or non-directory parent) is there. */
function lstatIfThere(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (isErrno(err, 'ELOOP', 'EACCES', 'ENOTDIR')) return undefined;
    throw err;
  }
}
