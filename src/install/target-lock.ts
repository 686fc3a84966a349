import { join } from 'node:path';
import { FussyError } from '../errors.js';
import { sleep, throwIfAborted } from '../util/abort.js';
import { acquireLock, type LockHandle } from '../lock/pid-lock.js';
import { STATE_DIR } from './layout.js';

/**
 * The target's lock (`.fussy/lock`): one install, rollback, clean or recovery at a time. Busy is
 * LOCKED (exit 75) naming the holder, unless `wait`, which retries every half second until
 * `signal` aborts.
 */
export async function lockTarget(target: string, what: string, wait: boolean, now: Date, signal?: AbortSignal): Promise<LockHandle> {
  const file = join(target, STATE_DIR, 'lock');
  for (;;) {
    throwIfAborted(signal);
    try {
      return await acquireLock(file, what, { now });
    } catch (err) {
      if (!(wait && err instanceof FussyError && err.code === 'LOCKED')) throw err;
      await sleep(500, signal);
    }
  }
}
