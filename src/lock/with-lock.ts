import { join } from 'node:path';
import { FussyError } from '../errors.js';
import { acquireLock, type LockHandle } from './pid-lock.js';

/** Default directory for `fussy lock`: cleared at boot, so no lock survives a reboot. */
export const DEFAULT_LOCK_DIR = '/run/lock/fussy';

export interface WithLockOptions {
  /** Where NAME.lock lives (created if missing). */
  dir?: string;
  /** What the holder is doing, for the busy message ("backup"). */
  what?: string;
  now?: Date;
}

/**
 * Run `fn` holding the named lock (Fussy's cronlock, SPEC §4 `fussy lock`): at most one holder
 * per name; busy is LOCKED (exit 75) at once, naming the holder. The lock dies with its holder
 * (pid + process start time in the lock file, pid-lock.ts): a crashed holder is recognised at
 * once, not after a staleness timeout.
 */
export async function withLock<T>(name: string, opts: WithLockOptions, fn: (lock: LockHandle) => Promise<T>): Promise<T> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) {
    throw new FussyError('USAGE', `lock name "${name}" must be letters, digits, "_", "-" or "." (not starting with "." or "-")`, { hint: 'e.g. fussy lock nightly-backup -- CMD' });
  }
  const lock = await acquireLock(join(opts.dir ?? DEFAULT_LOCK_DIR, `${name}.lock`), opts.what ?? name, { now: opts.now });
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}
