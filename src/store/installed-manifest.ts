import { createHash } from 'node:crypto';
import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { manifestMaxBytes, MANIFEST_NAME, parseManifest, type Manifest } from '../archive/manifest.js';
import { readSmallFile } from '../util/read-small-file.js';

/** An installed manifest is a copy of a package's, which install reads up to this size. */
export const INSTALLED_MANIFEST_MAX = manifestMaxBytes();

export type InstalledManifest =
  | {
      manifest: Manifest;
      /** The file's sha256 (installedManifestSha256). */
      sha256: string;
      /** Why it may not be what fussy wrote; undefined when only fussy's user could have changed it. */
      distrust?: string;
    }
  | { problem: string };

/**
 * The manifest fussy wrote into a release when it installed it: every reader of it (verify,
 * repair, status, the dedup index) comes here. Read without following a symlink or blocking on a
 * FIFO (readSmallFile); undefined when the release has none. It is the package's manifest byte for
 * byte, so it is held to the same schema (archive/manifest.ts, parseManifest) except for the
 * release name, which the directory need not bear; anything else means it was changed after
 * install and is a `problem`, never used. Validation costs about as much again as JSON.parse
 * (bench/installed-manifest.ts: ~12 ms more for 10,000 entries). A manifest that passes is only as
 * trustworthy as the directory it lies in: when the release directory or the file belongs to
 * someone else or is writable by others (firmware may ship its top directory owned by a service
 * user), that user could have replaced it with another valid one, and `distrust` says so. Repairs
 * never act on such a manifest: it would let the user name the owner and mode root gives a file.
 */
export function readInstalledManifest(dir: string): InstalledManifest | undefined {
  const f = readSmallFile(join(dir, MANIFEST_NAME), INSTALLED_MANIFEST_MAX);
  if (f === undefined) return undefined;
  if ('problem' in f) return { problem: `the manifest ${f.problem}` };
  let manifest: Manifest;
  try {
    manifest = parseManifest(f.data, undefined).manifest;
  } catch (err) {
    if (!(err instanceof FussyError)) throw err;
    return { problem: `the manifest is not one fussy installs: ${err.message}` };
  }
  const top = lstatSync(dir, { throwIfNoEntry: false });
  const distrust = top === undefined ? 'the release directory is gone' : foreign(top, 'the release directory') ?? foreign(f.st, 'the manifest');
  const sha256 = createHash('sha256').update(f.data).digest('hex');
  return distrust === undefined ? { manifest, sha256 } : { manifest, sha256, distrust };
}

/**
 * The installed manifest's bytes, unparsed, for a comparison with a manifest install has just
 * validated (same-release.ts): bytes equal to those are valid too. undefined without a readable
 * one (none, or a symlink, FIFO or oversized file).
 */
export function installedManifestBytes(dir: string): Buffer | undefined {
  const f = readSmallFile(join(dir, MANIFEST_NAME), INSTALLED_MANIFEST_MAX);
  return f === undefined || 'problem' in f ? undefined : f.data;
}

/** The installed manifest's size when it is a regular file (a symlink is not followed), else undefined. */
export function installedManifestSize(dir: string): number | undefined {
  try {
    const st = lstatSync(join(dir, MANIFEST_NAME));
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  }
}

function foreign(st: Stats, what: string): string | undefined {
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== me) return `${what} is owned by uid ${st.uid}`;
  if ((st.mode & 0o022) !== 0) return `${what} is writable by others (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/**
 * The sha256 of the manifest fussy installed in `dir` (byte for byte the package's): what names
 * this release to a sender of delta packages (docs/format.md, "Delta packages"). undefined when
 * the release has none or it cannot be read as a file.
 */
export function installedManifestSha256(dir: string): string | undefined {
  const f = readSmallFile(join(dir, MANIFEST_NAME), INSTALLED_MANIFEST_MAX);
  return f === undefined || 'problem' in f ? undefined : createHash('sha256').update(f.data).digest('hex');
}
