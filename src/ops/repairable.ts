import { closeSync, fstatSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno } from '../errors.js';
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
 */
export async function markRepairable(target: string, reports: ReleaseReport[]): Promise<ReleaseReport[]> {
  if (reports.every((r) => r.findings.length === 0)) return reports;
  const manifests = installedManifests(target, (await readLayout(target)).releases);
  const healthy = new Map<string, boolean>();
  const buf = Buffer.allocUnsafe(1 << 20);
  const hasCopy = (sha: string, size: number | undefined, damaged: string): boolean => {
    const key = `${sha}\0${damaged}`;
    let found = healthy.get(key);
    if (found === undefined) {
      const copies = [...manifests].flatMap(([r, { manifest }]) => manifest.entries.filter((e) => e.type === 'file' && e.sha256 === sha).map((e) => join(target, r, e.path)));
      found = copies.some((c) => isHealthyCopy(c, sha, size, damaged, buf));
      healthy.set(key, found);
    }
    return found;
  };
  return reports.map((r) => {
    const m = manifests.get(r.release);
    return {
      ...r,
      findings: r.findings.map((f) => {
        const e = m?.manifest.entries.find((x) => x.path === f.path);
        let ok = false;
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

/** A regular file at `path` (not followed) with `sha`'s size and content that is not the inode at `damaged`. */
function isHealthyCopy(path: string, sha: string, size: number | undefined, damaged: string, buf: Buffer): boolean {
  const fd = openFound(path);
  if (fd === undefined) return false;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== size) return false;
    const bad = openFound(damaged);
    if (bad !== undefined) {
      const same = fstatSync(bad);
      closeSync(bad);
      if (same.dev === st.dev && same.ino === st.ino) return false;
    }
    return sha256OfFd(fd, buf) === sha;
  } catch (err) {
    throw fsFailure(err, path, 'read');
  } finally {
    closeSync(fd);
  }
}

function openFound(path: string): number | undefined {
  try {
    return openSync(path, FILE_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
    throw fsFailure(err, path, 'read');
  }
}
