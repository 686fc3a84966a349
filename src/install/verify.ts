import { closeSync, openSync } from 'node:fs';
import { chmod, chown, copyFile, lchown, lstat, open, readdir, readFile, readlink, rename, symlink, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MANIFEST_NAME, type Manifest, type ManifestEntry } from '../archive/manifest.js';
import { FussyError, isErrno } from '../errors.js';
import { sha256OfFd } from '../util/hash-fd.js';
import { currentName, readLayout } from './layout.js';
import { withTarget } from './recover.js';

export interface Finding {
  path: string;
  problem: 'changed' | 'missing' | 'extra' | 'type' | 'mode' | 'owner' | 'link';
  detail: string;
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
 * `fussy verify` (SPEC §4): compare installed releases with their manifests, file by file
 * (sha256, size, type, mode, owner as root, symlink targets, hard links) and name every changed,
 * missing and extra entry. Releases share unchanged files as hard links, so one file edited in
 * place (a hook appending to a config) is wrong in every release that shares it: a changed file
 * says how many other links it has. Reads only: no lock needed, safe beside a running install.
 */
export async function verify(o: VerifyOptions): Promise<ReleaseReport[]> {
  const target = resolve(o.target);
  const layout = await readLayout(target);
  let names = o.names ?? [];
  if (o.all === true) names = layout.releases;
  else if (names.length === 0) {
    const cur = await currentName(target);
    if (cur === undefined) throw new FussyError('USAGE', `${target} has no current release to verify`, { hint: 'name a release, or --all' });
    names = [cur];
  }
  const reports: ReleaseReport[] = [];
  for (const n of names) {
    if (!layout.releases.includes(n)) throw new FussyError('USAGE', `there is no release ${n} in ${target}`, { hint: `installed releases: ${layout.releases.join(', ') || '(none)'}` });
    reports.push(await verifyRelease(join(target, n), n, o.owner));
  }
  return reports;
}

export async function verifyRelease(dir: string, release: string, owner: { asRoot: boolean }): Promise<ReleaseReport> {
  let m: Manifest;
  try {
    m = JSON.parse(await readFile(join(dir, MANIFEST_NAME), 'utf8')) as Manifest;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { release, manifest: false, checked: 0, findings: [] };
    if (err instanceof SyntaxError) return { release, manifest: true, checked: 0, findings: [{ path: MANIFEST_NAME, problem: 'changed', detail: 'the manifest is not valid JSON' }] };
    throw err;
  }
  const findings: Finding[] = [];
  const listed = new Set<string>([MANIFEST_NAME]);
  const buf = Buffer.allocUnsafe(1 << 20);
  for (const e of m.entries) {
    listed.add(e.path);
    const p = e.path === '.' ? dir : join(dir, e.path);
    const st = await lstat(p).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    });
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
      const t = await readlink(p);
      if (t !== e.target) findings.push({ path: e.path, problem: 'link', detail: `points at ${t}, the manifest says ${e.target}` });
      continue;
    }
    const mode = owner.asRoot ? e.mode : e.mode & ~0o6000;
    if ((st.mode & 0o7777) !== mode) findings.push({ path: e.path, problem: 'mode', detail: `mode ${(st.mode & 0o7777).toString(8)}, the manifest says ${mode.toString(8)}` });
    if (owner.asRoot && (st.uid !== e.uid || st.gid !== e.gid)) findings.push({ path: e.path, problem: 'owner', detail: `owner ${st.uid}:${st.gid}, the manifest says ${e.uid}:${e.gid}` });
    if (e.type === 'hardlink') {
      const to = await lstat(join(dir, e.target ?? '')).catch(() => undefined);
      if (to === undefined || to.ino !== st.ino || to.dev !== st.dev) findings.push({ path: e.path, problem: 'link', detail: `is no longer a hard link to ${e.target}` });
    } else if (e.type === 'file') {
      const sha = hashFile(p, buf);
      if (st.size !== e.size || sha !== e.sha256) {
        const shared = st.nlink > 1 ? `; it has ${st.nlink - 1} other hard link${st.nlink === 2 ? '' : 's'} (other releases share the damage)` : '';
        findings.push({ path: e.path, problem: 'changed', detail: `content differs (size ${st.size}, manifest ${e.size})${shared}` });
      }
    }
  }
  await extras(dir, '', listed, findings);
  return { release, manifest: true, checked: m.entries.length, findings };
}

function wantedType(e: ManifestEntry): string {
  return e.type === 'hardlink' ? 'file' : e.type;
}

function hashFile(p: string, buf: Buffer): string {
  const fd = openSync(p, 'r');
  try {
    return sha256OfFd(fd, buf);
  } finally {
    closeSync(fd);
  }
}

async function extras(dir: string, rel: string, listed: Set<string>, findings: Finding[]): Promise<void> {
  for (const e of await readdir(rel === '' ? dir : join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (!listed.has(r)) {
      findings.push({ path: r, problem: 'extra', detail: `not in the manifest (a ${e.isDirectory() ? 'directory' : e.isSymbolicLink() ? 'symlink' : 'file'} added after install)` });
      continue;
    }
    if (e.isDirectory()) await extras(dir, r, listed, findings);
  }
}

export interface RepairResult {
  release: string;
  repaired: string[];
  /** Problems left: no healthy copy found, extra entries (never deleted), types. */
  left: Finding[];
}

/**
 * `fussy verify --repair`: put back what the manifests say, under the target's lock. Content comes
 * from a healthy copy: a file of any release whose manifest names the same sha256, whose actual
 * content has it, and which is not the damaged inode (hard links share damage). It is copied to a
 * temp file beside the damaged one, given the manifest's mode, owner (as root) and mtime, synced
 * and renamed over it: the repaired file no longer shares the damaged inode. Modes, owners and
 * symlinks are set back. Extra entries are reported, never deleted (they may be data).
 */
export async function repair(o: VerifyOptions & { reports: ReleaseReport[] }): Promise<RepairResult[]> {
  const target = resolve(o.target);
  const layout = await readLayout(target);
  const manifests = new Map<string, Manifest>();
  for (const r of layout.releases) {
    try {
      manifests.set(r, JSON.parse(await readFile(join(target, r, MANIFEST_NAME), 'utf8')) as Manifest);
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !(err instanceof SyntaxError)) throw err;
    }
  }
  const buf = Buffer.allocUnsafe(1 << 20);
  const healthy = async (sha: string, not: { dev: number; ino: number } | undefined): Promise<string | undefined> => {
    for (const [r, m] of manifests) {
      for (const e of m.entries) {
        if (e.type !== 'file' || e.sha256 !== sha) continue;
        const p = join(target, r, e.path);
        const st = await lstat(p).catch(() => undefined);
        if (st === undefined || !st.isFile() || (not !== undefined && st.dev === not.dev && st.ino === not.ino)) continue;
        if (hashFile(p, buf) === sha) return p;
      }
    }
    return undefined;
  };
  const results: RepairResult[] = [];
  for (const report of o.reports) {
    const m = manifests.get(report.release);
    const repaired: string[] = [];
    const left: Finding[] = [];
    for (const f of report.findings) {
      const e = m?.entries.find((x) => x.path === f.path);
      const p = join(target, report.release, f.path);
      if (e === undefined || f.problem === 'extra' || f.problem === 'type') {
        left.push(f);
        continue;
      }
      const mode = o.owner.asRoot ? e.mode : e.mode & ~0o6000;
      if (e.type === 'symlink' && (f.problem === 'link' || f.problem === 'missing')) {
        const tmp = `${p}.fussy-repair-${process.pid}`;
        await symlink(e.target ?? '', tmp);
        await rename(tmp, p);
      } else if (e.type === 'file' && (f.problem === 'changed' || f.problem === 'missing')) {
        const st = await lstat(p).catch(() => undefined);
        const from = await healthy(e.sha256 ?? '', st === undefined ? undefined : { dev: st.dev, ino: st.ino });
        if (from === undefined) {
          left.push({ ...f, detail: `${f.detail}; no healthy copy on the device` });
          continue;
        }
        const tmp = `${p}.fussy-repair-${process.pid}`;
        await copyFile(from, tmp);
        if (o.owner.asRoot) await chown(tmp, e.uid, e.gid);
        await chmod(tmp, mode);
        await utimes(tmp, e.mtime, e.mtime);
        const fh = await open(tmp, 'r');
        await fh.sync();
        await fh.close();
        await rename(tmp, p);
      } else if (f.problem === 'mode') {
        await chmod(p, mode);
      } else if (f.problem === 'owner') {
        await lchown(p, e.uid, e.gid);
      } else {
        left.push(f);
        continue;
      }
      repaired.push(f.path);
    }
    results.push({ release: report.release, repaired, left });
  }
  return results;
}

/**
 * `fussy verify --repair`: under the lock (after recovering anything interrupted), verify, then
 * repair. What is left is what repair could not fix: each repair puts the manifest's content
 * and metadata in place or fails, so a second pass over the releases' data is not needed.
 */
export async function verifyAndRepair(o: VerifyOptions & { env: Record<string, string | undefined>; cwd: string; hookTimeoutMs: number; wait?: boolean; now?: Date }): Promise<{ results: RepairResult[]; after: ReleaseReport[] }> {
  const target = resolve(o.target);
  return withTarget(target, { what: 'verify --repair', wait: o.wait, now: o.now, env: o.env, cwd: o.cwd, hookTimeoutMs: o.hookTimeoutMs, emit: () => {} }, async () => {
    const before = await verify(o);
    const results = await repair({ ...o, reports: before });
    const left = new Map(results.map((r) => [r.release, r.left]));
    return { results, after: before.map((r) => ({ ...r, findings: left.get(r.release) ?? r.findings })) };
  });
}
