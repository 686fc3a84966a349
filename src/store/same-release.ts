import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { installedManifestBytes, installedManifestSize } from './installed-manifest.js';

/**
 * The installed release that `release` repeats, if any: the first of `others` whose manifest file
 * has the same sha256 as its own (same files, modes, owners, digests and release name). Installing
 * a package again is allowed, it is how a damaged release is replaced (docs/commands.md), but
 * fussy says so. undefined without a manifest, or when none matches. Only a manifest of the same
 * size is read and hashed: an install does not re-read every release's manifest to find none.
 * `release` is the one just installed, whose manifest install validated: a manifest with the same
 * bytes is valid too, so one changed after install (readInstalledManifest's `problem`) is never
 * the same release.
 */
export function sameReleaseAs(target: string, release: string, others: readonly string[]): string | undefined {
  const size = installedManifestSize(join(target, release));
  if (size === undefined) return undefined;
  let mine: string | undefined;
  for (const other of others) {
    if (other === release || installedManifestSize(join(target, other)) !== size) continue;
    mine ??= manifestSha(join(target, release));
    if (mine === undefined) return undefined;
    if (manifestSha(join(target, other)) === mine) return other;
  }
  return undefined;
}

function manifestSha(dir: string): string | undefined {
  const data = installedManifestBytes(dir);
  return data === undefined ? undefined : createHash('sha256').update(data).digest('hex');
}
