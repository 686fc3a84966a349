import type { Parser, ReadEntry } from 'tar';
import { splitEntryName } from '../archive/entry-path.js';
import { manifestMaxBytes, MANIFEST_NAME, MAX_ENTRIES, MAX_ID, parseManifest, type Manifest, type ManifestEntry } from '../archive/manifest.js';
import { resolveLink, type NodeKind } from '../archive/resolve-link.js';
import { FussyError } from '../errors.js';
import { installedMeta } from '../store/ownership.js';
import { finalizeDirectories, type DirMeta } from './finalize-dirs.js';
import { planFromBases } from './from-bases.js';
import { fromLocal, patched } from './local-files.js';
import { packageFile } from './package-file.js';
import { LANE_MIN } from './hash-lane.js';
import type { Found } from '../store/dedup-index.js';
import { StagingWriter, unsafe, type Meta } from './staging-writer.js';
import type { UnpackOptions, UnpackResult } from './unpack.js';

/** Below this many new files a thread is not worth starting. */
const PRECREATE_MIN = 64;
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

export function bad(message: string, hint = 'the package is malformed; it is refused as a whole'): FussyError {
  return new FussyError('BAD_ARCHIVE', message, { hint });
}

/**
 * What each archive member means: one top-level release directory, checked names, no
 * duplicates, no entry below a symlink or file, the manifest first (validated whole, then every
 * member compared with its entry), the policy decided before any file data, hard links only to
 * earlier files of the release, symlinks resolved against the whole tree at the end. The
 * StagingWriter makes what it decides on disk.
 */
export class Unpacker {
  readonly #o: UnpackOptions;
  readonly #w: StagingWriter;
  readonly #dirs: DirMeta[] = [];
  readonly #seen = new Set<string>();
  #release: string | undefined;
  #manifest: Manifest | undefined;
  #manifestEntries: Map<string, ManifestEntry> | undefined;
  /** The release directory's own entry, if the archive has one. */
  #top: ReadEntry | undefined;
  #entries = 0;
  /** A delta's patched files (from: "chunks"): the base file each patch applies to, verified. */
  readonly #patchBases = new Map<string, Found>();
  /** Whether the archive has a manifest, decided at its first entry that is not a directory. */
  #kind: 'manifest' | 'legacy' | undefined;
  readonly #maxEntries: number;
  #inflated = 0;
  #cap: number;
  failure: unknown;

  constructor(o: UnpackOptions) {
    this.#o = o;
    this.#cap = o.maxBytes;
    this.#maxEntries = Math.min(o.maxEntries ?? MAX_ENTRIES, MAX_ENTRIES);
    this.#w = new StagingWriter({
      staging: o.staging,
      index: o.index,
      owner: o.owner,
      maxWrite: o.maxWrite,
      maxEntries: this.#maxEntries,
      onWritten: o.onWritten,
      lane: o.lane,
      onError: (err) => (this.failure ??= err),
      failed: () => this.failure !== undefined,
    });
  }

  /**
   * Whether the archive's kind is settled: its manifest read and valid, or none (a legacy package).
   * Refusals before that depend on the package's bytes alone; after it, on the device too (unpack.ts).
   */
  get settled(): boolean {
    return this.#manifest !== undefined || this.#kind === 'legacy';
  }

  /** Count inflated bytes: the bomb bound's refusal (which ends the reading at once), else undefined. */
  inflated(n: number): FussyError | undefined {
    this.#inflated += n;
    this.#o.onProgress?.(this.#inflated, this.#manifest === undefined ? undefined : this.#manifest.totalBytes);
    if (this.#inflated <= this.#cap) return undefined;
    return bad(`the package expands beyond ${this.#cap} bytes, more than its manifest or the free space allows (decompression bomb?)`);
  }

  entry(entry: ReadEntry, parser: Parser): void {
    if (this.failure !== undefined) {
      entry.resume();
      return;
    }
    try {
      this.#entry(entry);
    } catch (err) {
      this.failure = err;
      entry.resume();
      parser.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #entry(entry: ReadEntry): void {
    const { release, rel } = splitEntryName(entry.path, 'member');
    for (const [what, id] of [['uid', entry.uid], ['gid', entry.gid]] as const) {
      // GNU tar refuses these too; chown(2) would throw on them (and -1 means "unchanged").
      if (id !== undefined && !(Number.isSafeInteger(id) && id >= 0 && id <= MAX_ID)) throw bad(`archive member "${entry.path.slice(0, 200)}" has ${what} ${id}, outside 0..${MAX_ID}`);
    }
    if (this.#release === undefined) this.#release = release;
    else if (release !== this.#release) throw bad(`the archive holds more than one top-level directory ("${this.#release}", "${release}")`);
    this.#entries += 1;
    if (this.#seen.has(rel)) throw unsafe(`archive member "${entry.path}" appears twice (a later entry could replace what an earlier one made)`);
    this.#seen.add(rel);
    const w = this.#w;
    if (rel === '.') {
      if (entry.type !== 'Directory') throw bad(`the top-level entry "${entry.path}" is not a directory`);
      if (!w.nodes.has('.')) w.mkdir('.');
      this.#dirs.push(this.#dirMeta('.', entry));
      this.#top = entry; // it precedes the manifest: compared with it in finish()
      entry.resume();
      return;
    }
    if (!w.nodes.has('.')) w.mkdir('.');
    w.parents(rel, entry.path);

    if (rel === MANIFEST_NAME) {
      // Only the first entry (after the release directory) is a manifest; a file or link before
      // it would have been written unchecked.
      if (this.#kind !== undefined || this.#entries > 2 || entry.type !== 'File') throw unsafe(`"${entry.path}" is not the first entry of the archive; a manifest is only trusted there`);
      this.#kind = 'manifest';
      this.#readManifest(entry);
      return;
    }
    const type = entry.type as string;
    if (this.#kind === undefined && type !== 'Directory') this.#decideLegacy();
    if (this.#kind === 'manifest' && this.#manifestEntries === undefined) throw bad(`archive member "${entry.path}" arrived before the manifest was read`);
    const m = this.#manifestEntries?.get(rel);
    if (this.#manifestEntries !== undefined && m === undefined) throw bad(`archive member "${entry.path}" is not in the manifest`);
    if (type === 'Directory') {
      this.#expect(m, 'directory', entry);
      if (!w.premade.has(rel)) w.mkdir(rel);
      this.#dirs.push(this.#dirMeta(rel, entry));
      entry.resume();
    } else if (FILE_TYPES.has(type)) {
      this.#expect(m, 'file', entry);
      const base = m?.from === 'chunks' ? this.#patchBases.get(rel) : undefined;
      if (base !== undefined) patched(w, rel, entry, this.#meta(entry), m?.sha256 as string, m?.size as number, base);
      else packageFile(w, rel, entry, this.#meta(entry), m?.sha256);
    } else if (type === 'SymbolicLink') {
      this.#expect(m, 'symlink', entry);
      const target = entry.linkpath ?? '';
      if (target === '' || target.includes('\0')) throw unsafe(`symlink "${entry.path}" has an empty or NUL-containing target`);
      w.symlink(rel, target, this.#meta(entry), entry.mtime);
      entry.resume();
    } else if (type === 'Link') {
      this.#expect(m, 'hardlink', entry);
      this.#hardlink(rel, entry);
    } else {
      throw unsafe(`archive member "${entry.path}" is a ${type}; firmware may only hold files, directories and links`);
    }
  }

  /** No manifest: the policy for such packages decides now, before any file data is written. */
  #decideLegacy(): void {
    this.#kind = 'legacy';
    this.#o.onLegacy?.();
  }

  #dirMeta(rel: string, entry: ReadEntry): DirMeta {
    return { abs: this.#w.abs(rel), ...this.#meta(entry), mtime: entry.mtime };
  }

  /** The metadata this installer gives an entry (as root keep owners; else drop setuid/setgid). */
  #meta(entry: ReadEntry): Meta {
    return installedMeta({ mode: entry.mode ?? 0o644, uid: entry.uid ?? 0, gid: entry.gid ?? 0 }, this.#o.owner);
  }

  #expect(m: ManifestEntry | undefined, type: ManifestEntry['type'], entry: ReadEntry): void {
    if (m === undefined) return;
    const target = type === 'hardlink' ? splitEntryName(entry.linkpath ?? '', 'hard link target').rel : entry.linkpath;
    const mismatch =
      m.type !== type ||
      m.mode !== ((entry.mode ?? 0) & 0o7777) ||
      m.uid !== (entry.uid ?? 0) ||
      m.gid !== (entry.gid ?? 0) ||
      (type === 'file' && m.from !== 'chunks' && m.size !== entry.size) ||
      ((type === 'symlink' || type === 'hardlink') && m.target !== target);
    if (mismatch) throw bad(`archive member "${entry.path}" does not match its manifest entry`);
  }

  /**
   * The manifest is bounded (manifestMaxBytes(), checked on the tar header before a byte is read)
   * and validated whole (archive/manifest.ts) before anything is built from it or written.
   */
  #readManifest(entry: ReadEntry): void {
    if (!(entry.size >= 0 && entry.size <= manifestMaxBytes(this.#maxEntries))) throw bad(`the manifest is ${entry.size} bytes, more than the ${manifestMaxBytes(this.#maxEntries)} fussy reads here`);
    const text = Buffer.allocUnsafe(entry.size);
    let got = 0;
    entry.on('data', (c: Buffer) => {
      got += c.copy(text, got);
    });
    entry.on('end', () => {
      try {
        const { manifest: m, byPath } = parseManifest(text.subarray(0, got), this.#release as string, this.#maxEntries);
        this.#manifestEntries = byPath;
        this.#manifest = m;
        // Tar headers, pax records and padding: generously 3 blocks per entry, plus the manifest.
        this.#cap = Math.min(this.#cap, m.totalBytes + (m.entries.length + 4) * 1536 + got + 1024 * 1024);
        this.#o.onManifest?.(m);
        this.#w.writeBytes(MANIFEST_NAME, text.subarray(0, got), { mode: 0o644, uid: this.#o.owner.uid, gid: this.#o.owner.gid }, entry.mtime);
        // Large files' data is hashed on a thread (hash-lane.ts), which starts while the rest is planned.
        if (m.entries.some((e) => e.type === 'file' && e.from !== 'base' && (e.size ?? 0) >= LANE_MIN)) this.#w.startLane();
        if (m.bases !== undefined) this.#fromBases(m);
        this.#startPrecreating(m);
      } catch (err) {
        this.failure ??= err;
      }
    });
  }

  /**
   * A delta package's left-out files, made now from the device's own (planFromBases checks them
   * all first), with the manifest's directories; the archive's members then add the rest, and
   * one for a path made here is refused as a duplicate.
   */
  #fromBases(m: Manifest): void {
    const plan = planFromBases(m, this.#o.index, this.#o.describeDevice ?? (() => 'no release that holds them'));
    for (const e of m.entries) {
      if (e.type !== 'directory' || e.path === '.' || this.#w.nodes.has(e.path)) continue;
      this.#w.mkdir(e.path);
      this.#w.premade.add(e.path);
    }
    for (const [e, found] of plan) {
      if (e.from === 'chunks') {
        this.#patchBases.set(e.path, found);
        continue;
      }
      fromLocal(this.#w, e.path, e.sha256 as string, e.size as number, installedMeta(e, this.#o.owner), new Date(e.mtime * 1000), found);
      this.#seen.add(e.path);
    }
  }

  /** The files that will be written (no dedup candidate) are created ahead by a thread (staging-writer.ts). */
  #startPrecreating(m: Manifest): void {
    const dirs: string[] = [];
    const files: string[] = [];
    for (const e of m.entries) {
      if (e.path === '.') continue;
      if (e.type === 'directory') dirs.push(e.path);
      else if (e.type === 'file' && e.from === undefined && e.size !== undefined && e.sha256 !== undefined) {
        if (!this.#o.index.probablyHas({ sha256: e.sha256, size: e.size, ...installedMeta(e, this.#o.owner) })) files.push(e.path);
      }
    }
    // For a few files nothing is created ahead and the parser does it all.
    if (files.length >= PRECREATE_MIN) this.#w.startPrecreating(dirs, files);
  }

  /** Every file written has been checked (the lane's checks settled; a failure is in `failure`). */
  readonly settle = (): Promise<void> => this.#w.settle();
  /** Stop the threads (creating files, hashing them); after this nothing but the caller touches staging. */
  readonly stopThreads = (): Promise<void> => this.#w.stopThreads();

  #hardlink(rel: string, entry: ReadEntry): void {
    const { release, rel: targetRel } = splitEntryName(entry.linkpath ?? '', `hard link target of "${entry.path}"`);
    if (release !== this.#release) throw unsafe(`hard link "${entry.path}" points outside the release (${entry.linkpath})`);
    const node = this.#w.nodes.get(targetRel);
    if (node?.kind !== 'file') throw unsafe(`hard link "${entry.path}" -> "${entry.linkpath}" does not name an earlier regular file of the release`);
    // GNU tar writes hard links with size 0; one that claims data is read differently by GNU tar and node-tar.
    if (entry.size !== 0) throw bad(`hard link "${entry.path}" claims ${entry.size} bytes of data (tar readers disagree on such an entry)`);
    this.#w.hardlink(rel, targetRel);
    entry.resume();
  }

  /** Stop consuming; the caller removes staging. */
  abandon(): void {
    this.failure ??= new Error('unpack abandoned');
    this.#w.abandon();
  }

  finish(): UnpackResult {
    if (this.#release === undefined) throw bad('the archive is empty');
    if (this.#kind === undefined) this.#decideLegacy(); // directories only: still a package without a manifest
    if (this.#manifestEntries !== undefined) {
      for (const path of this.#manifestEntries.keys()) {
        if (path !== '.' && !this.#seen.has(path)) throw bad(`"${path}" is in the manifest but not in the archive (truncated or altered package)`);
      }
      if (this.#top !== undefined) this.#expect(this.#manifestEntries.get('.'), 'directory', this.#top);
    }
    const w = this.#w;
    const lookup = (p: string): NodeKind | undefined => {
      const n = w.nodes.get(p);
      if (n === undefined) return undefined;
      return n.kind === 'symlink' ? { type: 'symlink', target: n.target } : { type: n.kind === 'dir' ? 'directory' : 'file' };
    };
    for (const [rel, n] of w.nodes) {
      if (n.kind !== 'symlink') continue;
      const r = resolveLink(rel, n.target, lookup);
      if (!r.inside || r.loop) throw unsafe(`symlink "${this.#release}/${rel}" -> "${n.target}" ${r.loop ? 'is part of a symlink loop' : 'points outside the release'}`);
    }
    const dirs: string[] = [];
    for (const [rel, n] of w.nodes) if (n.kind === 'dir') dirs.push(w.abs(rel));
    finalizeDirectories(this.#dirs, dirs, this.#o.owner.asRoot);
    return { release: this.#release, manifest: this.#manifest, writtenBytes: w.written, linkedBytes: w.linked, files: w.files, hashes: w.hashes };
  }
}
