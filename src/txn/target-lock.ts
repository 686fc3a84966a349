import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError } from '../errors.js';
import { sleep, throwIfAborted } from '../util/abort.js';
import { acquireLock, type LockHandle } from '../lock/pid-lock.js';
import { checkTrustedPath, ensureTrustedDir, type TrustCodes } from '../util/trusted-path.js';
import { STATE_DIR } from '../store/layout.js';

/** The target, `.fussy/` and the directories above them: refusals name the target (exit 40). */
const TARGET_CODES: TrustCodes = { untrusted: 'TARGET_UNTRUSTED', missing: 'TARGET_MISSING' };

/**
 * The target and its state dir, checked before fussy changes anything in them: as root fussy
 * renames, hard-links and deletes in the target and writes the journal, history and staging in
 * `.fussy/`, so a user who could write either (or any directory above them, through symlinks
 * too) could redirect all of that (util/trusted-path.ts). `.fussy/` is created 0755 when missing.
 * Returns the state dir's path.
 */
export function trustedStateDir(target: string): string {
  checkTarget(target);
  const stateDir = join(target, STATE_DIR);
  ensureTrustedDir(stateDir, { what: 'state directory', mode: 0o755, codes: TARGET_CODES });
  return stateDir;
}

/** The same check for commands that only read (status): nothing is created. */
export function checkStateDirForReading(target: string): void {
  checkTarget(target);
  const stateDir = join(target, STATE_DIR);
  if (existsSync(stateDir)) checkTrustedPath(stateDir, { what: 'state directory', codes: TARGET_CODES });
}

function checkTarget(target: string): void {
  const t = checkTrustedPath(target, { what: 'target', codes: TARGET_CODES, missingHint: 'create it (mkdir -p), or pass -t DIR' });
  if (!t.stats.isDirectory()) throw new FussyError('TARGET_MISSING', `target ${target} is not a directory`, { hint: 'pass -t DIR' });
}

/**
 * The target's lock (`.fussy/lock`): one install, rollback, clean or recovery at a time. Busy is
 * LOCKED (exit 75) naming the holder, unless `wait`, which retries every half second until
 * `signal` aborts; `onWait` hears once, when the wait starts, who holds the lock (issue 11: a
 * silent --wait looks hung).
 */
export async function lockTarget(target: string, what: string, wait: boolean, now: Date, signal?: AbortSignal, onWait?: (message: string) => void): Promise<LockHandle> {
  const file = join(trustedStateDir(target), 'lock');
  for (let waited = false; ; waited = true) {
    throwIfAborted(signal);
    try {
      return await acquireLock(file, what, { now, dirWhat: 'state directory', dirCodes: TARGET_CODES });
    } catch (err) {
      if (!(wait && err instanceof FussyError && err.code === 'LOCKED')) throw err;
      if (!waited) onWait?.(`waiting for the lock: ${err.message}`);
      await sleep(500, signal);
    }
  }
}
