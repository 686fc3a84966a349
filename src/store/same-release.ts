import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { MANIFEST_NAME } from '../archive/manifest.js';
import { readSmallFile } from '../util/read-small-file.js';
import { INSTALLED_MANIFEST_MAX } from './installed-manifest.js';

/**
 * The installed release that `release` repeats, if any: the first of `others` whose manifest file
 * has the same sha256 as its own (same files, modes, owners, digests and release name). Installing
 * a package again is allowed, it is how a damaged release is replaced (docs/commands.md), but
 * fussy says so. undefined without a manifest, or when none matches.
 */
export function sameReleaseAs(target: string, release: string, others: readonly string[]): string | undefined {
  const mine = manifestOf(join(target, release));
  if (mine === undefined) return undefined;
  for (const other of others) {
    if (other === release) continue;
    const theirs = manifestOf(join(target, other));
    if (theirs !== undefined && theirs.size === mine.size && theirs.sha256 === mine.sha256) return other;
  }
  return undefined;
}

function manifestOf(dir: string): { size: number; sha256: string } | undefined {
  const f = readSmallFile(join(dir, MANIFEST_NAME), INSTALLED_MANIFEST_MAX);
  if (f === undefined || 'problem' in f) return undefined;
  return { size: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex') };
}
