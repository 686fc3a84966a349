import { FussyError } from '../errors.js';
import type { Manifest, ManifestEntry } from '../archive/manifest.js';
import { FULL_MANIFEST_VERSION, MANIFEST_FORMAT, validateManifest } from '../archive/manifest.js';
import type { FileDigest } from './digest-files.js';
import type { WalkEntry } from './walk.js';

export interface BuildManifestInput {
  release: string;
  walk: WalkEntry[];
  digests: Map<string, FileDigest>;
  date: Date;
  sourceDateEpoch?: number;
  sequence?: number;
  minSequence?: number;
  rollback?: boolean;
  compatible?: string[];
}

/**
 * The manifest of a walked tree, entries in archive order; mtimes clamped to SOURCE_DATE_EPOCH.
 * It is validated as install will validate it (archive/manifest.ts): what pack writes installs,
 * and what install refuses (too many entries, an empty device type, ...) pack refuses too, exit 21.
 */
export function buildManifest(input: BuildManifestInput): Manifest {
  const clamp = (s: number): number => (input.sourceDateEpoch !== undefined && s > input.sourceDateEpoch ? input.sourceDateEpoch : s);
  let totalBytes = 0;
  let fileCount = 0;
  const entries = input.walk.map((w): ManifestEntry => {
    const e: ManifestEntry = {
      path: w.path,
      type: w.type,
      mode: w.stat.mode & 0o7777,
      uid: w.stat.uid,
      gid: w.stat.gid,
      mtime: clamp(Math.floor(w.stat.mtimeMs / 1000)),
    };
    if (w.type === 'file') {
      const d = input.digests.get(w.path);
      if (d === undefined) throw new Error(`no digest for ${w.path}`);
      e.size = w.stat.size;
      e.sha256 = d.sha256;
      totalBytes += w.stat.size;
      fileCount += 1;
    } else if (w.type === 'hardlink' || w.type === 'symlink') {
      e.target = w.target;
    }
    return e;
  });
  const m: Manifest = {
    format: MANIFEST_FORMAT,
    version: FULL_MANIFEST_VERSION,
    release: input.release,
    created: input.date.toISOString(),
    sequence: input.sequence ?? input.date.getTime(),
    totalBytes,
    fileCount,
    entries,
  };
  if (input.minSequence !== undefined) m.minSequence = input.minSequence;
  if (input.rollback === true) m.rollback = true;
  if (input.compatible !== undefined && input.compatible.length > 0) m.compatible = [...input.compatible];
  try {
    validateManifest(m, input.release);
  } catch (err) {
    if (!(err instanceof FussyError)) throw err;
    throw new FussyError(err.code, `${input.release}: ${err.message}`, { cause: err, hint: 'fussy install would refuse this package: leave out files (--exclude) or fix the option it names' });
  }
  return m;
}
