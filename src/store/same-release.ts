import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno } from '../errors.js';
import { MANIFEST_NAME } from '../archive/manifest.js';
import { readSmallFile } from '../util/read-small-file.js';
import { INSTALLED_MANIFEST_MAX } from './installed-manifest.js';

/**
 * The installed release that `release` repeats, if any: the first of `others` whose manifest file
 * has the same sha256 as its own (same files, modes, owners, digests and release name). Installing
 * a package again is allowed, it is how a damaged release is replaced (docs/commands.md), but
 * fussy says so. undefined without a manifest, or when none matches. Only a manifest of the same
 * size is read and hashed: an install does not re-read every release's manifest to find none.
 */
export function sameReleaseAs(target: string, release: string, others: readonly string[]): string | undefined {
  const size = manifestSize(join(target, release));
  if (size === undefined) return undefined;
  let mine: string | undefined;
  for (const other of others) {
    if (other === release || manifestSize(join(target, other)) !== size) continue;
    mine ??= manifestSha(join(target, release));
    if (mine === undefined) return undefined;
    if (manifestSha(join(target, other)) === mine) return other;
  }
  return undefined;
}

/** The manifest's size when it is a regular file (a symlink is not followed), else undefined. */
function manifestSize(dir: string): number | undefined {
  try {
    const st = lstatSync(join(dir, MANIFEST_NAME));
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

function manifestSha(dir: string): string | undefined {
  const f = readSmallFile(join(dir, MANIFEST_NAME), INSTALLED_MANIFEST_MAX);
  if (f === undefined || 'problem' in f) return undefined;
  return createHash('sha256').update(f.data).digest('hex');
}
