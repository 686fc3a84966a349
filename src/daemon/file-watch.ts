import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isErrno } from '../errors.js';

/**
 * Watches settings files (the roles file, the CRL) by polling their stat every `intervalMs`, and
 * calls `onChange` when one differs from what it was when last read: `mark()` is called before
 * each read, so a change made between the daemon's start and its first poll is not missed (with
 * fs.watchFile the first poll sets the baseline, and such a change was lost until a SIGHUP). A
 * stat on the main thread every few seconds costs nothing and never waits for the thread pool.
 * Inode, size, times, and the content's sha256: an editor's rename and an in-place write both
 * show, and so does a same-size rewrite within one tick of the file system's clock (these files
 * are small; one past 4 MiB is compared by its stat alone).
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

const MAX_HASHED = 4n << 20n;

function signature(file: string): string {
  try {
    const st = statSync(file, { bigint: true });
    const head = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    return st.isFile() && st.size <= MAX_HASHED ? `${head}:${createHash('sha256').update(readFileSync(file)).digest('hex')}` : head;
  } catch (err) {
    // Gone or unreadable for now: a change like any other (the reload says what is wrong).
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP')) return `missing ${(err as NodeJS.ErrnoException).code}`;
    throw err;
  }
}
