import { FussyError, isErrno } from '../errors.js';

/**
 * The one rule for permission problems (issue 11): an EACCES, EPERM or EROFS from the operating
 * system is a setup problem of the caller (not root, a read-only mount), never a bug. It becomes
 * PERMISSION_DENIED (exit 40) naming the path the system refused, with what to do; anything else is returned as it is.
 * Applied where an operation's error leaves the library (src/index.ts) and where the CLI renders.
 */
export function permissionProblem(err: unknown): unknown {
  if (!isErrno(err, 'EACCES', 'EPERM', 'EROFS')) return err;
  const where = err.path ?? err.syscall ?? 'a file';
  const details = { path: err.path, errno: err.code, syscall: err.syscall };
  if (err.code === 'EROFS') {
    return new FussyError('PERMISSION_DENIED', `${where} is on a read-only file system`, { cause: err, details, hint: `remount it read-write, or pass -t DIR on a writable file system` });
  }
  return new FussyError('PERMISSION_DENIED', `permission denied: ${where} (${err.syscall ?? 'access'})`, {
    cause: err,
    details,
    hint: `run fussy as root (it changes root-owned files), or make ${where} writable by this user`,
  });
}

/** `p`, with a permission problem turned into PERMISSION_DENIED (permissionProblem). */
export async function withPermissionProblems<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw permissionProblem(err);
  }
}
