import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { cannotStartThread, FussyError, isErrno } from '../errors.js';
import { installedMeta, type Owner } from '../store/ownership.js';
import { abortable } from '../util/abort.js';
import { splitEntryName } from '../archive/entry-path.js';
import { manifestMaxBytes, MANIFEST_NAME, MAX_ENTRIES, MAX_ID, parseManifest, type Manifest, type ManifestEntry } from '../archive/manifest.js';
import { TarCheck } from '../archive/tar-check.js';
import { resolveLink, type NodeKind } from '../archive/resolve-link.js';
import type { DedupIndex, Found } from '../store/dedup-index.js';
import { finalizeDirectories, type DirMeta } from './finalize-dirs.js';
import { parallelGunzip } from './parallel-gunzip.js';
import { Precreator } from './precreate.js';

export interface UnpackOptions {
  /** Directory to create; it becomes the release directory. Must not exist. */
  staging: string;
  index: DedupIndex;
  /** As root, archive owners and setuid/setgid bits are kept; otherwise files are the installer's. */
  owner: Owner;
  /**
   * Cap on uncompressed archive bytes until the manifest gives a tighter one (bomb guard): free
   * space plus what dedup could possibly share. An update may expand to more than the free space.
   */
  maxBytes: number;
  /**
   * Bytes that may be written (free space less the reserve): what is written, in 4 KiB blocks
   * plus a block per directory and symlink, is checked against it before every write.
   */
  maxWrite: number;
  /** Called once with the validated manifest, before any file data is written (space and policy checks). */
  onManifest?: (m: Manifest) => void;
  /**
   * Called once when the archive turns out to have no manifest (its first entry other than
   * directories is not one), before any file data is written: the policy for such packages.
   */
  onLegacy?: () => void;
  onProgress?: (done: number, total: number | undefined) => void;
  /** Told how many file bytes were just written (background writeback). */
  onWritten?: (bytes: number) => void;
  /** Checked between chunks and raced against each wait for one: an abort ends the unpack at once. */
  signal?: AbortSignal;
  /** Most files, directories and links the release may have (default and ceiling MAX_ENTRIES; the keyring policy's max-entries). */
  maxEntries?: number;
}

export interface UnpackResult {
  release: string;
  manifest?: Manifest;
  /** File bytes written anew. */
  writtenBytes: number;
  /** File bytes hard-linked from retained releases instead. */
  linkedBytes: number;
  files: number;
  /** Every regular file written or linked, with its sha256 (for the hash cache). */
  hashes: Array<[string, string]>;
}

type Node = { kind: 'dir' } | { kind: 'file' } | { kind: 'symlink'; target: string };
/** Shared: one object for every directory and file node, not one each. */
const DIR: Node = { kind: 'dir' };
const FILE: Node = { kind: 'file' };

/** Below this many new files a thread is not worth starting. */
const PRECREATE_MIN = 64;
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/** Disk use is counted in blocks of this size: a 1-byte file takes a block, a directory one too. */
const BLOCK = 4096;
const blocks = (bytes: number): number => Math.ceil(bytes / BLOCK) * BLOCK;

function bad(message: string, hint = 'the package is malformed; it is refused as a whole'): FussyError {
  return new FussyError('BAD_ARCHIVE', message, { hint });
}
function unsafe(message: string): FussyError {
  return new FussyError('UNSAFE_PATH', message, { hint: 'the package tries to write outside its release or replace what it wrote; it is refused as a whole' });
}

/**
 * Stream-unpack a .tar.gz into `staging` with fussy's own writer on node-tar's parser (node-tar's
 * extractor skips symlink chains since 7.5.8, and we need dedup). Every name is checked before
 * anything is written: one top-level release directory, no absolute paths or "..", no entry
 * written below a symlink or a file, no duplicates, no device nodes or FIFOs; hard links only to
 * earlier files of the release; symlinks resolved (chains followed) to stay inside the release.
 * Files are created O_EXCL|O_NOFOLLOW and hashed as they stream; a file equal in content, mode
 * and owner to one of a retained release becomes a hard link to it. Writes are synchronous: the
 * parser runs on the main thread anyway and sync I/O avoids a thread-pool trip per block.
 * The input is untrusted: the caller must not use `staging` before the signature verdict.
 */
export async function unpack(data: AsyncIterable<Uint8Array>, o: UnpackOptions): Promise<UnpackResult> {
  const u = new Unpacker(o);
  const gunzip = abortable(parallelGunzip(data), o.signal);
  const parser = new Parser({ strict: true });
  let parseError: unknown;
  parser.on('entry', (entry: ReadEntry) => u.entry(entry, parser));
  parser.on('error', (err: unknown) => (parseError ??= err));
  parser.on('warn', (code: string, message: string | Error) => (parseError ??= bad(`archive: ${code} ${String((message as Error)?.message ?? message)}`)));
  // node-tar skips what it does not know; GNU tar would extract it (tar-check.ts refuses those first).
  parser.on('ignoredEntry', (entry: ReadEntry) => (parseError ??= bad(`archive member "${entry.path.slice(0, 200)}" (type ${entry.type}) is one fussy does not read`)));
  const ended = new Promise<void>((resolve) => parser.on('end', () => resolve()));
  const framing = new TarCheck();
  try {
    for await (const chunk of gunzip) {
      u.inflated(chunk.length);
      framing.write(chunk); // before node-tar sees it: GNU tar must read the same archive
      if (!parser.write(chunk)) await new Promise<void>((resolve) => parser.once('drain', () => resolve()));
      if (u.failure !== undefined) throw u.failure;
      if (parseError !== undefined) throw parseError;
    }
    parser.end();
    await ended;
    if (u.failure !== undefined) throw u.failure;
    if (parseError !== undefined) throw parseError;
  } catch (err) {
    u.abandon();
    await u.stopPrecreating();
    if (err instanceof FussyError) throw err;
    if (isErrno(err, 'Z_DATA_ERROR', 'Z_BUF_ERROR', 'ERR_BUFFER_TOO_LARGE') || err instanceof RangeError) throw bad(`the package payload is not valid gzip: ${(err as Error).message}`);
    // node-tar in strict mode throws its warnings (TAR_BAD_ARCHIVE, TAR_ENTRY_INVALID, ...).
    const e = err as { code?: unknown; message?: unknown };
    if (String(e.code ?? '').startsWith('TAR_') || String(e.message ?? '').startsWith('TAR_')) throw bad(`malformed archive: ${String(e.message)}`);
    throw err;
  }
  await u.stopPrecreating();
  return u.finish();
}

class Unpacker {
  readonly #o: UnpackOptions;
  readonly #nodes = new Map<string, Node>();
  readonly #dirs: DirMeta[] = [];
  readonly #seen = new Set<string>();
  /** Directories made from the manifest before their archive entries arrived. */
  readonly #premade = new Set<string>();
  readonly #hashes: Array<[string, string]> = [];
  #pre: Precreator | undefined;
  #preIndex: Map<string, number> | undefined;
  #release: string | undefined;
  #manifest: Manifest | undefined;
  #manifestEntries: Map<string, ManifestEntry> | undefined;
  /** The release directory's own entry, if the archive has one. */
  #top: ReadEntry | undefined;
  #entries = 0;
  /** Whether the archive has a manifest, decided at its first entry that is not a directory. */
  #kind: 'manifest' | 'legacy' | undefined;
  get #maxEntries(): number {
    return Math.min(this.#o.maxEntries ?? MAX_ENTRIES, MAX_ENTRIES);
  }
  /** Characters of all names kept (#nodes keys, symlink targets). */
  #nameBytes = 0;
  #inflated = 0;
  #cap: number;
  /** Disk the staging dir takes, in blocks (checked against maxWrite). */
  #used = 0;
  #written = 0;
  #linked = 0;
  #files = 0;
  failure: unknown;

  constructor(o: UnpackOptions) {
    this.#o = o;
    this.#cap = o.maxBytes;
  }

  inflated(n: number): void {
    this.#inflated += n;
    if (this.#inflated > this.#cap) {
      this.failure ??= bad(`the package expands beyond ${this.#cap} bytes, more than its manifest or the free space allows (decompression bomb?)`);
    }
    this.#o.onProgress?.(this.#inflated, this.#manifest === undefined ? undefined : this.#manifest.totalBytes);
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

  #abs(rel: string): string {
    return rel === '.' ? this.#o.staging : join(this.#o.staging, rel);
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
    if (rel === '.') {
      if (entry.type !== 'Directory') throw bad(`the top-level entry "${entry.path}" is not a directory`);
      if (!this.#nodes.has('.')) this.#mkdir('.');
      this.#dirs.push(this.#dirMeta('.', entry));
      this.#top = entry; // it precedes the manifest: compared with it in finish()
      entry.resume();
      return;
    }
    if (!this.#nodes.has('.')) this.#mkdir('.');
    this.#parents(rel, entry.path);

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
      if (!this.#premade.has(rel)) this.#mkdir(rel);
      this.#dirs.push(this.#dirMeta(rel, entry));
      entry.resume();
    } else if (FILE_TYPES.has(type)) {
      this.#expect(m, 'file', entry);
      this.#file(rel, entry, m);
    } else if (type === 'SymbolicLink') {
      this.#expect(m, 'symlink', entry);
      this.#symlink(rel, entry);
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

  /**
   * Every node (entry or implied parent) is kept in memory until the end and costs disk: both
   * are bounded before it is made, whatever the archive claims.
   */
  #track(rel: string, node: Node, diskBytes: number, extraName = 0): void {
    if (this.#nodes.size >= this.#maxEntries + 1) throw bad(`the archive holds more than ${this.#maxEntries} files, directories and links, more than fussy installs here`);
    this.#nameBytes += rel.length + extraName;
    // The names of everything unpacked (paths, symlink targets) are kept until the end (duplicate,
    // parent and link checks): their total is bounded like the manifest that lists them.
    if (this.#nameBytes > manifestMaxBytes(this.#maxEntries)) throw bad(`the names in the archive add up to more than ${manifestMaxBytes(this.#maxEntries)} characters, more than fussy installs here`);
    this.#charge(diskBytes, rel);
    this.#nodes.set(rel, node);
  }

  /** Disk use, checked before the bytes are written: the free space (less the reserve) is never passed. */
  #charge(bytes: number, rel: string): void {
    if (this.#used + bytes > this.#o.maxWrite) {
      throw new FussyError('NO_SPACE', `not enough free space for the package: writing "${rel}" would pass the ${this.#o.maxWrite} bytes that may be written in ${this.#o.staging} (free space less the reserve)`, {
        hint: 'free space (fussy clean) and try again; nothing was installed',
      });
    }
    this.#used += bytes;
  }

  /** Missing parents are created (tar may omit directory entries); existing ones must be real dirs. */
  #parents(rel: string, raw: string): void {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const node = this.#nodes.get(p);
      if (node === undefined) this.#mkdir(p);
      else if (node.kind !== 'dir') throw unsafe(`archive member "${raw}" would be written through the ${node.kind} "${p}"`);
    }
  }

  #mkdir(rel: string): void {
    this.#track(rel, DIR, BLOCK);
    try {
      mkdirSync(this.#abs(rel), { mode: 0o700 });
    } catch (err) {
      throw this.#fsError(err, rel);
    }
  }

  #dirMeta(rel: string, entry: ReadEntry): DirMeta {
    return { abs: this.#abs(rel), ...this.#owner(entry), mtime: entry.mtime };
  }

  /** The metadata this installer gives an entry (SPEC: as root keep owners; else drop setuid/setgid). */
  #owner(entry: ReadEntry): { mode: number; uid: number; gid: number } {
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
      (type === 'file' && m.size !== entry.size) ||
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
        this.#writeBytes(MANIFEST_NAME, text.subarray(0, got), { mode: 0o644, uid: this.#o.owner.uid, gid: this.#o.owner.gid }, entry.mtime);
        this.#startPrecreating(m);
      } catch (err) {
        this.failure ??= err;
      }
    });
  }

  /**
   * Fresh installs spend much of their time creating inodes; with a manifest the names are known
   * up front, so the files that will be written (no dedup candidate) are created empty on a
   * worker thread ahead of the parser (precreate.ts). The manifest was validated: its names got
   * the same checks as archive names, and every parent is a directory it lists before; for a few
   * files nothing is created ahead and the parser does it all. The manifest's directories are
   * made now, so the worker can create files in them.
   */
  #startPrecreating(m: Manifest): void {
    const dirs: string[] = [];
    const files: string[] = [];
    for (const e of m.entries) {
      if (e.path === '.') continue;
      if (e.type === 'directory') dirs.push(e.path);
      else if (e.type === 'file' && e.size !== undefined && e.sha256 !== undefined) {
        if (!this.#o.index.probablyHas({ sha256: e.sha256, size: e.size, ...installedMeta(e, this.#o.owner) })) files.push(e.path);
      }
    }
    if (files.length < PRECREATE_MIN) return;
    for (const d of dirs) {
      if (this.#nodes.has(d)) continue;
      this.#mkdir(d);
      this.#premade.add(d);
    }
    try {
      this.#pre = new Precreator(files.map((r) => this.#abs(r)));
    } catch (err) {
      if (!cannotStartThread(err)) throw err;
      return; // no thread to be had (resource limits): this thread creates every file, as before
    }
    this.#preIndex = new Map(files.map((r, i) => [r, i]));
  }

  /** Stop the file-creating worker; after this nothing but the caller touches staging. */
  async stopPrecreating(): Promise<void> {
    await this.#pre?.finish();
  }

  /** A new, empty file for `rel`: made by the worker ahead of time, or created here. */
  #openNew(rel: string): number {
    const i = this.#preIndex?.get(rel);
    if (i !== undefined && this.#pre?.claim(i) === true) {
      try {
        return openSync(this.#abs(rel), constants.O_WRONLY | constants.O_NOFOLLOW);
      } catch (err) {
        throw this.#fsError(err, rel);
      }
    }
    return this.#create(rel);
  }

  #writeBytes(rel: string, data: Buffer, meta: { mode: number; uid: number; gid: number }, mtime: Date | undefined): void {
    this.#track(rel, FILE, blocks(data.length));
    const fd = this.#create(rel);
    try {
      writeAll(fd, data, this.#abs(rel));
      this.#applyMeta(fd, meta, mtime);
    } finally {
      closeSync(fd);
    }
  }

  #create(rel: string): number {
    try {
      return openSync(this.#abs(rel), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw this.#fsError(err, rel);
    }
  }

  #applyMeta(fd: number, meta: { mode: number; uid: number; gid: number }, mtime: Date | undefined): void {
    if (this.#o.owner.asRoot) fchownSync(fd, meta.uid, meta.gid);
    fchmodSync(fd, meta.mode); // after chown: chown(2) clears setuid/setgid
    if (mtime !== undefined) futimesSync(fd, mtime, mtime);
  }

  #file(rel: string, entry: ReadEntry, m: ManifestEntry | undefined): void {
    const meta = this.#owner(entry);
    const size = entry.size;
    const hash = createHash('sha256');
    const abs = this.#abs(rel);
    this.#files += 1;
    // With a manifest the content is known before the data: link first. The data itself is
    // covered by the signature like the manifest that names its hash, so it is not re-hashed.
    const known = m?.sha256 !== undefined ? this.#o.index.find({ sha256: m.sha256, size, ...meta }) : undefined;
    const linked = known !== undefined && m?.sha256 !== undefined && this.#linkFound(known, rel);
    // The tar header's size is exactly what the parser will hand over: charged before a byte is written.
    this.#track(rel, FILE, linked ? 0 : blocks(size));
    if (linked && m?.sha256 !== undefined) {
      this.#linked += size;
      this.#hashes.push([rel, m.sha256]);
      entry.resume();
      return;
    }
    const fd = this.#openNew(rel);
    let ok = false;
    entry.on('data', (c: Buffer) => {
      if (this.failure !== undefined) return;
      try {
        hash.update(c);
        writeAll(fd, c, abs);
        this.#written += c.length;
        this.#o.onWritten?.(c.length);
      } catch (err) {
        this.failure ??= err;
      }
    });
    entry.on('end', () => {
      try {
        if (this.failure === undefined) {
          this.#applyMeta(fd, meta, entry.mtime);
          ok = true;
        }
      } catch (err) {
        this.failure ??= err;
      } finally {
        closeSync(fd);
      }
      if (!ok) return;
      const sha = this.#checkHash(rel, hash, m);
      if (sha !== undefined) this.#hashes.push([rel, sha]);
      if (m === undefined && sha !== undefined) {
        // No manifest: hash while writing, link after.
        const same = this.#o.index.find({ sha256: sha, size, ...meta });
        if (same !== undefined && this.#o.index.replaceWith(same, abs)) {
          this.#written -= size;
          this.#used -= blocks(size);
          this.#linked += size;
        }
      }
    });
  }

  #checkHash(rel: string, hash: Hash, m: ManifestEntry | undefined): string | undefined {
    const sha = hash.digest('hex');
    if (m !== undefined && m.sha256 !== sha) {
      this.failure ??= bad(`content of "${rel}" does not match its manifest (sha256 ${sha}, manifest ${m.sha256})`);
      return undefined;
    }
    return sha;
  }

  #link(existing: string, rel: string): void {
    try {
      linkSync(existing, this.#abs(rel));
    } catch (err) {
      throw this.#fsError(err, rel);
    }
  }

  /** Link a verified dedup candidate; false if it was swapped after verification (the data is written instead). */
  #linkFound(c: Found, rel: string): boolean {
    try {
      return this.#o.index.linkTo(c, this.#abs(rel));
    } catch (err) {
      throw this.#fsError(err, rel);
    }
  }

  #symlink(rel: string, entry: ReadEntry): void {
    const target = entry.linkpath ?? '';
    if (target === '' || target.includes('\0')) throw unsafe(`symlink "${entry.path}" has an empty or NUL-containing target`);
    this.#track(rel, { kind: 'symlink', target }, BLOCK, target.length);
    // Checked against the whole tree once every entry is known (chains may point forward).
    try {
      symlinkSync(target, this.#abs(rel));
    } catch (err) {
      throw this.#fsError(err, rel);
    }
    const meta = this.#owner(entry);
    if (this.#o.owner.asRoot) lchownSync(this.#abs(rel), meta.uid, meta.gid);
    if (entry.mtime !== undefined) lutimesSync(this.#abs(rel), entry.mtime, entry.mtime);
    entry.resume();
  }

  #hardlink(rel: string, entry: ReadEntry): void {
    const { release, rel: targetRel } = splitEntryName(entry.linkpath ?? '', `hard link target of "${entry.path}"`);
    if (release !== this.#release) throw unsafe(`hard link "${entry.path}" points outside the release (${entry.linkpath})`);
    const node = this.#nodes.get(targetRel);
    if (node?.kind !== 'file') throw unsafe(`hard link "${entry.path}" -> "${entry.linkpath}" does not name an earlier regular file of the release`);
    // GNU tar writes hard links with size 0; one that claims data is read differently by GNU tar and node-tar.
    if (entry.size !== 0) throw bad(`hard link "${entry.path}" claims ${entry.size} bytes of data (tar readers disagree on such an entry)`);
    this.#track(rel, FILE, 0);
    this.#link(this.#abs(targetRel), rel);
    entry.resume();
  }

  #fsError(err: unknown, rel: string): unknown {
    if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
      return new FussyError('NO_SPACE', `the disk filled up while writing ${rel} into ${this.#o.staging}`, { cause: err, hint: 'free space (fussy clean) and try again; nothing was installed' });
    }
    if (isErrno(err, 'EEXIST')) return unsafe(`archive member "${rel}" collides with an existing entry`);
    return err;
  }

  /** Stop consuming; the caller removes staging. */
  abandon(): void {
    this.failure ??= new Error('unpack abandoned');
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
    const lookup = (p: string): NodeKind | undefined => {
      const n = this.#nodes.get(p);
      if (n === undefined) return undefined;
      return n.kind === 'symlink' ? { type: 'symlink', target: n.target } : { type: n.kind === 'dir' ? 'directory' : 'file' };
    };
    for (const [rel, n] of this.#nodes) {
      if (n.kind !== 'symlink') continue;
      const r = resolveLink(rel, n.target, lookup);
      if (!r.inside || r.loop) throw unsafe(`symlink "${this.#release}/${rel}" -> "${n.target}" ${r.loop ? 'is part of a symlink loop' : 'points outside the release'}`);
    }
    const dirs: string[] = [];
    for (const [rel, n] of this.#nodes) if (n.kind === 'dir') dirs.push(this.#abs(rel));
    finalizeDirectories(this.#dirs, dirs, this.#o.owner.asRoot);
    return { release: this.#release, manifest: this.#manifest, writtenBytes: this.#written, linkedBytes: this.#linked, files: this.#files, hashes: this.#hashes };
  }
}

function writeAll(fd: number, data: Buffer, abs: string): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off, data.length - off);
    } catch (err) {
      if (isErrno(err, 'ENOSPC', 'EDQUOT')) {
        throw new FussyError('NO_SPACE', `the disk filled up while writing ${abs}`, { cause: err, hint: 'free space (fussy clean) and try again; nothing was installed' });
      }
      throw err;
    }
  }
}
