import { closeSync, constants as FS, fstatSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import { isErrno } from '../errors.js';
import { startHelper, type Running } from './run.js';

/** Reads directories, one a line, and answers each with ok or fail. */
const SYNC_LOOP = 'while IFS= read -r d; do if sync -f "$d"; then echo ok; else echo fail; fi; done';

/**
 * A small shell that runs `sync -f DIR` whenever asked: started by the first install of a
 * process, while the process is small, and kept for the process's life (a daemon installs many
 * times; a shell per install cost ~20 ms, the fork on the main thread). Starting a `sync` from
 * node itself each time would fork the whole node process on the main thread. It is started with
 * node's own spawn (run.ts startHelper: execa is not loaded for it), and requests are answered
 * in order. While none is waiting the shell keeps nothing alive, and it ends
 * with the process (its stdin closes). If it cannot start or dies (a Ctrl-C reaches the whole
 * process group), requests say false, and the next install starts another.
 */
class SyncShell {
  static #current: SyncShell | undefined;
  readonly #running: Running;
  readonly #waiting: Array<(ok: boolean) => void> = [];
  dead = false;

  static get(): SyncShell {
    if (SyncShell.#current === undefined || SyncShell.#current.dead) SyncShell.#current = new SyncShell();
    return SyncShell.#current;
  }

  private constructor() {
    const running = startHelper('sh', ['-c', SYNC_LOOP], (line) => this.#answer(line === 'ok'));
    this.#running = running;
    void running.result.then(() => this.#die());
    if (running.stdin === undefined) {
      this.#die();
      return;
    }
    running.stdin.on('error', () => this.#die());
    running.unref();
  }

  #die(): void {
    this.dead = true;
    for (const w of this.#waiting.splice(0)) w(false);
  }

  get pid(): number | undefined {
    return this.#running.pid;
  }

  /** syncfs(2) of the file system holding `dir` (an absolute path fussy trusts); false if it failed. */
  request(dir: string): Promise<boolean> {
    return new Promise((resolve) => {
      const stdin = this.#running.stdin;
      if (this.dead || stdin === undefined || dir.includes('\n')) return resolve(false);
      this.#waiting.push(resolve);
      if (this.#waiting.length === 1) this.#running.ref();
      stdin.write(`${dir}\n`);
    });
  }

  #answer(ok: boolean): void {
    this.#waiting.shift()?.(ok);
    // Keep the process alive while an answer is due, and only then.
    if (this.#waiting.length === 0) this.#running.unref();
  }
}

/** Background syncs asked of the shell at once: one running, one waiting in its input. */
const QUEUED = 2;
/** A background sync per this many bytes written. */
const EVERY = 32 << 20;

/**
 * One install's use of the sync shell: during an unpack it flushes what has been written so far
 * in the background (the disk works while fussy parses), so the final sync before the rename
 * only has the tail left. One syncfs(2) through `sync -f` (coreutils >= 8.24) where fsync of each
 * of thousands of files costs ~0.5 ms each on the bench VM. Best effort: if the shell is missing
 * or a sync fails, sync() says false and the caller fsyncs every file and directory (fsyncTree).
 */
export class SyncHelper {
  readonly #shell = SyncShell.get();
  /** The latest request (the shell answers in order: when it is answered, all are). */
  #last: Promise<boolean> | undefined;
  /** Requests not yet answered (at most QUEUED). */
  #queued = 0;
  #due = 0;
  /** Data came due while QUEUED syncs were waiting: another starts when one ends. */
  #again = false;
  /** A background sync failed: an error syncfs reported to it is not reported again to the next. */
  #lost = false;
  #started = 0;
  #closed = false;

  /** `dir`: an absolute directory on the file system the install writes to. */
  constructor(readonly dir: string) {}

  /** Background syncs started so far (tests). */
  get started(): number {
    return this.#started;
  }

  /** The shell's pid (tests: one shell serves every install of a process). */
  get shellPid(): number | undefined {
    return this.#shell.pid;
  }

  /** Note bytes written; every `every` bytes a background sync starts, or follows the ones queued (kick). */
  wrote(bytes: number, every = EVERY): void {
    this.#due += bytes;
    if (this.#due >= every) this.kick();
  }

  /**
   * Start a background sync now for what was written since the last. One runs while the next
   * waits in the shell's input, so the disk is never left idle with data due, even while the main
   * thread copies without a break (it cannot hear an answer then, but its requests are written
   * at once); past that, the next starts as soon as one ends (at the end of the data, the last of
   * it is flushed while the install finishes its checks).
   */
  kick(): void {
    if (this.#due === 0 || this.#shell.dead || this.#closed) return;
    if (this.#queued >= QUEUED) {
      this.#again = true;
      return;
    }
    this.#due = 0;
    this.#started++;
    this.#queued++;
    this.#last = this.#shell.request(this.dir).then((ok) => {
      this.#lost ||= !ok;
      return ok;
    });
    void this.#last.finally(() => {
      this.#queued--;
      if (!this.#again) return;
      this.#again = false;
      this.kick();
    });
  }

  /**
   * A complete sync from now: true when it and every background sync succeeded. False when any
   * failed: since Linux 5.8 syncfs reports a write-back error (EIO) once, to the first call that
   * sees it, so a final `sync -f` after a failed background one may say ok with data lost; the
   * caller then fsyncs every file (fsyncTree), which reports an error its file has not reported.
   */
  async sync(): Promise<boolean> {
    this.#again = false; // this one covers it
    await this.#last;
    if (this.#closed) return false;
    const ok = await this.#shell.request(this.dir);
    return ok && !this.#lost;
  }

  /** No more background syncs for this install (the shell stays for the next one). */
  close(): void {
    this.#closed = true;
  }
}

/** Deeper than any tree a package can hold (a path is at most 4096 bytes): a walk stops there. */
const MAX_DEPTH = 2048;

/**
 * fsync every file and directory under `dir` without following a symlink or opening a FIFO a
 * user may have swapped in during the walk (firmware may ship directories owned by service
 * users): each entry is opened relative to its parent's descriptor (/proc/self/fd/N/NAME: the
 * kernel's openat) with O_NOFOLLOW|O_NONBLOCK, and only what fstat calls a file or directory
 * is synced.
 */
export function fsyncTree(dir: string): void {
  const fd = openSync(dir, FS.O_RDONLY | FS.O_DIRECTORY);
  try {
    fsyncDirFd(fd, 0);
  } finally {
    closeSync(fd);
  }
}

function fsyncDirFd(fd: number, depth: number): void {
  const base = `/proc/self/fd/${fd}`;
  for (const e of readdirSync(base, { withFileTypes: true })) {
    if (!e.isDirectory() && !e.isFile()) continue;
    if (e.isDirectory() && depth >= MAX_DEPTH) continue;
    const child = openEntry(`${base}/${e.name}`, e.isDirectory());
    if (child === undefined) continue;
    try {
      const st = fstatSync(child);
      if (st.isDirectory()) fsyncDirFd(child, depth + 1);
      else if (st.isFile()) fsyncSync(child);
    } finally {
      closeSync(child);
    }
  }
  fsyncSync(fd);
}

/** The entry's descriptor, or undefined when it was removed or replaced by a link meanwhile. */
function openEntry(path: string, dir: boolean): number | undefined {
  try {
    return openSync(path, FS.O_RDONLY | FS.O_NOFOLLOW | FS.O_NONBLOCK | FS.O_NOCTTY | (dir ? FS.O_DIRECTORY : 0));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ELOOP', 'ENOTDIR')) return undefined;
    throw err;
  }
}
