import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { FussyError, isErrno } from '../errors.js';
import { FILE_NOFOLLOW, walkBeneath } from './dir-fd.js';
import { runQuiet } from './run.js';

/**
 * Make a freshly written tree durable before it is renamed into place. One syncfs(2) through
 * `sync -f` (coreutils >= 8.24) costs one process start; fsync of each of thousands of files
 * costs ~0.5 ms each (PERF-NOTES). Falls back to fsync of every file and directory.
 */
export async function syncFilesystem(dir: string): Promise<void> {
  try {
    if ((await runQuiet('sync', ['-f', dir])) === 0) return;
  } catch (err) {
    // No `sync` program (a minimal image): the fallback below does the same job.
    if (!(err instanceof FussyError && err.code === 'SETUP')) throw err;
  }
  fsyncTree(dir);
}

/**
 * A small shell that runs `sync -f` whenever asked, started once while the process is small:
 * during an unpack it flushes what has been written so far in the background (the disk works
 * while fussy parses), so the final sync before the rename only has the tail left. Starting a
 * `sync` from node itself each time would fork the whole node process on the main thread.
 * Best effort: if the shell is missing or fails, the caller falls back to syncFilesystem().
 */
export class SyncHelper {
  readonly #child: ChildProcess | undefined;
  readonly #waiting: Array<(ok: boolean) => void> = [];
  #dead = false;
  #inFlight: Promise<boolean> | undefined;
  #due = 0;

  constructor(dir: string) {
    let child: ChildProcess | undefined;
    try {
      child = spawn('sh', ['-c', 'while read -r _; do if sync -f .; then echo ok; else echo fail; fi; done'], { cwd: dir, stdio: ['pipe', 'pipe', 'ignore'] });
    } catch {
      child = undefined;
    }
    this.#child = child;
    if (child === undefined) {
      this.#dead = true;
      return;
    }
    const die = (): void => {
      this.#dead = true;
      for (const w of this.#waiting.splice(0)) w(false);
    };
    child.on('error', die);
    child.on('exit', die);
    child.stdin?.on('error', die);
    if (child.stdout !== null) createInterface({ input: child.stdout }).on('line', (line) => this.#waiting.shift()?.(line === 'ok'));
  }

  /** Note bytes written; every `every` bytes a background sync starts unless one is running. */
  wrote(bytes: number, every = 32 * 1024 * 1024): void {
    this.#due += bytes;
    if (this.#due < every || this.#inFlight !== undefined || this.#dead) return;
    this.#due = 0;
    this.#inFlight = this.#request().finally(() => (this.#inFlight = undefined));
  }

  /** A complete sync from now: true when it succeeded. */
  async sync(): Promise<boolean> {
    await this.#inFlight;
    return this.#dead ? false : this.#request();
  }

  close(): void {
    this.#child?.stdin?.end();
  }

  #request(): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#dead || this.#child?.stdin == null) return resolve(false);
      this.#waiting.push(resolve);
      this.#child.stdin.write('\n');
    });
  }
}

/**
 * The staging tree may already hold directories handed to service users (finalize-dirs.ts): walk
 * it by descriptor, never through a symlink, and open files O_NOFOLLOW|O_NONBLOCK (a FIFO a user
 * put there must not stall the install).
 */
function fsyncTree(dir: string): void {
  walkBeneath(dir, (_rel, st, path) => {
    if (st.isFile() || st.isDirectory()) fsyncPath(path);
  }, { maxDepth: 256 }); // deeper than any archive may be (archive/entry-path.ts MAX_DEPTH)
  fsyncPath(dir);
}

function fsyncPath(p: string): void {
  let fd: number;
  try {
    fd = openSync(p, FILE_NOFOLLOW);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ELOOP')) return; // replaced meanwhile: not part of the release
    throw err;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
