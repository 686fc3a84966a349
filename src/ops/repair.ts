import { createHash } from 'node:crypto';
import { closeSync, fchmodSync, fchownSync, fstatSync, fsyncSync, futimesSync, lchownSync, lstatSync, openSync, readSync, renameSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Manifest, ManifestEntry } from '../archive/manifest.js';
import { isErrno } from '../errors.js';
import { installedMode } from '../store/ownership.js';
import { CREATE_NEW, isTempName, tempName, unlinkIfExistsSync } from '../util/fs-atomic.js';
import { at, DIR_NOFOLLOW, FILE_NOFOLLOW, withDirBeneath } from '../util/dir-fd.js';
import { fsFailure } from '../util/fs-failure.js';
import { readInstalledManifest } from '../store/installed-manifest.js';
import { readLayout } from '../store/layout.js';
import type { Finding, ReleaseReport, VerifyOptions } from './verify.js';

export interface RepairResult {
  release: string;
  repaired: string[];
  /** Temp files an interrupted repair had left, removed. */
  removed: string[];
  /** Problems left: no healthy copy found, extra entries (never deleted), types. */
  left: Finding[];
}

/** Where a repair acts: the entry's parent directory, open by descriptor, and its name there. */
interface Place {
  dir: number;
  name: string;
}

/** errnos that mean a user changed the tree since verify looked: the entry is left, not an error. */
const MOVED = ['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'ENOTEMPTY', 'EEXIST'];
/** The temp names of repairs before util/fs-atomic.ts named every temp file alike. */
const LEGACY_REPAIR_TEMP = /^\.fussy-repair-[0-9a-f]{24}$/;

/**
 * Whether `name` (one path component) is a temp file a repair may have left: exactly
 * tempName('repair') (`.fussy-tmp-repair-<32 hex>`), or `.fussy-repair-<24 hex>` of an older
 * fussy (a release lives for years, and only verify --repair ever sweeps one).
 */
export function isRepairTemp(name: string): boolean {
  return isTempName(name, 'repair') || LEGACY_REPAIR_TEMP.test(name);
}

/**
 * `fussy verify --repair`: put back what the manifests say, under the target's lock. Release
 * directories may hold directories owned by service users, so nothing here acts by a path such a
 * user could redirect: the entry's parent is opened component by component with O_NOFOLLOW from
 * the release directory (a component swapped for a symlink leaves the entry unrepaired), and
 * everything happens through that descriptor (dir-fd.ts) or a file's own descriptor.
 * - Content: a new file is created beside the damaged one under an unguessable name,
 *   O_CREAT|O_EXCL|O_NOFOLLOW, and filled from a healthy copy (a file of any release whose
 *   manifest names the same sha256, read through an O_NOFOLLOW descriptor); the bytes copied are
 *   hashed as they are copied, and only a copy that hashes to the manifest's sha256 is given the
 *   manifest's owner, mode and mtime (fchown, fchmod, futimes), fsync'd and renamed over the
 *   damaged one. It never shares the damaged inode (hard links share damage).
 * - Mode and owner: through an O_NOFOLLOW descriptor of the file, checked to be a regular file,
 *   when the file is root's (or already its manifest owner's) and writable by nobody else;
 *   otherwise someone else may hold it open for writing, so it is replaced by a verified copy
 *   (of itself, if its content is right) like damaged content.
 * - Symlinks are made anew under an unguessable name and renamed into place, never followed.
 * Releases whose manifest someone else could have replaced (installed-manifest.ts) are not
 * repaired. Extra entries are reported, never deleted (they may be data).
 * Durability: a copy or a symlink is fsync'd (a symlink cannot be opened: its directory's fsync
 * covers it), renamed, then its directory fsync'd; metadata fixed in place is fsync'd through
 * its descriptor. A crash between creating a temp file and its rename leaves that temp file; the
 * next `verify --repair` of the release removes it (verify reports it as `leftover`: a regular
 * file or symlink named exactly as tempName('repair') names them (or as an older fussy did), not in the manifest; a listed entry,
 * a directory or any other name is never removed). Recovery does not look for them: it would
 * have to walk every release on every command that takes the lock.
 */
export async function repair(o: VerifyOptions & { reports: ReleaseReport[] }): Promise<RepairResult[]> {
  const target = resolve(o.target);
  const layout = await readLayout(target);
  const manifests = installedManifests(target, layout.releases);
  const buf = Buffer.allocUnsafe(1 << 20);
  // Healthy copies of a sha256 anywhere on the device; the content is checked while copying.
  const copiesOf = (sha: string): string[] => [...manifests].flatMap(([r, { manifest }]) => manifest.entries.filter((e) => e.type === 'file' && e.sha256 === sha).map((e) => join(target, r, e.path)));
  const results: RepairResult[] = [];
  for (const report of o.reports) {
    const m = manifests.get(report.release);
    const repaired: string[] = [];
    const removed: string[] = [];
    const left: Finding[] = [];
    const top = join(target, report.release);
    for (const f of report.findings) {
      const e = m?.manifest.entries.find((x) => x.path === f.path);
      if (m?.distrust !== undefined) {
        left.push({ ...f, detail: `${f.detail}; not repaired: ${m.distrust}, so its manifest may not be the one fussy installed` });
        continue;
      }
      if (f.problem === 'leftover' && m !== undefined && e === undefined) {
        const outcome = act(top, f.path, removeLeftover);
        if (outcome === undefined) removed.push(f.path);
        else left.push({ ...f, detail: `${f.detail}; ${outcome}` });
        continue;
      }
      if (e === undefined || f.problem === 'extra' || f.problem === 'type') {
        left.push(f);
        continue;
      }
      const outcome = act(top, e.path, (p) => fix(p, e, f, { asRoot: o.owner.asRoot, buf, copies: () => copiesOf(e.sha256 ?? '') }));
      if (outcome === undefined) repaired.push(f.path);
      else left.push({ ...f, detail: `${f.detail}; ${outcome}` });
    }
    results.push({ release: report.release, repaired, removed, left });
  }
  return results;
}

/**
 * Run `fn` on `rel`'s parent, opened beneath `top` by descriptor. A path a user changed since
 * verify looked is an outcome (not repaired); any other errno (EACCES, EIO, ENOSPC) an error.
 */
function act(top: string, rel: string, fn: (p: Place) => string | undefined): string | undefined {
  try {
    return withDirBeneath(top, rel === '.' ? '' : dirname(rel), (dir) => fn({ dir, name: rel === '.' ? '.' : basename(rel) }));
  } catch (err) {
    if (!isErrno(err, ...MOVED)) throw fsFailure(err, join(top, rel), 'repair');
    return `its path changed since it was checked (${err.code}): not repaired`;
  }
}

/** Unlink a temp file a repair left (never a directory, never followed), then fsync its directory. */
function removeLeftover(p: Place): string | undefined {
  const st = lstatSync(at(p.dir, p.name));
  if (!isRepairTemp(p.name) || !(st.isFile() || st.isSymbolicLink())) return 'not a temp file of fussy: kept';
  unlinkSync(at(p.dir, p.name));
  fsyncSync(p.dir);
  return undefined;
}

interface FixContext {
  asRoot: boolean;
  buf: Buffer;
  copies: () => string[];
}

/** Repair one finding at `p`; returns why it could not be repaired, or undefined when it was. */
function fix(p: Place, e: ManifestEntry, f: Finding, c: FixContext): string | undefined {
  const mode = installedMode(e.mode, c.asRoot);
  if (e.type === 'symlink' && (f.problem === 'link' || f.problem === 'missing' || f.problem === 'owner')) {
    const tmp = tempName('repair');
    symlinkSync(e.target ?? '', at(p.dir, tmp));
    try {
      if (c.asRoot) lchownSync(at(p.dir, tmp), e.uid, e.gid);
      renameSync(at(p.dir, tmp), at(p.dir, p.name));
    } catch (err) {
      unlinkIfExistsSync(at(p.dir, tmp));
      throw err;
    }
    fsyncSync(p.dir);
    return undefined;
  }
  if (e.type === 'directory' && (f.problem === 'mode' || f.problem === 'owner')) {
    const fd = p.name === '.' ? p.dir : openSync(at(p.dir, p.name), DIR_NOFOLLOW);
    try {
      if (c.asRoot) fchownSync(fd, e.uid, e.gid);
      fchmodSync(fd, mode);
      fsyncSync(fd);
    } finally {
      if (fd !== p.dir) closeSync(fd);
    }
    return undefined;
  }
  if ((e.type === 'file' || e.type === 'hardlink') && (f.problem === 'mode' || f.problem === 'owner')) {
    const inPlace = fixInPlace(p, e, mode, c.asRoot);
    if (inPlace !== 'unsafe') return inPlace;
    if (e.type === 'hardlink') return 'someone else could write it, and a copy would no longer be a hard link: not repaired';
    // Someone else could write it (and hold it open): give the manifest's metadata to a fresh copy.
    return replaceFile(p, e, mode, [at(p.dir, p.name), ...c.copies()], undefined, c) ? undefined : 'no copy with the right content on the device';
  }
  if (e.type === 'file' && (f.problem === 'changed' || f.problem === 'missing')) {
    const now = inodeAt(p);
    return replaceFile(p, e, mode, c.copies(), now, c) ? undefined : 'no healthy copy on the device';
  }
  return 'fussy does not repair this';
}

/**
 * fchown/fchmod a regular file through its own O_NOFOLLOW descriptor, when that is safe: it is
 * this process's user's (root's) or already its manifest owner's, and writable by nobody else,
 * so nobody else can hold it open for writing. undefined: done; 'unsafe': not done; else why not.
 */
function fixInPlace(p: Place, e: ManifestEntry, mode: number, asRoot: boolean): string | undefined {
  const fd = openSync(at(p.dir, p.name), FILE_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return 'it is no longer a regular file: not repaired';
    if ((st.uid !== (process.geteuid?.() ?? 0) && st.uid !== e.uid) || (st.mode & 0o022) !== 0) return 'unsafe';
    if (asRoot) fchownSync(fd, e.uid, e.gid);
    fchmodSync(fd, mode); // after chown: chown(2) clears setuid/setgid
    fsyncSync(fd);
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** dev/ino of what is at `p` now (not following a symlink), if anything. */
function inodeAt(p: Place): { dev: number; ino: number } | undefined {
  let fd: number;
  try {
    fd = openSync(at(p.dir, p.name), FILE_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ELOOP')) return undefined;
    throw err;
  }
  try {
    const st = fstatSync(fd);
    return { dev: st.dev, ino: st.ino };
  } finally {
    closeSync(fd);
  }
}

/** Put a verified copy of the first usable source at `p`: true when done. */
function replaceFile(p: Place, e: ManifestEntry, mode: number, sources: string[], damaged: { dev: number; ino: number } | undefined, c: FixContext): boolean {
  for (const src of sources) {
    let fd: number;
    try {
      fd = openSync(src, FILE_NOFOLLOW);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) continue; // gone, or a symlink now: try the next copy
      throw fsFailure(err, src, 'read');
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size !== e.size || (damaged !== undefined && st.dev === damaged.dev && st.ino === damaged.ino)) continue;
      if (copyInto(p, fd, e, mode, c)) return true;
    } finally {
      closeSync(fd);
    }
  }
  return false;
}

/**
 * Copy from `src` into a new file beside `p.name`, hashing what is copied; only a copy with the
 * manifest's size and sha256 gets its metadata and is renamed into place.
 */
function copyInto(p: Place, src: number, e: ManifestEntry, mode: number, c: FixContext): boolean {
  const tmp = tempName('repair');
  const out = openSync(at(p.dir, tmp), CREATE_NEW, 0o600);
  let keep = false;
  try {
    const hash = createHash('sha256');
    let total = 0;
    for (let n = readSync(src, c.buf, 0, c.buf.length, null); n > 0 && total <= (e.size ?? 0); n = readSync(src, c.buf, 0, c.buf.length, null)) {
      hash.update(c.buf.subarray(0, n));
      for (let off = 0; off < n; ) off += writeSync(out, c.buf, off, n - off);
      total += n;
    }
    if (total !== e.size || hash.digest('hex') !== e.sha256) return false;
    if (c.asRoot) fchownSync(out, e.uid, e.gid);
    fchmodSync(out, mode); // after chown: chown(2) clears setuid/setgid
    futimesSync(out, e.mtime, e.mtime);
    fsyncSync(out);
    renameSync(at(p.dir, tmp), at(p.dir, p.name));
    keep = true;
  } finally {
    closeSync(out);
    if (!keep) unlinkIfExistsSync(at(p.dir, tmp));
  }
  fsyncSync(p.dir);
  return true;
}

/** The readable installed manifests of `releases`, by name; an unreadable one is an error. */
export function installedManifests(target: string, releases: string[]): Map<string, { manifest: Manifest; distrust?: string }> {
  const manifests = new Map<string, { manifest: Manifest; distrust?: string }>();
  for (const r of releases) {
    let m;
    try {
      m = readInstalledManifest(join(target, r));
    } catch (err) {
      throw fsFailure(err, join(target, r), 'read the manifest in');
    }
    if (m !== undefined && 'manifest' in m) manifests.set(r, m);
  }
  return manifests;
}

