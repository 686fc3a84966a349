import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_NAME, type Manifest } from '../archive/manifest.js';
import { readSmallFile } from '../util/read-small-file.js';

/** unpack.ts accepts manifests up to 64 MiB; an installed one is a copy of such a manifest. */
export const INSTALLED_MANIFEST_MAX = 64 * 1024 * 1024;

export type InstalledManifest =
  | { manifest: Manifest; /** Why it may not be what fussy wrote; undefined when only fussy's user could have changed it. */ distrust?: string }
  | { problem: string };

/**
 * The manifest fussy wrote into a release when it installed it, read without following a
 * symlink or blocking on a FIFO (readSmallFile); undefined when the release has none. It is only
 * as trustworthy as the directory it lies in: when the release directory or the file belongs to
 * someone else or is writable by others (firmware may ship its top directory owned by a service
 * user), that user could have replaced it, and `distrust` says so. Repairs never act on such a
 * manifest: it would let the user name the owner and mode root gives a file.
 */
export function readInstalledManifest(dir: string): InstalledManifest | undefined {
  const f = readSmallFile(join(dir, MANIFEST_NAME), INSTALLED_MANIFEST_MAX);
  if (f === undefined) return undefined;
  if ('problem' in f) return { problem: `the manifest ${f.problem}` };
  let manifest: Manifest;
  try {
    manifest = JSON.parse(f.data.toString('utf8')) as Manifest;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return { problem: 'the manifest is not valid JSON' };
  }
  if (typeof manifest !== 'object' || manifest === null || !Array.isArray(manifest.entries)) return { problem: 'the manifest has no list of entries' };
  const bad = manifest.entries.find((e) => !wellFormed(e));
  if (bad !== undefined) return { problem: `the manifest has a malformed entry (${JSON.stringify(bad).slice(0, 80)})` };
  const top = lstatSync(dir, { throwIfNoEntry: false });
  const distrust = top === undefined ? 'the release directory is gone' : foreign(top, 'the release directory') ?? foreign(f.st, 'the manifest');
  return distrust === undefined ? { manifest } : { manifest, distrust };
}

function foreign(st: Stats, what: string): string | undefined {
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== me) return `${what} is owned by uid ${st.uid}`;
  if ((st.mode & 0o022) !== 0) return `${what} is writable by others (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/** Enough shape for verify to use an entry: a path inside the release and numeric metadata. */
function wellFormed(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Record<string, unknown>;
  return (
    typeof x.path === 'string' &&
    x.path !== '' &&
    !x.path.startsWith('/') &&
    !/(^|\/)\.\.(\/|$)/.test(x.path) &&
    typeof x.type === 'string' &&
    Number.isInteger(x.mode) &&
    Number.isInteger(x.uid) &&
    Number.isInteger(x.gid) &&
    typeof x.mtime === 'number'
  );
}
