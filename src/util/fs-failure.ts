import { FussyError, isSystemError } from '../errors.js';
import { isPermissionError, permissionDenied } from './system-error.js';

const HINTS: Record<string, string> = {
  EACCES: 'permission denied: run fussy as root (release directories hold files only their owners may read)',
  EPERM: 'operation not permitted: run fussy as root',
  EIO: 'the storage reported an I/O error: check the device (dmesg) and the file system (fsck)',
  EROFS: 'the file system is read-only: remount it read-write first',
  EAGAIN: "the file's owner holds a lease on it (fcntl F_SETLEASE): try again once it is released",
};

/**
 * What an operating-system error met while reading or changing `path` means to the user: a
 * FussyError naming the path and the errno (PERMISSION_DENIED for EACCES, EPERM and EROFS,
 * NO_SPACE, else SETUP), with a hint, and the original as `cause`. Callers turn the errnos they
 * expect (ENOENT: gone, ELOOP: a symlink now) into findings themselves and pass everything else here, so EACCES or EIO is never reported as damage. Not a system error: a
 * bug, returned as it is.
 */
export function fsFailure(err: unknown, path: string, doing: string): unknown {
  if (!isSystemError(err) || err instanceof FussyError) return err;
  const code = err.code ?? 'unknown error';
  if (isPermissionError(err)) return permissionDenied(err, `cannot ${doing} ${path}: ${code}`, { path, hint: HINTS[code] });
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new FussyError('NO_SPACE', `cannot ${doing} ${path}: ${code}`, { cause: err, hint: 'free some space on that file system', details: { path, errno: code } });
  }
  return new FussyError('SETUP', `cannot ${doing} ${path}: ${code}`, {
    cause: err,
    hint: HINTS[code] ?? `the operating system refused it (${code}: ${err.message})`,
    details: { path, errno: code },
  });
}
