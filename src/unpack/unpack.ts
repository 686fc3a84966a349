import { Parser, type ReadEntry } from 'tar';
import type { Manifest } from '../archive/manifest.js';
import { TarCheck } from '../archive/tar-check.js';
import { FussyError, isErrno } from '../errors.js';
import type { DedupIndex } from '../store/dedup-index.js';
import type { Owner } from '../store/ownership.js';
import { abortable, throwIfAborted, untilAborted } from '../util/abort.js';
import type { HashLane } from './hash-lane.js';
import { parallelGunzip } from './parallel-gunzip.js';
import { bad, Unpacker } from './unpacker.js';

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
  /** Told once every file's data is written, before the last checks of their content (hash-lane.ts) are waited for. */
  onDataWritten?: () => void;
  /** Checked between chunks and raced against each wait for one: an abort ends the unpack at once. */
  signal?: AbortSignal;
  /** What this device has, for the message refusing a delta package whose files it lacks. */
  describeDevice?: () => string;
  /** Most files, directories and links the release may have (default and ceiling MAX_ENTRIES; the keyring policy's max-entries). */
  maxEntries?: number;
  /**
   * A hash lane (hash-lane.ts) the caller started early, so that its thread is up by the first
   * large file: used if the manifest lists one to write, and then stopped by unpack; the caller
   * stops it in any case (a second stop is harmless).
   */
  lane?: HashLane;
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
  const source = new Source(data);
  const gunzip = abortable(parallelGunzip(source), o.signal);
  const parser = new Parser({ strict: true });
  let parseError: unknown;
  parser.on('entry', (entry: ReadEntry) => u.entry(entry, parser));
  parser.on('error', (err: unknown) => (parseError ??= err));
  parser.on('warn', (code: string, message: string | Error) => (parseError ??= bad(`archive: ${code} ${String((message as Error)?.message ?? message)}`)));
  // node-tar skips what it does not know; GNU tar would extract it (tar-check.ts refuses those first).
  parser.on('ignoredEntry', (entry: ReadEntry) => (parseError ??= bad(`archive member "${entry.path.slice(0, 200)}" (type ${entry.type}) is one fussy does not read`)));
  const ended = new Promise<void>((resolve) => parser.on('end', () => resolve()));
  const framing = new TarCheck();
  // A refusal once the manifest has been read (or found missing) depends on the device too, if
  // only because the device went on reading: the first, whatever it is (the content, a broken
  // gzip stream, the bomb bound), is held, nothing more is inflated, parsed or written, and the
  // rest of the package is only read (source.rest()) before it is told (readToEnd); the caller
  // gives the signature verdict first, so a forged package cannot learn from the answer what the
  // device has or is (a delta's bases, its type, its sequence). Refusals before that depend on the
  // package's bytes (and the free space and entry limit every package is held to) and are told at
  // once, as is an abort.
  let held: unknown;
  const chunks = gunzip[Symbol.asyncIterator]();
  // Once settled, every refusal is held: one of the content, a broken gzip stream, the bomb bound.
  const hold = (err: unknown): void => {
    if (!u.settled || o.signal?.aborted === true) throw err;
    held = err;
  };
  try {
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await chunks.next();
      } catch (err) {
        hold(err); // gunzip has ended itself
        break;
      }
      if (next.done === true) break;
      const bomb = u.inflated(next.value.length);
      if (bomb === undefined) {
        try {
          if (u.failure !== undefined) throw u.failure; // a check on the hash lane that failed meanwhile
          framing.write(next.value); // before node-tar sees it: GNU tar must read the same archive
          if (!parser.write(next.value)) await new Promise<void>((resolve) => parser.once('drain', () => resolve()));
          if (u.failure !== undefined) throw u.failure;
          if (parseError !== undefined) throw parseError;
        } catch (err) {
          hold(err);
        }
      } else hold(bomb);
      if (held !== undefined) {
        await chunks.return?.(undefined); // stop inflating (its source, the package, stays open: Source)
        break;
      }
    }
    if (held !== undefined) {
      u.abandon();
      await u.stopThreads();
    }
    // The rest of the package's data: after a held refusal, or after the end of the gzip stream
    // (GNU tar pads a compressed archive it writes to a pipe with zeros; zlib passes over them).
    // It is only read, never used: the verdict, which comes after it, needs it all read.
    await source.rest(o.signal);
    if (held === undefined) {
      parser.end();
      await ended;
      o.onDataWritten?.();
      await untilAborted(u.settle(), o.signal); // an abort stops the lane (stopThreads below) rather than wait for its backlog
      held = u.failure ?? parseError;
    }
    if (held !== undefined) throw readToEnd(held);
  } catch (err) {
    await chunks.return?.(undefined); // no inflation left running (a finished generator just says done)
    u.abandon();
    await u.stopThreads();
    if (err instanceof FussyError) throw err;
    if (isErrno(err, 'Z_DATA_ERROR', 'Z_BUF_ERROR', 'ERR_BUFFER_TOO_LARGE') || err instanceof RangeError) throw readToEnd(bad(`the package payload is not valid gzip: ${(err as Error).message}`), err);
    // node-tar in strict mode throws its warnings (TAR_BAD_ARCHIVE, TAR_ENTRY_INVALID, ...).
    const e = err as { code?: unknown; message?: unknown };
    if (String(e.code ?? '').startsWith('TAR_') || String(e.message ?? '').startsWith('TAR_')) throw readToEnd(bad(`malformed archive: ${String(e.message)}`), err);
    throw err;
  }
  await u.stopThreads();
  try {
    return u.finish(); // the whole package has been read: its refusals wait for the verdict too
  } catch (err) {
    throw readToEnd(err);
  }
}

/**
 * The package's data, read by gunzip through a view that does not end it when gunzip stops early
 * (a refusal held, or the gzip stream over before the data): rest() then reads what is left, so
 * the signature verdict, which comes at the end of the data, is always due once unpack returns.
 */
class Source implements AsyncIterable<Uint8Array> {
  readonly #it: AsyncIterator<Uint8Array>;
  #done = false;

  constructor(data: AsyncIterable<Uint8Array>) {
    this.#it = data[Symbol.asyncIterator]();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return { next: () => this.#next(), return: () => Promise.resolve({ done: true as const, value: undefined }) };
  }

  async #next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#done) return { done: true, value: undefined };
    const r = await this.#it.next();
    if (r.done === true) this.#done = true;
    return r;
  }

  /** Read the data to its end (bounded by the package's own size, or the OpenPGP inflate bound). */
  async rest(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      throwIfAborted(signal);
      if ((await this.#next()).done === true) return;
    }
  }
}

const wholeRead = new WeakSet<object>();

/**
 * Mark a refusal unpack made after reading the whole package (`from`: the error it replaces,
 * marked before): the caller may wait for the signature verdict, which is then due.
 */
function readToEnd(err: unknown, from?: unknown): unknown {
  if (typeof err === 'object' && err !== null && (from === undefined || (typeof from === 'object' && from !== null && wholeRead.has(from)))) wholeRead.add(err);
  return err;
}

/** Whether unpack refused `err` after reading the package to its end (its signature verdict is then due). */
export function wasReadToEnd(err: unknown): boolean {
  return typeof err === 'object' && err !== null && wholeRead.has(err);
}
