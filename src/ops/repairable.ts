import { closeSync, fstatSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { readLayout } from '../store/layout.js';
import { FILE_NOFOLLOW } from '../util/dir-fd.js';
import { fsFailure } from '../util/fs-failure.js';
import { sha256OfFd } from '../util/hash-fd.js';
import { installedManifests } from './repair.js';
import type { ReleaseReport } from './verify.js';

/**
 * Mark each finding `repairable` when `fussy verify --repair` would fix it (the cases repair.ts
 * `fix` handles): modes, owners and symlinks put back, a temp file of an interrupted repair
 * removed, a changed or missing file copied from a healthy copy, which is looked for here the
 * way repair looks for it (a file of any release whose manifest names the same sha256, not the
 * damaged inode, whose content really hashes to it). Never in a release whose manifest someone
 * else could have replaced; never types, extra entries or broken hard links. Reads only.
 * As another user than root, and for a copy this user may not read (EACCES, EPERM), it leaves
 * `repairable` undefined, unknown: the report itself does not depend on it, so it is no error here
 * (repair, which needs the copy, fails on it with the path). Any other errno is an error.
 */
export async function markRepairable(target: string, reports: ReleaseReport[], asRoot: boolean): Promise<ReleaseReport[]> {
  if (reports.every((r) => r.findings.length === 0)) return reports;
  // Repair runs as root, and which manifests it trusts depends on who runs it: another user
  // cannot tell (installed-manifest.ts), so only what repair never fixes is known.
  if (!asRoot) return reports.map((r) => ({ ...r, findings: r.findings.map((f) => (f.problem === 'extra' || f.problem === 'type' ? { ...f, repairable: false } : f)) }));
  let manifests;
  try {
    manifests = installedManifests(target, (await readLayout(target)).releases);
  } catch (err) {
    if (err instanceof FussyError && (err.details?.errno === 'EACCES' || err.details?.errno === 'EPERM')) return reports; // another release this user may not read: unknown
    throw err;
  }
  const healthy = new Map<string, boolean | undefined>();
  const buf = Buffer.allocUnsafe(1 << 20);
  const hasCopy = (sha: string, size: number | undefined, damaged: string): boolean | undefined => {
    const key = `${sha}\0${damaged}`;
    if (healthy.has(key)) return healthy.get(key);
    const copies = [...manifests].flatMap(([r, { manifest }]) => manifest.entries.filter((e) => e.type === 'file' && e.sha256 === sha).map((e) => join(target, r, e.path)));
    let found: boolean | undefined = false;
    for (const c of copies) {
      const ok = isHealthyCopy(c, sha, size, damaged, buf);
      if (ok === true) {
        found = true;
        break;
      }
      if (ok === undefined) found = undefined;
    }
    healthy.set(key, found);
    return found;
  };
  return reports.map((r) => {
    const m = manifests.get(r.release);
    return {
      ...r,
      findings: r.findings.map((f) => {
        const e = m?.manifest.entries.find((x) => x.path === f.path);
        let ok: boolean | undefined = false;
        if (m === undefined || m.distrust !== undefined) ok = false;
        else if (f.problem === 'leftover') ok = e === undefined;
        else if (e === undefined || f.problem === 'extra' || f.problem === 'type') ok = false;
        else if (e.type === 'symlink') ok = f.problem === 'link' || f.problem === 'missing' || f.problem === 'owner';
        else if (f.problem === 'mode' || f.problem === 'owner') ok = e.type === 'directory' || e.type === 'file' || e.type === 'hardlink';
        else if (e.type === 'file' && (f.problem === 'changed' || f.problem === 'missing')) ok = hasCopy(e.sha256 ?? '', e.size, join(target, r.release, e.path));
        return { ...f, repairable: ok };
      }),
    };
  });
}

/**
 * A regular file at `path` (not followed) with `sha`'s size and content that is not the inode at
 * `damaged`; undefined when this user may not read it.
 */
function isHealthyCopy(path: string, sha: string, size: number | undefined, damaged: string, buf: Buffer): boolean | undefined {
  const fd = openFound(path);
  if (fd === null) return undefined;
  if (fd === undefined) return false;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== size) return false;
    const bad = openFound(damaged);
    if (bad !== undefined && bad !== null) {
      const same = fstatSync(bad);
      closeSync(bad);
      if (same.dev === st.dev && same.ino === st.ino) return false;
    }
    return sha256OfFd(fd, buf, st.size) === sha;
  } catch (err) {
    throw fsFailure(err, path, 'read');
  } finally {
    closeSync(fd);
  }
}

/** A descriptor; undefined: nothing there (or a symlink); null: this user may not open it. */
function openFound(path: string): number | undefined | null {
  try {
    return openSync(path, FILE_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
    if (isErrno(err, 'EACCES', 'EPERM')) return null;
    throw fsFailure(err, path, 'read');
  }
}
