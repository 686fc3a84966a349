/**
 * `<release>/.fussy-manifest.json`: the first entry of every archive fussy packs (SPEC §3).
 * It sits inside the signed stream, so it is exactly as trustworthy as the signature.
 */

export const MANIFEST_NAME = '.fussy-manifest.json';
export const MANIFEST_FORMAT = 'fussy-manifest';
export const MANIFEST_VERSION = 1;

export type EntryType = 'directory' | 'file' | 'symlink' | 'hardlink';

export interface ManifestEntry {
  /** POSIX path relative to the release directory; "." is the release directory itself. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, whole seconds (clamped to SOURCE_DATE_EPOCH when set). */
  mtime: number;
  /** Regular files (and hard links, which share their target's content). */
  size?: number;
  sha256?: string;
  /** Symlink target as stored, or the release-relative path a hard link points at. */
  target?: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: number;
  release: string;
  /** ISO 8601 creation time. */
  created: string;
  /** Monotonically increasing across releases; default: creation time in ms. */
  sequence: number;
  minSequence?: number;
  /** Signed intent: this older release may replace a newer one (downgrade protection allows it). */
  rollback?: boolean;
  compatible?: string[];
  /** Sum of regular file sizes (hard links counted once). */
  totalBytes: number;
  /** Regular files (hard links not counted). */
  fileCount: number;
  entries: ManifestEntry[];
}

export function serializeManifest(m: Manifest): Buffer {
  // One entry per line keeps the file diffable and greppable on a device without jq.
  const { entries, ...head } = m;
  const lines = entries.map((e) => '  ' + JSON.stringify(e));
  const headJson = JSON.stringify(head, null, 1).slice(0, -2); // drop "\n}"
  return Buffer.from(`${headJson},\n "entries": [\n${lines.join(',\n')}\n ]\n}\n`);
}
