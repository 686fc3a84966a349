import { closeSync, fstatSync, openSync, type Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { MAX_DEPTH } from '../archive/entry-path.js';
import { MANIFEST_NAME, type ManifestEntry } from '../archive/manifest.js';
import { FussyError, isErrno } from '../errors.js';
import { installedMode } from '../store/ownership.js';
import { FILE_NOFOLLOW, walkBeneath } from '../util/dir-fd.js';
import { fsFailure } from '../util/fs-failure.js';
import { sha256OfFd } from '../util/hash-fd.js';
import { readInstalledManifest } from '../store/installed-manifest.js';
import { currentName, readLayout } from '../store/layout.js';
import { withTarget } from '../txn/recover.js';
import type { TargetRunOptions } from '../txn/target-run-options.js';
import { isRepairTemp, repair, type RepairResult } from './repair.js';
import { markRepairable } from './repairable.js';

export { repair, type RepairResult } from './repair.js';

export interface Finding {
  path: string;
  /** leftover: a temp file of a `verify --repair` that was cut short (the next one removes it). */
  problem: 'changed' | 'missing' | 'extra' | 'leftover' | 'type' | 'mode' | 'owner' | 'link';
  detail: string;
  /** `fussy verify --repair` can fix it (set by verify(), not verifyRelease()). */
  repairable?: boolean;
}

export interface ReleaseReport {
  release: string;
  /** false: installed without a manifest (factory image, original Fussy): nothing to compare. */
  manifest: boolean;
  checked: number;
  findings: Finding[];
}

export interface VerifyOptions {
  target: string;
  /** Releases to check; default: current's. */
  names?: string[];
  all?: boolean;
  owner: { asRoot: boolean };
}

/**
 * `fussy verify` (docs/commands.md): compare installed releases with their manifests, file by file
 * (sha256, size, type, mode, owner as root, symlink targets, hard links) and name every changed,
 * missing and extra entry. Releases share unchanged files as hard links, so one file edited in
 * place (a hook appending to a config) is wrong in every release that shares it: a changed file
 * says how many other links it has. Reads only: no lock needed, safe beside a running install.
 */
export async function verify(o: VerifyOptions): Promise<ReleaseReport[]> {
  const target = resolve(o.target);
  let layout;
  try {
    layout = await readLayout(target);
  } catch (err) {
    throw fsFailure(err, target, 'read');
  }
  let names = o.names ?? [];
  if (o.all === true) names = layout.releases;
  else if (names.length === 0) {
    const cur = await currentName(target);
    if (cur === undefined) throw new FussyError('RELEASE_NOT_FOUND', `${target} has no current release to verify`, { hint: 'name a release, or --all' });
    names = [cur];
  }
  const reports: ReleaseReport[] = [];
  for (const n of names) {
    if (!layout.releases.includes(n)) throw new FussyError('RELEASE_NOT_FOUND', `there is no release ${n} in ${target}`, { hint: `installed releases: ${layout.releases.join(', ') || '(none)'}` });
    reports.push(await verifyRelease(join(target, n), n, o.owner));
  }
  return markRepairable(target, reports, o.owner.asRoot);
}

export async function verifyRelease(dir: string, release: string, owner: { asRoot: boolean }): Promise<ReleaseReport> {
  let read;
  try {
    read = readInstalledManifest(dir);
  } catch (err) {
    throw fsFailure(err, join(dir, MANIFEST_NAME), 'read');
  }
  if (read === undefined) return { release, manifest: false, checked: 0, findings: [] };
  if ('problem' in read) return { release, manifest: true, checked: 0, findings: [{ path: MANIFEST_NAME, problem: 'changed', detail: read.problem }] };
  const m = read.manifest;
  const findings: Finding[] = [];
  const listed = new Set<string>([MANIFEST_NAME]);
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const e of m.entries) {
    listed.add(e.path);
    const p = e.path === '.' ? dir : join(dir, e.path);
    const st = await lstatFound(p);
    if (st === undefined) {
      findings.push({ path: e.path, problem: 'missing', detail: `the manifest lists a ${e.type}` });
      continue;
    }
    const want = wantedType(e);
    const have = st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    if (want !== have) {
      findings.push({ path: e.path, problem: 'type', detail: `is a ${have}, the manifest says ${want}` });
      continue;
    }
    if (e.type === 'symlink') {
      const t = await linkTarget(p);
      if (t === undefined) findings.push({ path: e.path, problem: 'type', detail: 'was replaced while it was checked' });
      else if (t !== e.target) findings.push({ path: e.path, problem: 'link', detail: `points at ${t}, the manifest says ${e.target}` });
      continue;
    }
    const mode = installedMode(e.mode, owner.asRoot);
    if ((st.mode & 0o7777) !== mode) findings.push({ path: e.path, problem: 'mode', detail: `mode ${(st.mode & 0o7777).toString(8)}, the manifest says ${mode.toString(8)}` });
    if (owner.asRoot && (st.uid !== e.uid || st.gid !== e.gid)) findings.push({ path: e.path, problem: 'owner', detail: `owner ${st.uid}:${st.gid}, the manifest says ${e.uid}:${e.gid}` });
    if (e.type === 'hardlink') {
      const to = await lstatFound(join(dir, e.target ?? ''));
      if (to === undefined || to.ino !== st.ino || to.dev !== st.dev) findings.push({ path: e.path, problem: 'link', detail: `is no longer a hard link to ${e.target}` });
    } else if (e.type === 'file') {
      const sha = st.size === e.size ? hashFile(p, st, buf) : ''; // another size: changed, and not read (its owner may have made it a sparse terabyte)
      if (sha === undefined) findings.push({ path: e.path, problem: 'type', detail: 'was replaced while it was checked' });
      else if (st.size !== e.size || sha !== e.sha256) {
        const shared = st.nlink > 1 ? `; it has ${st.nlink - 1} other hard link${st.nlink === 2 ? '' : 's'} (other releases share the damage)` : '';
        findings.push({ path: e.path, problem: 'changed', detail: `content differs (size ${st.size}, manifest ${e.size})${shared}` });
      }
    }
  }
  // By descriptor: a user who owns a directory of the release cannot lead the walk elsewhere.
  try {
    walkBeneath(dir, (rel, st) => {
      if (listed.has(rel)) return;
      if (isRepairTemp(basename(rel)) && (st.isFile() || st.isSymbolicLink())) findings.push({ path: rel, problem: 'leftover', detail: 'a temp file of an interrupted verify --repair, not in the manifest' });
      else findings.push({ path: rel, problem: 'extra', detail: `not in the manifest (a ${st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file'} added after install)` });
      return false;
    }, { maxDepth: MAX_DEPTH });
  } catch (err) {
    throw fsFailure(err, dir, 'read a directory in');
  }
  return { release, manifest: true, checked: m.entries.length, findings };
}

/**
 * lstat(2), undefined when nothing is there: ENOENT, or ENOTDIR / ELOOP when a directory on the
 * way is now a file or a symlink loop. Anything else (EACCES, EIO) is an error, not a finding.
 */
async function lstatFound(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
    throw fsFailure(err, p, 'read');
  }
}

/** readlink(2), undefined when it is no longer a symlink (EINVAL) or gone. */
async function linkTarget(p: string): Promise<string | undefined> {
  try {
    return await readlink(p);
  } catch (err) {
    if (isErrno(err, 'EINVAL', 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
    throw fsFailure(err, p, 'read');
  }
}

function wantedType(e: ManifestEntry): string {
  return e.type === 'hardlink' ? 'file' : e.type;
}

/**
 * sha256 of the file lstat'd as `st`, read without following a symlink or blocking on a FIFO a
 * user may have put there since, and no further than `st.size` (its owner may grow it meanwhile);
 * undefined when something else is there now, '' (no sha256) when it was cut short meanwhile.
 */
function hashFile(p: string, st: Stats, buf: Buffer): string | undefined {
  let fd: number;
  try {
    fd = openSync(p, FILE_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
    throw fsFailure(err, p, 'read');
  }
  try {
    const now = fstatSync(fd);
    if (!now.isFile() || now.dev !== st.dev || now.ino !== st.ino) return undefined;
    return sha256OfFd(fd, buf, st.size) ?? '';
  } catch (err) {
    throw fsFailure(err, p, 'read');
  } finally {
    closeSync(fd);
  }
}

/**
 * `fussy verify --repair`: under the lock (after recovering anything interrupted), verify, then
 * repair. What is left is what repair could not fix: each repair puts the manifest's content
 * and metadata in place or fails, so a second pass over the releases' data is not needed.
 */
export async function verifyAndRepair(o: VerifyOptions & TargetRunOptions): Promise<{ results: RepairResult[]; after: ReleaseReport[] }> {
  const target = resolve(o.target);
  return withTarget(target, { ...o, what: 'verify --repair' }, async () => {
    const before = await verify(o);
    const results = await repair({ ...o, reports: before });
    // What repair left, it could not fix: nothing left is repairable by running it again.
    const left = new Map(results.map((r) => [r.release, r.left.map((f) => ({ ...f, repairable: false }))]));
    return { results, after: before.map((r) => ({ ...r, findings: left.get(r.release) ?? r.findings })) };
  });
}
