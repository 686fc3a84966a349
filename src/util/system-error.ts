import { FussyError, isErrno } from '../errors.js';

/**
 * The one rule for permission problems (issue 11): an EACCES, EPERM or EROFS from the operating
 * system is a setup problem of the caller (not root, a read-only mount), never a bug, never damage
 * and never a finer refusal (an untrusted directory, a missing file). It is PERMISSION_DENIED
 * (exit 40, every command: docs/commands.md) naming the path the system refused, with what to do.
 * Modules that know what the path is for build the error with permissionDenied; whatever leaves an
 * operation raw is converted by permissionProblem where it leaves the library (src/index.ts) and
 * where the CLI renders.
 */

/** EACCES, EPERM or EROFS. */
export function isPermissionError(err: unknown): err is NodeJS.ErrnoException & { code: 'EACCES' | 'EPERM' | 'EROFS' } {
  return isErrno(err, 'EACCES', 'EPERM', 'EROFS');
}

export interface PermissionContext {
  /** The path to name (default: the one in the errno). */
  path?: string;
  /** What fussy needs of it, for the hint. Default "write". */
  need?: 'read' | 'write';
  /** A hint that knows better than the default one. */
  hint?: string;
}

function hintFor(err: NodeJS.ErrnoException, where: string, need: 'read' | 'write'): string {
  if (err.code === 'EROFS') return `remount the file system of ${where} read-write, or pass -t DIR on a writable one`;
  return `run fussy as root (it ${need === 'read' ? 'reads' : 'changes'} root-owned files), or make ${where} ${need === 'read' ? 'readable' : 'writable'} by this user`;
}

/** PERMISSION_DENIED with `message`, the errno as `cause` and in `details` (path, errno, syscall). */
export function permissionDenied(err: NodeJS.ErrnoException, message: string, c: PermissionContext = {}): FussyError {
  const where = c.path ?? err.path ?? err.syscall ?? 'a file';
  return new FussyError('PERMISSION_DENIED', message, {
    cause: err,
    hint: c.hint ?? hintFor(err, where, c.need ?? 'write'),
    details: { path: c.path ?? err.path, errno: err.code, syscall: err.syscall },
  });
}

/** `err` as PERMISSION_DENIED when it is a permission problem (isPermissionError); anything else as it is. */
export function permissionProblem(err: unknown): unknown {
  if (!isPermissionError(err)) return err;
  const where = err.path ?? err.syscall ?? 'a file';
  const message = err.code === 'EROFS' ? `${where} is on a read-only file system` : `permission denied: ${where} (${err.syscall ?? 'access'})`;
  return permissionDenied(err, message);
}

/** `p`, with a permission problem turned into PERMISSION_DENIED (permissionProblem). */
export async function withPermissionProblems<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw permissionProblem(err);
  }
}
