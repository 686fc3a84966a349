import { randomBytes } from 'node:crypto';
import { linkSync, renameSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { tempBeside, unlinkIfExistsSync, writeNewFile } from '../util/fs-atomic.js';
import { processStart } from '../util/proc.js';
import { describeUid, ensureTrustedDir, type TrustCodes } from '../util/trusted-path.js';
import { readLockFile, type LockFile, type LockOwner } from './lock-file.js';

export { readLockFile, type LockFile, type LockOwner } from './lock-file.js';
export { processStart } from '../util/proc.js';

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

export interface AcquireOptions {
  pid?: number;
  now?: Date;
  /**
   * The lock directory may be shared by several users (sticky and writable by others, like
   * /tmp): a lock file another user owns is then that user's lock, busy while its holder runs;
   * anywhere else a lock file must be root's or the caller's.
   */
  shared?: boolean;
  /** For messages: "lock directory" (default), "state directory". */
  dirWhat?: string;
  /** Codes of the lock directory's refusals (default LOCK_UNUSABLE): the target lock's are the target's. */
  dirCodes?: TrustCodes;
  /** Mode of the lock directory when fussy creates it (default 0755). */
  dirMode?: number;
}

/** The holder still runs: same pid and the same process start time (not a reused pid). */
export function holderAlive(owner: LockOwner): boolean {
  return processStart(owner.pid) === owner.start;
}

const euid = (): number => process.geteuid?.() ?? 0;

const LOCK_CODES: TrustCodes = { untrusted: 'LOCK_UNUSABLE', missing: 'LOCK_UNUSABLE' };

/**
 * A lock that dies with its holder: the lock file names the holder's pid and process start
 * time, and a lock whose holder no longer runs is taken over at once (no minutes-long staleness
 * timeout, and a reused pid is not mistaken for the holder). Taking the lock is link(2) of a
 * fully written temp file onto the lock name, which either succeeds atomically or fails EEXIST.
 * A stale lock is removed by renaming it aside first, so two processes cannot both remove it.
 *
 * Safe against other local users: the directory must be trusted (util/trusted-path.ts; created
 * if missing), temp files have unguessable names and are created O_EXCL|O_NOFOLLOW, and the
 * lock file is only ever read (lock-file.ts: never through a link, never blocking on a FIFO)
 * and renamed or unlinked, never written through.
 */
export async function acquireLock(file: string, what: string, opts: AcquireOptions = {}): Promise<LockHandle> {
  const pid = opts.pid ?? process.pid;
  const start = processStart(pid);
  if (start === undefined) throw new Error(`cannot read /proc/${pid}/stat`);
  const dir = ensureTrustedDir(dirname(file), { what: opts.dirWhat ?? 'lock directory', mode: opts.dirMode ?? 0o755, allowShared: opts.shared === true, codes: opts.dirCodes ?? LOCK_CODES });
  const owner: LockOwner = { pid, start, what: what.slice(0, 256), since: (opts.now ?? new Date()).toISOString() };
  let tmp = newRecord(file, owner);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file);
        return handle(file, owner);
      } catch (err) {
        if (!isErrno(err, 'EEXIST', 'ENOENT')) throw err;
        // ENOENT: the recovery of the target's lock holder swept our record from `.fussy/`.
        if (isErrno(err, 'ENOENT') && attempt < 3) {
          tmp = newRecord(file, owner);
          continue;
        }
      }
      const found = readLockFile(file);
      if (found !== undefined) {
        const foreign = found.uid !== 0 && found.uid !== euid();
        if (foreign && !dir.shared) throw untrustedLockFile(file, found);
        if (found.holder !== undefined && holderAlive(found.holder)) throw busy(file, found.holder, foreign ? found.uid : undefined);
      }
      if (attempt >= 3) throw new FussyError('LOCKED', `${file} keeps changing hands`, { hint: 'try again' });
      if (found !== undefined) removeStale(file, found);
    }
  } finally {
    unlinkIfExistsSync(tmp);
  }
}

/** A lock record under a temp name beside `file`, ready to be linked into place. */
function newRecord(file: string, owner: LockOwner): string {
  const tmp = tempBeside(file, 'lock');
  try {
    writeNewFile(tmp, JSON.stringify(owner) + '\n', 0o644);
  } catch (err) {
    if (!(err instanceof FussyError)) throw err;
    const hint = err.code === 'PERMISSION_DENIED' ? `run fussy as root, or as a user who may write ${dirname(file)}, or use another directory` : err.hint;
    throw new FussyError(err.code, `cannot create lock file ${file}: ${err.message.replace(/.*: /, '')}`, { cause: err, hint, details: { ...err.details, path: dirname(file) } });
  }
  return tmp;
}

function handle(file: string, first: LockOwner): LockHandle {
  let holder = first;
  return {
    file,
    release: async () => releaseLock(file, holder),
    transfer: async (to: number) => {
      const toStart = processStart(to);
      if (toStart === undefined) return; // already gone: the lock stays ours
      const next: LockOwner = { ...holder, pid: to, start: toStart };
      const t = tempBeside(file, 'lock');
      writeNewFile(t, JSON.stringify(next) + '\n', 0o644);
      try {
        renameSync(t, file);
      } catch (err) {
        unlinkSync(t);
        throw err;
      }
      holder = next;
    },
  };
}

function busy(file: string, holder: LockOwner, foreignUid: number | undefined): FussyError {
  const of = foreignUid === undefined ? '' : `, a lock of ${describeUid(foreignUid)}`;
  return new FussyError('LOCKED', `${file} is held by pid ${holder.pid} (${holder.what}, since ${holder.since}${of})`, {
    hint: 'wait for it to finish and try again',
    details: { holder },
  });
}

function untrustedLockFile(file: string, found: LockFile): FussyError {
  return new FussyError('LOCK_UNUSABLE', `lock file ${file} is owned by ${describeUid(found.uid)}, but only root or you may write its directory: someone changed it behind fussy's back`, {
    hint: `remove it (rm ${file}) after checking who made it`,
    details: { path: file, owner: found.uid },
  });
}

function removeStale(file: string, found: LockFile): void {
  // Not a temp name (util/fs-atomic.ts): recovery must never sweep a live holder's record that
  // a concurrent acquirer moved aside for an instant. A crash here leaves a dead record behind.
  const aside = join(dirname(file), `.stale-${basename(file)}-${randomBytes(16).toString('hex')}`);
  try {
    renameSync(file, aside);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // someone else removed it first
    if (isErrno(err, 'EPERM', 'EACCES')) {
      // A sticky shared directory: only the file's owner or root may remove it.
      const dead = found.holder === undefined ? 'an unreadable lock' : `a stale lock of dead pid ${found.holder.pid} (${found.holder.what})`;
      throw new FussyError('PERMISSION_DENIED', `${file} is ${dead} owned by ${describeUid(found.uid)}, which you may not remove`, {
        cause: err,
        hint: `ask ${describeUid(found.uid)} or root to remove ${file}`,
        details: { path: file, owner: found.uid, errno: err.code },
      });
    }
    throw err;
  }
  // Only remove what we moved aside if it is still a dead holder's: a live one may have linked in between.
  let moved: LockFile | undefined;
  try {
    moved = readLockFile(aside);
  } catch (err) {
    // Swapped for something that is not a lock file by its owner: it goes all the same.
    if (!(err instanceof FussyError && (err.code === 'LOCK_UNUSABLE' || err.code === 'PERMISSION_DENIED'))) throw err;
  }
  if (moved?.holder !== undefined && holderAlive(moved.holder)) {
    try {
      linkSync(aside, file);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }
  try {
    unlinkSync(aside);
  } catch (err) {
    if (!isErrno(err, 'EISDIR', 'EPERM')) throw err;
    throw new FussyError('LOCK_UNUSABLE', `${aside} is a directory that replaced lock file ${file}`, { hint: `remove it (rm -r ${aside})`, details: { path: aside } });
  }
}

async function releaseLock(file: string, owner: LockOwner): Promise<void> {
  let current: LockFile | undefined;
  try {
    current = readLockFile(file);
  } catch (err) {
    // Not a lock file any more: not ours to remove.
    if (err instanceof FussyError && (err.code === 'LOCK_UNUSABLE' || err.code === 'PERMISSION_DENIED')) return;
    throw err;
  }
  const h = current?.holder;
  if (h !== undefined && current?.uid === euid() && h.pid === owner.pid && h.start === owner.start) unlinkSync(file);
}
