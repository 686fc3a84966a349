import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fchmodSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { FussyError } from '../errors.js';
import { at, DIR_NOFOLLOW } from '../util/dir-fd.js';
import { fsyncDir, isTempName, unlinkIfExistsSync } from '../util/fs-atomic.js';
import { fsFailure } from '../util/fs-failure.js';
import { checkUploadId } from './names.js';
import { DONE, isOwnFile, lstatAt, noUpload, openForReading, openPart, PART, partSize, readSidecar, removeFiles, SIDECAR, writeSidecar } from './upload-files.js';
import { writeStream, type UploadSource } from './upload-write.js';

export type { UploadSource };

export interface UploadStoreOptions {
  /** The largest package accepted (max-upload-bytes). */
  maxBytes: number;
  /** An upload untouched this long is removed by sweep() (a day). */
  maxAgeMs: number;
  /** Uploads held at once, partial or whole (max-uploads): with max-upload-bytes, what the uploads may take of the disk. */
  maxUploads?: number;
  /** Told of an upload removed to make room for a new one (the least recently written one not in use). */
  onEvict?: (sha256: string, have: number) => void;
  now?: () => Date;
}

/** What the daemon holds of one upload. */
export interface UploadState {
  size: number;
  /** Bytes received; the next append starts here. */
  have: number;
  /** The whole package is there and its sha256 was checked (complete()). */
  verified: boolean;
}

/** The sha256 state of the first `bytes` of a .part, kept while the daemon runs (node cannot save a hash's state). */
interface Running {
  hash: Hash;
  bytes: number;
}

/**
 * Resumable uploads of firmware packages, named by their sha256 (docs/daemon.md "Firmware
 * upload"). One operation per sha256 at a time: a second one while an append or a check runs is
 * UPLOAD_BUSY. The bytes go to disk as they arrive; whatever a cut connection delivered stays
 * (fsynced), so the client resumes from `have`.
 */
export class UploadStore {
  private readonly busy = new Set<string>();
  private readonly hashes = new Map<string, Running>();

  private constructor(
    /** STATE/uploads, for the paths complete() hands to the install (another process). */
    readonly dir: string,
    private readonly fd: number,
    private readonly o: Required<UploadStoreOptions>,
  ) {}

  /** STATE/uploads (0700, made with STATE if missing; a symlink there is refused: SETUP naming ELOOP or ENOTDIR). */
  static open(stateDir: string, o: UploadStoreOptions): UploadStore {
    const dir = join(stateDir, 'uploads');
    try {
      mkdirSync(dir, { mode: 0o700, recursive: true });
    } catch (err) {
      throw fsFailure(err, dir, 'create');
    }
    let fd: number;
    try {
      fd = openSync(dir, DIR_NOFOLLOW);
    } catch (err) {
      throw fsFailure(err, dir, 'open');
    }
    fchmodSync(fd, 0o700);
    return new UploadStore(dir, fd, { maxBytes: o.maxBytes, maxAgeMs: o.maxAgeMs, maxUploads: o.maxUploads ?? 4, onEvict: o.onEvict ?? (() => undefined), now: o.now ?? (() => new Date()) });
  }

  close(): void {
    closeSync(this.fd);
  }

  /** What is held of `sha256`, or undefined when no upload of it was begun. */
  state(sha256: string): UploadState | undefined {
    checkUploadId(sha256);
    const side = readSidecar(this.fd, sha256);
    if (side === undefined) return undefined;
    const verified = isOwnFile(lstatAt(this.fd, sha256 + DONE));
    return { size: side.size, have: verified ? side.size : partSize(this.fd, sha256), verified };
  }

  /**
   * Begin (or look at) the upload of a package of `size` bytes. The same size again: what is
   * held, to resume from. Another size: the partial upload starts over (decided: a sha256 has
   * one size, so one of the two claims is wrong, and it is the new one the client is sending),
   * unless an append runs (UPLOAD_BUSY) or the package was verified at its size (UPLOAD_CONFLICT).
   */
  async begin(sha256: string, size: number): Promise<UploadState> {
    checkUploadId(sha256);
    if (!Number.isSafeInteger(size) || size < 1) throw new FussyError('USAGE', `upload size ${String(size)} is not a number of bytes`, { hint: 'send the size of the package in bytes (at least 1)', details: { sha256 } });
    if (size > this.o.maxBytes) {
      throw new FussyError('TOO_LARGE', `a package of ${size} bytes is larger than this device accepts (${this.o.maxBytes})`, { hint: 'raise max-upload-bytes in fussyd.conf', details: { sha256, size, max: this.o.maxBytes } });
    }
    const was = this.state(sha256);
    if (was?.size === size) return was;
    if (was?.verified === true) {
      throw new FussyError('UPLOAD_CONFLICT', `upload ${sha256} was verified at ${was.size} bytes, not ${size}`, { hint: 'the sha256 of a package fixes its size: check which file you meant', details: { sha256, size: was.size } });
    }
    if (this.busy.has(sha256)) throw busy(sha256);
    if (was === undefined) this.makeRoom();
    this.hashes.delete(sha256);
    removeFiles(this.fd, sha256);
    await writeSidecar(this.fd, sha256, { size, created: this.o.now().toISOString() });
    const { fd } = openPart(this.fd, sha256);
    closeSync(fd);
    await fsyncDir(at(this.fd));
    return { size, have: 0, verified: false };
  }

  /**
   * Append `source` at `offset`, which must be what is held (else UPLOAD_OFFSET naming it).
   * Streamed to disk, never whole in memory; bytes past the size are refused (TOO_LARGE, the
   * size kept). A source that fails mid-way rejects with its own error, what arrived kept.
   */
  async append(sha256: string, offset: number, source: UploadSource): Promise<UploadState> {
    checkUploadId(sha256);
    return this.exclusive(sha256, async () => {
      const side = readSidecar(this.fd, sha256);
      if (side === undefined) throw noUpload(sha256);
      if (isOwnFile(lstatAt(this.fd, sha256 + DONE))) {
        if (offset !== side.size) throw wrongOffset(sha256, offset, side.size, side.size);
        await writeStream(undefined, side.size, side.size, source, undefined, sha256);
        return { size: side.size, have: side.size, verified: true };
      }
      const { fd, fresh } = openPart(this.fd, sha256);
      if (fresh) await fsyncDir(at(this.fd));
      let have: number;
      try {
        have = fstatSync(fd).size;
        if (have > side.size) {
          ftruncateSync(fd, 0); // never written by this store: start over
          have = 0;
        }
        if (offset !== have) throw wrongOffset(sha256, offset, have, side.size);
        const kept = this.hashes.get(sha256);
        const running = kept !== undefined && kept.bytes === have ? kept : have === 0 ? { hash: createHash('sha256'), bytes: 0 } : undefined;
        this.hashes.delete(sha256);
        try {
          have = await writeStream(fd, have, side.size, source, running, sha256);
        } finally {
          if (running !== undefined) this.hashes.set(sha256, running);
        }
      } finally {
        closeSync(fd);
      }
      return { size: side.size, have, verified: false };
    });
  }

  /**
   * The path of the whole package once its sha256 is checked: from the hash kept while it
   * arrived, or by reading it again (after a daemon restart). A mismatch removes the upload
   * (UPLOAD_MISMATCH); fewer bytes than the size is UPLOAD_INCOMPLETE. The checked file is
   * `<sha256>.pkg` and stays until remove() (or sweep()).
   */
  complete(sha256: string): Promise<string> {
    checkUploadId(sha256);
    return this.exclusive(sha256, async () => {
      const side = readSidecar(this.fd, sha256);
      if (side === undefined) throw noUpload(sha256);
      const done = join(this.dir, sha256 + DONE);
      if (isOwnFile(lstatAt(this.fd, sha256 + DONE))) return done;
      const part = openForReading(this.fd, sha256 + PART);
      if (part === undefined || part.size !== side.size) {
        if (part !== undefined) closeSync(part.fd);
        const have = part?.size ?? 0;
        throw new FussyError('UPLOAD_INCOMPLETE', `upload ${sha256} holds ${have} of ${side.size} bytes`, { hint: `send the rest from offset ${have}`, details: { sha256, have, size: side.size } });
      }
      const kept = this.hashes.get(sha256);
      this.hashes.delete(sha256);
      const digest = kept !== undefined && kept.bytes === side.size ? (closeSync(part.fd), kept.hash.digest('hex')) : await hashFd(part.fd);
      if (digest !== sha256) {
        removeFiles(this.fd, sha256);
        throw new FussyError('UPLOAD_MISMATCH', `upload ${sha256}: the ${side.size} bytes received have sha256 ${digest}; the upload is removed`, {
          hint: 'upload the package again, naming the sha256 of the file you send',
          details: { sha256, actual: digest, size: side.size },
        });
      }
      renameSync(at(this.fd, sha256 + PART), at(this.fd, sha256 + DONE));
      await fsyncDir(at(this.fd));
      return done;
    });
  }

  /** Forget an upload and its files (after its install, whatever the outcome). False when there was none. */
  remove(sha256: string): Promise<boolean> {
    checkUploadId(sha256);
    return this.exclusive(sha256, async () => {
      this.hashes.delete(sha256);
      const removed = removeFiles(this.fd, sha256);
      if (removed) await fsyncDir(at(this.fd));
      return removed;
    });
  }

  /**
   * At daemon start: remove uploads untouched for maxAgeMs (by the newest mtime of their files),
   * files without their sidecar, and temp files a crash left. Anything else is left alone.
   * Returns the names removed.
   */
  sweep(): string[] {
    const bySha = new Map<string, Map<string, Stats>>();
    const removed: string[] = [];
    for (const name of readdirSync(at(this.fd))) {
      const st = lstatAt(this.fd, name);
      if (st === undefined) continue;
      const m = /^([0-9a-f]{64})(\.part|\.pkg|\.json)$/.exec(name);
      if (m === null) {
        if (!isTempName(name)) continue;
        unlinkIfExistsSync(at(this.fd, name));
        removed.push(name);
        continue;
      }
      const sha = m[1] as string;
      if (this.busy.has(sha)) continue;
      bySha.set(sha, (bySha.get(sha) ?? new Map<string, Stats>()).set(name, st));
    }
    const now = this.o.now().getTime();
    for (const [sha, files] of bySha) {
      const newest = Math.max(...[...files.values()].map((st) => st.mtimeMs));
      if (files.has(sha + SIDECAR) && now - newest <= this.o.maxAgeMs) continue;
      this.hashes.delete(sha);
      removeFiles(this.fd, sha);
      removed.push(...[sha + PART, sha + DONE, sha + SIDECAR].filter((n) => files.has(n)));
    }
    return removed;
  }

  /**
   * Before a new upload begins: while `maxUploads` are held, the one written least recently that
   * no request is using is removed (a fleet that starts new uploads wins over one that left a
   * partial behind; it resumes from 0 if it comes back). Every one in use: UPLOAD_BUSY.
   */
  private makeRoom(): void {
    const held = new Map<string, number>();
    for (const name of readdirSync(at(this.fd))) {
      const m = /^([0-9a-f]{64})(\.part|\.pkg|\.json)$/.exec(name);
      const st = m === null ? undefined : lstatAt(this.fd, name);
      if (m === null || st === undefined) continue;
      const sha = m[1] as string;
      held.set(sha, Math.max(held.get(sha) ?? 0, st.mtimeMs));
    }
    while (held.size >= this.o.maxUploads) {
      const [victim] = [...held].filter(([sha]) => !this.busy.has(sha)).sort((a, b) => a[1] - b[1])[0] ?? [];
      if (victim === undefined) {
        throw new FussyError('UPLOAD_BUSY', `fussyd holds ${held.size} uploads (max-uploads ${this.o.maxUploads}), every one being written or checked`, { hint: 'retry when one of them has ended, or raise max-uploads in fussyd.conf', details: { held: held.size, max: this.o.maxUploads } });
      }
      const have = this.state(victim)?.have ?? 0;
      this.hashes.delete(victim);
      removeFiles(this.fd, victim);
      held.delete(victim);
      this.o.onEvict(victim, have);
    }
  }

  private async exclusive<T>(sha256: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy.has(sha256)) throw busy(sha256);
    this.busy.add(sha256);
    try {
      return await fn();
    } finally {
      this.busy.delete(sha256);
    }
  }
}

async function hashFd(fd: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream('', { fd, start: 0, highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function busy(sha256: string): FussyError {
  return new FussyError('UPLOAD_BUSY', `upload ${sha256} is being written or checked by another request`, { hint: 'wait for the other request to end, then ask for the upload\'s state again', details: { sha256 } });
}

function wrongOffset(sha256: string, offset: number, have: number, size: number): FussyError {
  return new FussyError('UPLOAD_OFFSET', `upload ${sha256} holds ${have} bytes: send from offset ${have}, not ${offset}`, { hint: `resume at offset ${have}`, details: { sha256, offset, have, size } });
}
