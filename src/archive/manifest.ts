import { FussyError } from '../errors.js';
import { MAX_DEPTH, MAX_PATH_BYTES, splitEntryName } from './entry-path.js';
import { jsonShapeProblem } from './json-shape.js';
import { checkReleaseName } from './release-name.js';

/**
 * `<release>/.fussy-manifest.json`: the first entry of every archive fussy packs (docs/format.md).
 * It sits inside the signed stream, so it is exactly as trustworthy as the signature, and it is
 * read before the signature is checked: install bounds and validates it (parseManifest) before
 * anything is built from it.
 */

export const MANIFEST_NAME = '.fussy-manifest.json';
export const MANIFEST_FORMAT = 'fussy-manifest';
/** The newest format this fussy reads. */
export const MANIFEST_VERSION = 2;
/** A full package's manifest: every fussy reads it. */
export const FULL_MANIFEST_VERSION = 1;
/** A delta package's (`bases`, and files `from` a base): older installers refuse it by its version. */
export const DELTA_MANIFEST_VERSION = 2;
/** The most bases one delta package names. */
export const MAX_BASES = 16;

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
  /** Regular files only (a hard link shares its target's). */
  size?: number;
  sha256?: string;
  /** Symlink target as stored, or the release-relative path a hard link points at. */
  target?: string;
  /**
   * A file of a delta package whose data the archive leaves out: `base`, the device has the
   * content (sha256); `chunks`, the archive carries a patch (archive/chunks.ts) against the
   * device's file whose content is `base`.
   */
  from?: 'base' | 'chunks';
  /** With from "chunks": the sha256 and size of the base file the patch is applied to. */
  base?: string;
  baseSize?: number;
}

/** A release a delta package was made against: its name, and its manifest's sha256 when known. */
export interface DeltaBase {
  release: string;
  manifest?: string;
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
  /** A delta package: the releases it was made against (format version 2). */
  bases?: DeltaBase[];
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

/**
 * The most entries a release may have (pack refuses a bigger tree; install a bigger archive, with
 * or without a manifest), and the largest manifest install reads: fussy writes ~185 bytes per
 * entry, long paths (node_modules) ~250; MANIFEST_BYTES_PER_ENTRY allows 300. They bound what an
 * unsigned package can make install build before its signature is checked, whatever it claims.
 * Peak RSS of a whole install of a forged copy of a legit package at N entries (measured, node 20):
 * ~135 MB at 10,000, ~170 MB at 20,000, ~365 MB at 100,000; a crafted manifest costs less
 * (manifest-entry-flood test). A device with less memory lowers the limit in its keyring policy
 * (`max-entries = N`, keyring/policy.ts); the default is the ceiling.
 */
export const MAX_ENTRIES = 100_000;
const MANIFEST_BYTES_PER_ENTRY = 300;
/**
 * No manifest string is longer (paths at most 4096 bytes, link targets 4095, a hash 64), escapes
 * counted: a longer one is refused before JSON.parse copies it (a 30 MB string peaked at 222 MB).
 */
const MAX_JSON_STRING = 6 * 4096;

/** The largest manifest install reads for a release of at most `maxEntries` entries. */
export function manifestMaxBytes(maxEntries = MAX_ENTRIES): number {
  return maxEntries * MANIFEST_BYTES_PER_ENTRY + 64 * 1024;
}

/** A manifest that passed validateManifest, with its entries by path (no duplicates). */
export interface CheckedManifest {
  manifest: Manifest;
  byPath: Map<string, ManifestEntry>;
}

const bad = (message: string): FussyError => new FussyError('BAD_ARCHIVE', message, { hint: 'the package was not made by fussy pack or was altered; it is refused as a whole' });

/**
 * Bound, parse and validate a manifest's bytes. The shape check runs first, on the bytes: what
 * JSON.parse then builds is at most MAX_ENTRIES small objects of at most 16 members, ~12 values
 * per entry, nested 3 deep (object, entries array, entry), whatever the text holds. `release`
 * as for validateManifest.
 */
export function parseManifest(text: Uint8Array, release: string | undefined, maxEntries = MAX_ENTRIES): CheckedManifest {
  const maxBytes = manifestMaxBytes(maxEntries);
  if (text.length > maxBytes) throw bad(`the manifest is ${text.length} bytes, more than the ${maxBytes} fussy reads`);
  const shape = jsonShapeProblem(text, { maxDepth: 3, maxMembers: 16, maxElements: maxEntries, maxContainers: maxEntries + 4 + MAX_BASES, maxValues: 12 * maxEntries + 64, maxString: MAX_JSON_STRING });
  if (shape !== undefined) throw bad(`the manifest ${shape}; a fussy manifest has at most ${maxEntries} entries of a few fields each`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'));
  } catch (err) {
    throw bad(`the manifest is not valid JSON: ${(err as Error).message}`);
  }
  return validateManifest(value, release, maxEntries);
}

const TOP_FIELDS = new Set(['format', 'version', 'release', 'created', 'sequence', 'minSequence', 'rollback', 'compatible', 'bases', 'totalBytes', 'fileCount', 'entries']);
const COMMON = ['path', 'type', 'mode', 'uid', 'gid', 'mtime'];
const ENTRY_FIELDS: Record<EntryType, Set<string>> = {
  directory: new Set(COMMON),
  file: new Set([...COMMON, 'size', 'sha256', 'from', 'base', 'baseSize']),
  symlink: new Set([...COMMON, 'target']),
  hardlink: new Set([...COMMON, 'target']),
};
const SHA256 = /^[0-9a-f]{64}$/;
/** uid_t is 32 bits, and (uid_t)-1 means "leave unchanged" to chown(2). */
export const MAX_ID = 0xfffffffe;
/** symlink(2) takes at most PATH_MAX (4096) bytes with the NUL. */
const MAX_LINK_TARGET = 4095;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const show = (v: unknown): string => (v === undefined ? 'missing' : (JSON.stringify(v) ?? String(v)).slice(0, 80));

/**
 * The manifest's policy fields (install-policy.ts reads only these): `sequence` a whole number
 * >= 0 (required: fussy pack always writes it, and downgrade protection needs it), `minSequence`
 * the same (optional), `rollback` a boolean, `compatible` a non-empty list of non-empty device
 * types, matched exactly.
 */
export function checkPolicyFields(m: Record<string, unknown>): void {
  const field = (name: string, why: string): never => {
    throw bad(`manifest field "${name}" must be ${why}, not ${show(m[name])}`);
  };
  if (!isCount(m.sequence)) field('sequence', 'a whole number >= 0 (fussy pack always writes it)');
  if (m.minSequence !== undefined && !isCount(m.minSequence)) field('minSequence', 'a whole number >= 0');
  if (m.rollback !== undefined && typeof m.rollback !== 'boolean') field('rollback', 'true or false');
  if (m.compatible !== undefined) {
    const c = m.compatible;
    if (!Array.isArray(c) || c.length === 0 || !c.every((t) => typeof t === 'string' && t !== '')) field('compatible', 'a non-empty list of device types (non-empty strings)');
  }
}

/**
 * Everything install relies on, checked field by field (test/security/manifest-schema.test.ts
 * enumerates them). Fields this fussy does not know are refused, not ignored: a misspelt
 * `minSequnce` would otherwise switch a check off without a word; new fields come with a new
 * format version, which older installers refuse by name. `release`: the archive's top directory,
 * which the manifest must name; undefined for a manifest installed on a device, whose directory
 * may have another name (install adds `-1` to a name that is taken; a factory `current` becomes
 * `failsafe`).
 */
export function validateManifest(value: unknown, release: string | undefined, maxEntries = MAX_ENTRIES): CheckedManifest {
  if (!isObject(value) || value.format !== MANIFEST_FORMAT) throw bad('the manifest is not a fussy manifest (no "format": "fussy-manifest")');
  const m = value;
  if (!Number.isSafeInteger(m.version) || (m.version as number) < 1) throw bad(`manifest field "version" must be a whole number >= 1, not ${show(m.version)}`);
  if ((m.version as number) > MANIFEST_VERSION) {
    throw new FussyError('BAD_ARCHIVE', `the manifest has format version ${String(m.version)}; this fussy reads version ${MANIFEST_VERSION}`, { hint: 'upgrade fussy on the device first' });
  }
  for (const k of Object.keys(m)) if (!TOP_FIELDS.has(k)) throw bad(`manifest field "${k.slice(0, 80)}" is not part of manifest format version ${MANIFEST_VERSION}`);
  if (typeof m.release !== 'string') throw bad(`manifest field "release" must be a string, not ${show(m.release)}`);
  checkReleaseName(m.release, 'named by the manifest');
  if (release !== undefined && m.release !== release) throw bad(`the manifest names release "${m.release}" but the archive holds "${release}"`);
  if (typeof m.created !== 'string' || m.created.length > 64) throw bad(`manifest field "created" must be a time (a string of at most 64 characters), not ${show(m.created)}`);
  checkPolicyFields(m);
  checkBases(m);
  if (!isCount(m.totalBytes)) throw bad(`manifest field "totalBytes" must be a whole number >= 0, not ${show(m.totalBytes)}`);
  if (!isCount(m.fileCount)) throw bad(`manifest field "fileCount" must be a whole number >= 0, not ${show(m.fileCount)}`);
  if (!Array.isArray(m.entries)) throw bad(`manifest field "entries" must be a list, not ${show(m.entries)}`);
  if (m.entries.length > maxEntries) throw bad(`the manifest lists ${m.entries.length} entries, more than the ${maxEntries} fussy installs here`);

  const byPath = new Map<string, ManifestEntry>();
  let totalBytes = 0;
  let fileCount = 0;
  for (const [i, e] of (m.entries as unknown[]).entries()) {
    checkEntry(e, i, m.release, byPath, m.bases !== undefined);
    const entry = e as ManifestEntry;
    if (entry.type === 'file') {
      totalBytes += entry.size as number;
      fileCount += 1;
    }
    byPath.set(entry.path, entry);
  }
  if (!Number.isSafeInteger(totalBytes) || totalBytes !== m.totalBytes) throw bad(`manifest field "totalBytes" is ${show(m.totalBytes)}, but its files add up to ${totalBytes} bytes`);
  if (fileCount !== m.fileCount) throw bad(`manifest field "fileCount" is ${show(m.fileCount)}, but it lists ${fileCount} files`);
  return { manifest: m as unknown as Manifest, byPath };
}

/** `bases` (a delta package): format version 2, 1 to MAX_BASES releases, each a name and maybe its manifest's sha256. */
function checkBases(m: Record<string, unknown>): void {
  if (m.bases === undefined) return;
  if ((m.version as number) < DELTA_MANIFEST_VERSION) throw bad(`manifest field "bases" needs format version ${DELTA_MANIFEST_VERSION}, not ${show(m.version)}`);
  const b = m.bases;
  if (!Array.isArray(b) || b.length === 0 || b.length > MAX_BASES) throw bad(`manifest field "bases" must be a list of 1 to ${MAX_BASES} releases, not ${show(b)}`);
  for (const base of b) {
    if (!isObject(base) || typeof base.release !== 'string' || Object.keys(base).some((k) => k !== 'release' && k !== 'manifest')) throw bad(`manifest field "bases" must list {"release", "manifest"} objects, not ${show(base)}`);
    checkReleaseName(base.release, 'named as a base by the manifest', (message) => bad(message));
    if (base.manifest !== undefined && (typeof base.manifest !== 'string' || !SHA256.test(base.manifest))) throw bad(`manifest base ${base.release}: "manifest" must be 64 lower-case hex digits, not ${show(base.manifest)}`);
  }
}

/** One entry; `seen` holds the entries before it (duplicates; hard links name an earlier file). */
function checkEntry(e: unknown, i: number, release: string, seen: Map<string, ManifestEntry>, delta: boolean): void {
  if (!isObject(e)) throw bad(`manifest entry #${i} must be an object, not ${show(e)}`);
  if (typeof e.path !== 'string') throw bad(`manifest entry #${i}: "path" must be a string, not ${show(e.path)}`);
  const path = e.path;
  const where = `manifest entry "${path.slice(0, 200)}"`;
  const field = (name: string, why: string): never => {
    throw bad(`${where}: "${name}" must be ${why}, not ${show(e[name])}`);
  };
  // The names archive members get (UNSAFE_PATH for "..", absolute, NUL, too deep or too long),
  // written exactly as fussy writes them ("." for the release itself; no "./", no trailing "/").
  if (path !== '.' && !plainPath(path, release) && splitEntryName(`${release}/${path}`, 'manifest entry').rel !== path) field('path', 'a plain relative path as fussy writes it');
  if (seen.has(path)) throw bad(`${where} is listed twice`);
  if (path !== '.') {
    // fussy lists every directory, each before what it holds (sorted by name, "." first).
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '.' : path.slice(0, slash);
    if (seen.get(parent)?.type !== 'directory') throw bad(`${where}: its parent "${parent.slice(0, 200)}" is not a directory listed before it`);
  }
  const type = e.type;
  if (type !== 'directory' && type !== 'file' && type !== 'symlink' && type !== 'hardlink') field('type', 'directory, file, symlink or hardlink');
  if (path === '.' && type !== 'directory') field('type', 'directory (it is the release directory)');
  const allowed = ENTRY_FIELDS[type as EntryType];
  for (const k in e) if (!allowed.has(k)) throw bad(`${where}: field "${k.slice(0, 80)}" is not part of a ${String(type)} entry`);
  if (!Number.isInteger(e.mode) || (e.mode as number) < 0 || (e.mode as number) > 0o7777) field('mode', 'permission bits, a whole number from 0 to 4095 (0o7777)');
  if (!isCount(e.uid) || (e.uid as number) > MAX_ID) field('uid', `a whole number from 0 to ${MAX_ID}`);
  if (!isCount(e.gid) || (e.gid as number) > MAX_ID) field('gid', `a whole number from 0 to ${MAX_ID}`);
  if (!Number.isSafeInteger(e.mtime)) field('mtime', 'whole seconds since the epoch');
  if (type === 'file') {
    if (!isCount(e.size)) field('size', 'a whole number >= 0');
    if (typeof e.sha256 !== 'string' || !SHA256.test(e.sha256)) field('sha256', '64 lower-case hex digits');
    if (e.from !== undefined && ((e.from !== 'base' && e.from !== 'chunks') || !delta)) field('from', '"base" or "chunks", in a manifest that names its bases');
    if ((e.from === 'chunks') !== (e.base !== undefined)) field('base', 'the sha256 of the base file, exactly when "from" is "chunks"');
    if (e.base !== undefined && (typeof e.base !== 'string' || !SHA256.test(e.base))) field('base', '64 lower-case hex digits');
    if ((e.from === 'chunks') !== (e.baseSize !== undefined) || (e.baseSize !== undefined && !isCount(e.baseSize))) field('baseSize', 'the size of the base file, exactly when "from" is "chunks"');
  } else if (type === 'symlink') {
    const t = e.target;
    if (typeof t !== 'string' || t === '' || t.includes('\0') || Buffer.byteLength(t) > MAX_LINK_TARGET) field('target', `a non-empty link target without NUL bytes, at most ${MAX_LINK_TARGET} bytes`);
  } else if (type === 'hardlink') {
    if (typeof e.target !== 'string') field('target', 'the path of a file listed before it');
    const t = e.target as string;
    if (seen.get(t)?.type !== 'file') field('target', 'the path of a file listed before it'); // so a plain path too
  }
}

/**
 * The fast, allocation-free form of splitEntryName's rules for a name written as fussy writes it:
 * non-empty components other than "." and "..", no NUL, at most MAX_DEPTH deep and MAX_PATH_BYTES
 * long with the release in front. false sends the name through splitEntryName for the reason.
 */
function plainPath(p: string, release: string): boolean {
  if (p.length === 0 || p.length + release.length + 1 > MAX_PATH_BYTES) return false;
  let depth = 1; // the release directory
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    const c = i < p.length ? p.charCodeAt(i) : 0x2f;
    if (c === 0) return false;
    if (c !== 0x2f) continue;
    const len = i - start;
    if (len === 0 || (p.charCodeAt(start) === 0x2e && (len === 1 || (len === 2 && p.charCodeAt(start + 1) === 0x2e)))) return false;
    if (++depth > MAX_DEPTH) return false;
    start = i + 1;
  }
  return p.length * 3 + release.length + 1 <= MAX_PATH_BYTES || Buffer.byteLength(p) + Buffer.byteLength(release) + 1 <= MAX_PATH_BYTES;
}
