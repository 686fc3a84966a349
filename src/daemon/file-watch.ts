import { createHash } from 'node:crypto';
import { isSystemError } from '../errors.js';
import { readSmallFile } from '../util/read-small-file.js';
import { SETTING_MAX } from './read-setting-file.js';

/**
 * Watches settings files (the roles file, the CRL) by polling their stat every `intervalMs`, and
 * calls `onChange` when one differs from what it was when last read: `mark()` is called before
 * each read, so a change made between the daemon's start and its first poll is not missed (with
 * fs.watchFile the first poll sets the baseline, and such a change was lost until a SIGHUP).
 * What is compared is the file's inode and content sha256, read the way the reload reads it (a
 * synchronous read of a small file every few seconds never waits for the thread pool): an
 * editor's rename, an in-place write and a same-size rewrite within one tick of the file
 * system's clock all show; a file that becomes a FIFO or a symlink never blocks the poll, it is
 * a change the reload refuses.
 */
export class ChangeWatch {
  readonly #seen = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly files: string[],
    private readonly onChange: (file: string) => void,
  ) {}

  /** Record what `file` is now: call before reading it. */
  mark(file: string): void {
    this.#seen.set(file, signature(file));
  }

  start(intervalMs: number): void {
    for (const f of this.files) if (!this.#seen.has(f)) this.mark(f);
    this.#timer = setInterval(() => this.poll(), intervalMs);
    this.#timer.unref();
  }

  /** Compare every file with what was last read; `onChange` for each that differs. */
  poll(): void {
    for (const f of this.files) if (signature(f) !== this.#seen.get(f)) this.onChange(f);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** What the file holds as fussyd reads settings files (read-setting-file.ts: no symlink, no FIFO, at most 1 MiB), or why it cannot be read. */
function signature(file: string): string {
  let r: ReturnType<typeof readSmallFile>;
  try {
    r = readSmallFile(file, SETTING_MAX);
  } catch (err) {
    // Unreadable for now (EACCES, EIO): a change like any other; the reload says what is wrong.
    if (isSystemError(err)) return `unreadable ${err.code}`;
    throw err;
  }
  if (r === undefined) return 'missing';
  if ('problem' in r) return `problem ${r.problem}`;
  // The inode too: a file replaced by another (an editor's rename) is a change even with the same bytes.
  return `${r.st.dev}:${r.st.ino}:${createHash('sha256').update(r.data).digest('hex')}`;
}
