import type { Owner } from '../store/ownership.js';
import type { Writable } from 'node:stream';
import { cancellable } from './guard.js';

/** Everything a command may touch of the process; main() builds it from the real process. */
export interface Io {
  stdout: Writable;
  stderr: Writable;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  env: Record<string, string | undefined>;
  cwd: string;
  stderrIsTTY: boolean;
  now: () => Date;
  /** Who runs fussy: as root, install keeps archive owners and setuid bits. */
  owner: Owner;
  /**
   * Run an operation that SIGINT/SIGTERM/SIGHUP and the process-wide guard stop through its
   * AbortSignal (guard.ts); it rejects with the guard's error if one was caught meanwhile.
   */
  cancellable: <T>(fn: (signal: AbortSignal) => Promise<T>) => Promise<T>;
}

export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
}

export interface ProgressEvent {
  type: string;
  phase?: string;
  done?: number;
  total?: number;
}

const MB = 1024 * 1024;

/**
 * What a command says while it runs: NDJSON events on stderr with --json, a one-line progress
 * bar on a TTY otherwise, nothing with --quiet. Throttled so a fast stream is not slowed by it.
 */
export class Reporter {
  readonly #io: Io;
  readonly #flags: OutputFlags;
  #lastDraw = 0;
  #barShown = false;

  constructor(io: Io, flags: OutputFlags) {
    this.#io = io;
    this.#flags = flags;
  }

  event(e: ProgressEvent): void {
    const isProgress = e.type === 'progress';
    if (isProgress && !this.#due(e)) return;
    if (this.#flags.json) {
      this.#io.stderr.write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n');
    } else if (!this.#flags.quiet && this.#io.stderrIsTTY && isProgress && e.total !== undefined && e.done !== undefined) {
      const width = 30;
      const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 1;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
      this.#io.stderr.write(`\r${(e.phase ?? '').padEnd(6)} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${(e.done / MB).toFixed(0)}/${(e.total / MB).toFixed(0)} MiB`);
      this.#barShown = true;
    }
  }

  /** A line for humans on stderr (not with --quiet or --json). */
  info(line: string): void {
    this.clearBar();
    if (!this.#flags.quiet && !this.#flags.json) this.#io.stderr.write(line + '\n');
  }

  clearBar(): void {
    if (this.#barShown) {
      this.#io.stderr.write('\r\x1b[K');
      this.#barShown = false;
    }
  }

  #due(e: ProgressEvent): boolean {
    const now = Date.now();
    const last = e.done !== undefined && e.total !== undefined && e.done >= e.total;
    if (!last && now - this.#lastDraw < 200) return false;
    this.#lastDraw = now;
    return true;
  }
}

export { formatBytes } from '../util/format.js';

/** Io for the real process: the only place process.* is read (bin/ calls this). */
export function processIo(): Io {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    stderrIsTTY: process.stderr.isTTY === true,
    now: () => new Date(),
    owner: { asRoot: process.getuid?.() === 0, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    cancellable,
  };
}
