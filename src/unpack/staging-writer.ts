import { closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { cannotStartThread, FussyError, isErrno } from '../errors.js';
import { manifestMaxBytes } from '../archive/manifest.js';
import type { DedupIndex, Found } from '../store/dedup-index.js';
import type { Owner } from '../store/ownership.js';
import { formatBytes } from '../util/format.js';
import { stagingError, unsafe, writeAll } from './file-io.js';
import { HashLane, type LaneFile } from './hash-lane.js';
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
  /** A hash lane started by the caller ahead of time (unpack.ts); startLane() takes it, stopThreads() stops it. */
  lane?: HashLane;
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
  #lane: HashLane | undefined;
  /** Descriptors the lane reads: closed when their check settles, or once the lane has stopped. */
  readonly #hashing = new Set<number>();
  readonly #checks: Promise<unknown>[] = [];

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

  /** Give back disk charged for a file that became a link after all. */
  refund(bytes: number): void {
    this.#used -= bytes;
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

  /** Large files are hashed on a thread as they are written (hash-lane.ts): the caller's lane, or a new one; when the manifest lists one. */
  startLane(): void {
    this.#lane ??= this.o.lane ?? HashLane.start();
  }

  /**
   * Put the file being written through `fd` (`size` bytes, `sha256` by the signed manifest) on the
   * lane, or undefined: hash it as it is written. From here `fd` is the lane's, closed when its
   * check settles (or once the lane has stopped). A mismatch is `mismatch`, through onError.
   */
  onLane(fd: number, rel: string, size: number, sha256: string, mismatch: (actual: string) => FussyError): LaneFile | undefined {
    if (this.#lane?.takes(size) !== true) return undefined;
    const file = this.#lane.open(fd, size);
    this.#open.delete(fd);
    this.#hashing.add(fd);
    let cancelled = false;
    const check = file.digest.then(
      (actual) => (actual === sha256 ? void this.hashes.push([rel, sha256]) : this.o.onError(mismatch(actual))),
      (err: unknown) => this.o.onError(new FussyError('SETUP', `"${rel}" could not be checked against its manifest: ${(err as Error).message}`, { cause: err, hint: 'nothing was installed; try again (a thread could not be run or a file not read back)' })),
    );
    // A cancelled file's descriptor may still be read by the thread: stopThreads() closes it.
    this.#checks.push(check.finally(() => !cancelled && this.#hashing.delete(fd) && this.#close(fd)));
    return {
      ...file,
      cancel: () => {
        cancelled = true;
        file.cancel();
      },
    };
  }

  /** Every check on the lane has settled (a failure is told through onError). */
  async settle(): Promise<void> {
    while (this.#checks.length > 0) await Promise.all(this.#checks.splice(0));
  }

  /** Stop the threads (creating files, hashing them); after this nothing but the caller touches staging. */
  async stopThreads(): Promise<void> {
    await this.#pre?.finish();
    // With no descriptor left on the lane (every file's digest came), the thread has nothing it
    // could read: it ends in the background (the caller's own stop() waits for it at the end).
    const stopping = this.#lane?.stop();
    if (this.#hashing.size > 0) await stopping;
    this.#lane = undefined;
    for (const fd of this.#hashing) this.#close(fd);
    this.#hashing.clear();
  }

  /** A new, empty file for `rel`: made by the worker ahead of time, or created here. */
  openNew(rel: string): number {
    const i = this.#preIndex?.get(rel);
    if (i !== undefined && this.#pre?.claim(i) === true) {
      try {
        return openSync(this.abs(rel), constants.O_RDWR | constants.O_NOFOLLOW);
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

  /** Close what an aborted parse left open (an entry whose end never came); the lane's wait for stopThreads(). */
  abandon(): void {
    for (const fd of this.#open) this.#close(fd);
    this.#open.clear();
  }

  #close(fd: number): void {
    try {
      closeSync(fd);
    } catch (err) {
      if (!isErrno(err, 'EIO', 'EBADF', 'EINTR', 'ENOSPC', 'EDQUOT')) throw err; // the refusal that got here is what the caller must see
    }
  }

  createFile(rel: string): number {
    try {
      return openSync(this.abs(rel), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw stagingError(err, rel, this.o.staging);
    }
  }

  applyMeta(fd: number, meta: Meta, mtime: Date | undefined): void {
    if (this.o.owner.asRoot) fchownSync(fd, meta.uid, meta.gid);
    fchmodSync(fd, meta.mode); // after chown: chown(2) clears setuid/setgid
    if (mtime !== undefined) futimesSync(fd, mtime, mtime);
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
