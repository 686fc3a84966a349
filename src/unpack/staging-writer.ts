import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ReadEntry } from 'tar';
import { cannotStartThread, FussyError, isErrno } from '../errors.js';
import { manifestMaxBytes } from '../archive/manifest.js';
import type { DedupIndex, Found } from '../store/dedup-index.js';
import type { Owner } from '../store/ownership.js';
import { formatBytes } from '../util/format.js';
import { stagingError, unsafe, writeAll } from './file-io.js';
import { Precreator } from './precreate.js';

export { unsafe };

export type Node = { kind: 'dir' } | { kind: 'file' } | { kind: 'symlink'; target: string };
/** Shared: one object for every directory and file node, not one each. */
export const DIR: Node = { kind: 'dir' };
export const FILE: Node = { kind: 'file' };
export type Meta = { mode: number; uid: number; gid: number };

/** Disk use is counted in blocks of this size: a 1-byte file takes a block, a directory one too. */
const BLOCK = 4096;
export const blocks = (bytes: number): number => Math.ceil(bytes / BLOCK) * BLOCK;

export interface WriterOptions {
  staging: string;
  index: DedupIndex;
  owner: Owner;
  /** Bytes that may be written: every write is charged against it first (blocks, see BLOCK). */
  maxWrite: number;
  maxEntries: number;
  onWritten?: (bytes: number) => void;
  /** An error of a write that happens in a stream callback (the caller stops at the next chunk). */
  onError: (err: unknown) => void;
  failed: () => boolean;
}

/**
 * fussy's writer of a staging tree: the unpacker (unpack.ts) decides what an archive member
 * means, this makes it on disk. Every node (entry or implied parent) is kept in memory until the
 * end and costs disk: both are bounded before it is made. Files are created O_EXCL|O_NOFOLLOW
 * (or claimed from the precreating thread), hashed as they stream, given their owner and mode
 * through the descriptor, and linked to an identical file of a retained release (dedup) when
 * the index has one. Writes are synchronous: the parser runs on the main thread anyway and sync
 * I/O avoids a thread-pool trip per block.
 */
export class StagingWriter {
  readonly nodes = new Map<string, Node>();
  /** Every regular file written or linked, with its sha256 (for the hash cache). */
  readonly hashes: Array<[string, string]> = [];
  /** Directories made from the manifest before their archive entries arrived. */
  readonly premade = new Set<string>();
  written = 0;
  linked = 0;
  files = 0;
  /** Characters of all names kept (node keys, symlink targets). */
  #nameBytes = 0;
  /** Disk the staging dir takes, in blocks (checked against maxWrite). */
  #used = 0;
  #pre: Precreator | undefined;
  /** Descriptors of files whose data is still arriving: closed by abandon() if the parser never ends them. */
  readonly #open = new Set<number>();
  #preIndex: Map<string, number> | undefined;

  constructor(readonly o: WriterOptions) {}

  abs(rel: string): string {
    return rel === '.' ? this.o.staging : join(this.o.staging, rel);
  }

  track(rel: string, node: Node, diskBytes: number, extraName = 0): void {
    if (this.nodes.size >= this.o.maxEntries + 1) throw new FussyError('BAD_ARCHIVE', `the archive holds more than ${this.o.maxEntries} files, directories and links, more than fussy installs here`, { hint: 'the package is malformed; it is refused as a whole' });
    this.#nameBytes += rel.length + extraName;
    // The names of everything unpacked (paths, symlink targets) are kept until the end (duplicate,
    // parent and link checks): their total is bounded like the manifest that lists them.
    if (this.#nameBytes > manifestMaxBytes(this.o.maxEntries)) throw new FussyError('BAD_ARCHIVE', `the names in the archive add up to more than ${manifestMaxBytes(this.o.maxEntries)} characters, more than fussy installs here`, { hint: 'the package is malformed; it is refused as a whole' });
    this.#charge(diskBytes, rel);
    this.nodes.set(rel, node);
  }

  /** Disk use, checked before the bytes are written: the free space (less the reserve) is never passed. */
  #charge(bytes: number, rel: string): void {
    if (this.#used + bytes > this.o.maxWrite) {
      throw new FussyError('NO_SPACE', `not enough free space for the package: writing "${rel}" (${formatBytes(bytes)}) would pass the ${formatBytes(this.o.maxWrite)} that may be written in ${this.o.staging} (free space less the reserve)`, {
        hint: 'free space (fussy clean) and try again; nothing was installed',
        details: { maxWriteBytes: this.o.maxWrite, writtenBytes: this.#used, entryBytes: bytes },
      });
    }
    this.#used += bytes;
  }

  /** Missing parents are created (tar may omit directory entries); existing ones must be real dirs. */
  parents(rel: string, raw: string): void {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const node = this.nodes.get(p);
      if (node === undefined) this.mkdir(p);
      else if (node.kind !== 'dir') throw unsafe(`archive member "${raw}" would be written through the ${node.kind} "${p}"`);
    }
  }

  mkdir(rel: string): void {
    this.track(rel, DIR, BLOCK);
    try {
      mkdirSync(this.abs(rel), { mode: 0o700 });
    } catch (err) {
      throw stagingError(err, rel, this.o.staging);
    }
  }

  /**
   * Fresh installs spend much of their time creating inodes; with a manifest the names are known
   * up front, so the files that will be written (no dedup candidate) are created empty on a
   * worker thread ahead of the parser (precreate.ts). The manifest's directories are made now,
   * so the worker can create files in them. Names were validated like archive names.
   */
  startPrecreating(dirs: string[], files: string[]): void {
    for (const d of dirs) {
      if (this.nodes.has(d)) continue;
      this.mkdir(d);
      this.premade.add(d);
    }
    try {
      this.#pre = new Precreator(files.map((r) => this.abs(r)));
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
        return openSync(this.abs(rel), constants.O_WRONLY | constants.O_NOFOLLOW);
      } catch (err) {
        throw stagingError(err, rel, this.o.staging);
      }
    }
    return this.createFile(rel);
  }

  writeBytes(rel: string, data: Buffer, meta: Meta, mtime: Date | undefined): void {
    this.track(rel, FILE, blocks(data.length));
    const fd = this.createFile(rel);
    try {
      writeAll(fd, data, this.abs(rel));
      this.applyMeta(fd, meta, mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Keep `fd` (a file being written, or a patch's base) until release() or abandon(). */
  hold(fd: number): number {
    this.#open.add(fd);
    return fd;
  }

  release(fd: number): void {
    if (this.#open.delete(fd)) closeSync(fd);
  }

  /** Close what an aborted parse left open (an entry whose end never came). */
  abandon(): void {
    for (const fd of this.#open) {
      try {
        closeSync(fd);
      } catch (err) {
        if (!isErrno(err, 'EIO', 'EBADF', 'EINTR', 'ENOSPC', 'EDQUOT')) throw err; // the refusal that got here is what the caller must see
      }
    }
    this.#open.clear();
  }

  createFile(rel: string): number {
    try {
      return openSync(this.abs(rel), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw stagingError(err, rel, this.o.staging);
    }
  }

  applyMeta(fd: number, meta: Meta, mtime: Date | undefined): void {
    if (this.o.owner.asRoot) fchownSync(fd, meta.uid, meta.gid);
    fchmodSync(fd, meta.mode); // after chown: chown(2) clears setuid/setgid
    if (mtime !== undefined) futimesSync(fd, mtime, mtime);
  }

  /**
   * A regular file from `entry`'s data. `sha256`: what the signed manifest says its content is
   * (then a retained release's identical file is linked before the data arrives, and the data is
   * checked against it); without one the file is hashed while written and linked after.
   */
  file(rel: string, entry: ReadEntry, meta: Meta, sha256: string | undefined): void {
    const size = entry.size;
    const hash = createHash('sha256');
    const abs = this.abs(rel);
    this.files += 1;
    // With a manifest the content is known before the data: link first. The data itself is
    // covered by the signature like the manifest that names its hash, so it is not re-hashed.
    const known = sha256 !== undefined ? this.o.index.find({ sha256, size, ...meta }) : undefined;
    const linked = known !== undefined && this.linkFound(known, rel);
    // The tar header's size is exactly what the parser will hand over: charged before a byte is written.
    this.track(rel, FILE, linked ? 0 : blocks(size));
    if (linked && sha256 !== undefined) {
      this.linked += size;
      this.hashes.push([rel, sha256]);
      entry.resume();
      return;
    }
    const fd = this.hold(this.#openNew(rel));
    let ok = false;
    entry.on('data', (c: Buffer) => {
      if (this.o.failed()) return;
      try {
        hash.update(c);
        writeAll(fd, c, abs);
        this.written += c.length;
        this.o.onWritten?.(c.length);
      } catch (err) {
        this.o.onError(err);
      }
    });
    entry.on('end', () => {
      try {
        if (!this.o.failed()) {
          this.applyMeta(fd, meta, entry.mtime);
          ok = true;
        }
      } catch (err) {
        this.o.onError(err);
      } finally {
        this.release(fd);
      }
      if (!ok) return;
      const sha = this.#checkHash(rel, hash, sha256);
      if (sha !== undefined) this.hashes.push([rel, sha]);
      if (sha256 === undefined && sha !== undefined) {
        // No manifest: hash while writing, link after.
        const same = this.o.index.find({ sha256: sha, size, ...meta });
        if (same !== undefined && this.o.index.replaceWith(same, abs)) {
          this.written -= size;
          this.#used -= blocks(size);
          this.linked += size;
        }
      }
    });
  }

  #checkHash(rel: string, hash: Hash, expected: string | undefined): string | undefined {
    const sha = hash.digest('hex');
    if (expected !== undefined && expected !== sha) {
      this.o.onError(new FussyError('BAD_ARCHIVE', `content of "${rel}" does not match its manifest (sha256 ${sha}, manifest ${expected})`, { hint: 'the package is malformed; it is refused as a whole' }));
      return undefined;
    }
    return sha;
  }

  /** Link a verified dedup candidate; false if it was swapped after verification (the data is written instead). */
  linkFound(c: Found, rel: string): boolean {
    try {
      return this.o.index.linkTo(c, this.abs(rel));
    } catch (err) {
      throw stagingError(err, rel, this.o.staging);
    }
  }

  /** A symlink; where it points is checked against the whole tree at the end (chains may point forward). */
  symlink(rel: string, target: string, meta: Meta, mtime: Date | undefined): void {
    this.track(rel, { kind: 'symlink', target }, BLOCK, target.length);
    try {
      symlinkSync(target, this.abs(rel));
    } catch (err) {
      throw stagingError(err, rel, this.o.staging);
    }
    if (this.o.owner.asRoot) lchownSync(this.abs(rel), meta.uid, meta.gid);
    if (mtime !== undefined) lutimesSync(this.abs(rel), mtime, mtime);
  }

  /** A hard link to `targetRel`, an earlier regular file of the release (the caller checked). */
  hardlink(rel: string, targetRel: string): void {
    this.track(rel, FILE, 0);
    try {
      linkSync(this.abs(targetRel), this.abs(rel));
    } catch (err) {
      throw stagingError(err, rel, this.o.staging);
    }
  }
}
