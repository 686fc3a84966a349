import { lstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { describeUid, setDirMode } from '../util/trusted-path.js';
import { acquireLock, type LockHandle } from './pid-lock.js';

/** Default directory of root's locks: cleared at boot, so no lock survives a reboot. */
export const DEFAULT_LOCK_DIR = '/run/lock/fussy';

/**
 * Where `fussy lock` keeps a user's locks when no --dir is given: root's in /run/lock/fussy
 * (root's, 0755: anyone may read who holds a lock, nobody else may write), every other user's
 * in /run/lock/fussy-UID (that user's, 0700). /run/lock is writable by all (sticky), so each
 * user gets a directory of their own instead of sharing one that the first user would own.
 * Not $XDG_RUNTIME_DIR: cron jobs have none, and a lock must be the same one for a job started
 * by cron and by hand.
 */
export function defaultLockDir(uid: number = process.geteuid?.() ?? 0): { dir: string; mode: number } {
  return uid === 0 ? { dir: DEFAULT_LOCK_DIR, mode: 0o755 } : { dir: `${DEFAULT_LOCK_DIR}-${uid}`, mode: 0o700 };
}

export interface WithLockOptions {
  /**
   * Where NAME.lock lives (created if missing). It must be trusted (util/trusted-path.ts); it
   * may be shared by several users when it is sticky like /tmp: then a user's lock file is that
   * user's, busy while its holder runs, and a stale one can be removed only by its owner or root.
   */
  dir?: string;
  /** What the holder is doing, for the busy message ("backup"). */
  what?: string;
  now?: Date;
}

/**
 * Run `fn` holding the named lock (Fussy's cronlock, `fussy lock` in docs/commands.md): at most one holder
 * per name; busy is LOCKED (exit 75) at once, naming the holder. The lock dies with its holder
 * (pid + process start time in the lock file, pid-lock.ts): a crashed holder is recognised at
 * once, not after a staleness timeout.
 */
export async function withLock<T>(name: string, opts: WithLockOptions, fn: (lock: LockHandle) => Promise<T>): Promise<T> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    throw new FussyError('USAGE', `lock name "${name}" must be letters, digits, "_", "-" or "." (not starting with "." or "-")`, { hint: 'e.g. fussy lock nightly-backup -- CMD' });
  }
  const uid = process.geteuid?.() ?? 0;
  const what = opts.what ?? name;
  let lock: LockHandle;
  if (opts.dir !== undefined) {
    lock = await acquireLock(join(resolve(opts.dir), `${name}.lock`), what, { now: opts.now, shared: true });
  } else {
    const { dir, mode } = defaultLockDir(uid);
    fixDefaultDir(dir, mode, uid);
    try {
      lock = await acquireLock(join(dir, `${name}.lock`), what, { now: opts.now, dirMode: mode });
    } catch (err) {
      throw defaultDirHint(err, dir, mode, uid);
    }
  }
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

/**
 * The default directory is unambiguously fussy's when the right user owns it: a wrong mode (an
 * older fussy made /run/lock/fussy with the umask's mode; an admin may have opened it to other
 * users) is fixed through a descriptor. A wrong owner is refused by acquireLock.
 */
function fixDefaultDir(dir: string, mode: number, uid: number): void {
  try {
    const st = lstatSync(dir);
    if (st.isDirectory() && st.uid === uid && (st.mode & 0o7777) !== mode) setDirMode(dir, mode, uid);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/** A refusal of the default directory itself says what to do about it. */
function defaultDirHint(err: unknown, dir: string, mode: number, uid: number): unknown {
  if (!(err instanceof FussyError) || err.code !== 'LOCK_UNUSABLE' || err.details?.path !== dir || typeof err.details.owner !== 'number' || err.details.owner === uid) return err;
  const fix = uid === 0
    ? `remove it (rm -r ${dir}): fussy makes it again, owned by root, mode ${mode.toString(8).padStart(4, '0')}`
    : `ask root to remove it (rm -r ${dir}), or pass --dir with a directory of your own`;
  return new FussyError(err.code, `${err.message}; it is the default lock directory of ${describeUid(uid)}, but ${describeUid(err.details.owner)} owns it`, { cause: err, hint: fix, details: err.details });
}
