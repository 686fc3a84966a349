import { readFileSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';

/** Who holds a lock: enough to tell a live holder from a dead one whose pid was reused. */
export interface LockOwner {
  pid: number;
  /** Process start time in clock ticks since boot (/proc/PID/stat field 22). */
  start: string;
  /** What the holder is doing ("install firmware-x.tar.gz.gpg"), for the busy message. */
  what: string;
  since: string;
}

export interface LockHandle {
  file: string;
  release(): Promise<void>;
  /**
   * Make another live process the holder (`fussy lock` hands the lock to the command it runs,
   * so the lock stays held while the command runs even if fussy itself is killed). The lock file
   * is replaced atomically; a checker sees either holder, both alive.
   */
  transfer(pid: number): Promise<void>;
}

/** Start time of a process, or undefined when it does not exist (proc(5): stat field 22). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ESRCH')) return undefined;
    throw err;
  }
}

function alive(owner: LockOwner): boolean {
  return processStart(owner.pid) === owner.start;
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockOwner;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    // A torn or empty lock file comes from a holder that died while writing it.
    if (err instanceof SyntaxError) return { pid: 0, start: '', what: 'unknown (unreadable lock file)', since: '' };
    throw err;
  }
}

/**
 * A lock that dies with its holder: the lock file names the holder's pid and process start
 * time, and a lock whose holder no longer runs is taken over at once (no minutes-long staleness
 * timeout, and a reused pid is not mistaken for the holder). Taking the lock is link(2) of a
 * fully written temp file onto the lock name, which either succeeds atomically or fails EEXIST.
 * A stale lock is removed by renaming it aside first, so two processes cannot both remove it.
 */
export async function acquireLock(file: string, what: string, opts: { pid?: number; now?: Date } = {}): Promise<LockHandle> {
  const pid = opts.pid ?? process.pid;
  const start = processStart(pid);
  if (start === undefined) throw new Error(`cannot read /proc/${pid}/stat`);
  const owner: LockOwner = { pid, start, what, since: (opts.now ?? new Date()).toISOString() };
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(JSON.stringify(owner) + '\n');
  } finally {
    await fh.close();
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, file);
        let holder = owner;
        return {
          file,
          release: () => releaseLock(file, holder),
          transfer: async (to: number) => {
            const toStart = processStart(to);
            if (toStart === undefined) return; // already gone: the lock stays ours
            const next: LockOwner = { ...holder, pid: to, start: toStart };
            const t = `${file}.${to}.${Date.now()}.tmp`;
            await writeFile(t, JSON.stringify(next) + '\n', { mode: 0o644 });
            await rename(t, file);
            holder = next;
          },
        };
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const holder = await readOwner(file);
      if (holder !== undefined && alive(holder)) {
        throw new FussyError('LOCKED', `${file} is held by pid ${holder.pid} (${holder.what}, since ${holder.since})`, {
          hint: 'wait for it to finish and try again',
          details: { holder },
        });
      }
      if (attempt >= 3) throw new FussyError('LOCKED', `${file} keeps changing hands`, { hint: 'try again' });
      await removeStale(file);
    }
  } finally {
    await unlink(tmp).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
  }
}

async function removeStale(file: string): Promise<void> {
  const aside = join(dirname(file), `.stale-${process.pid}-${Date.now()}`);
  try {
    await rename(file, aside);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // someone else removed it first
    throw err;
  }
  // Only remove what we moved aside if it is still a dead holder's: a live one may have linked in between.
  const moved = await readOwner(aside);
  if (moved !== undefined && alive(moved)) {
    await link(aside, file).catch((err: unknown) => {
      if (!isErrno(err, 'EEXIST')) throw err;
    });
  }
  await unlink(aside);
}

async function releaseLock(file: string, owner: LockOwner): Promise<void> {
  const current = await readOwner(file);
  if (current !== undefined && current.pid === owner.pid && current.start === owner.start) await unlink(file);
}
