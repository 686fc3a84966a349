/**
 * The one error type users can reach, and the one table that maps its codes to the exit
 * statuses in the README (Fussy's documented codes). Anything that is not a FussyError is a bug
 * and exits 1 with "internal error, please report".
 */

export const EXIT_CODES = {
  // 2: usage errors and generic fussy errors
  USAGE: 2,
  BAD_SOURCE: 2,
  BAD_OUTPUT: 2,
  KEY_AMBIGUOUS: 2,
  HISTORY_DAMAGED: 2,
  LINK_CONFLICT: 2,
  VERIFY_FAILED: 2,
  // 3 / 4: install outcome after a failure
  INSTALL_FAILED_RECOVERED: 3,
  INSTALL_FAILED_UNRECOVERED: 4,
  HOOK_FAILED: 3,
  // 20: package rejected, signature or decryption
  BAD_SIGNATURE: 20,
  DECRYPT_FAILED: 20,
  // 21: package rejected, archive content (also refused at pack time: same rule, same code)
  UNSAFE_PATH: 21,
  BAD_RELEASE_NAME: 21,
  BAD_ARCHIVE: 21,
  INCOMPATIBLE: 21,
  DOWNGRADE: 21,
  // 40: system setup
  SETUP: 40,
  KEY_NOT_FOUND: 40,
  KEY_UNUSABLE: 40,
  BAD_PASSPHRASE: 40,
  GPG_MISSING: 40,
  GPG_FAILED: 40,
  NO_SPACE: 40,
  // 75 / 124: locks
  LOCKED: 75,
  LOCK_TIMEOUT: 124,
  // 130: stopped by SIGINT, SIGTERM or SIGHUP before anything changed (128 + SIGINT, what a
  // shell reports for Ctrl-C); one status whatever the signal, so scripts test one number
  INTERRUPTED: 130,
} as const;

export type ErrorCode = keyof typeof EXIT_CODES;

export interface FussyErrorOptions {
  /** What the user should do about it. */
  hint?: string;
  cause?: unknown;
  /** Machine-readable extras for --json output (candidates, paths, ...). */
  details?: Record<string, unknown>;
}

export class FussyError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: FussyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FussyError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

export const INTERNAL_ERROR_EXIT = 1;

export function exitCodeOf(err: unknown): number {
  return err instanceof FussyError ? err.exitCode : INTERNAL_ERROR_EXIT;
}

/** True when `err` is a Node system error with the given errno code (ENOENT, EEXIST, ...). */
/** A thread could not be started (resource limits): callers that can do without one go on without. */
export function cannotStartThread(err: unknown): boolean {
  return isErrno(err, 'ERR_WORKER_INIT_FAILED', 'ERR_WORKER_OUT_OF_MEMORY', 'EAGAIN', 'ENOMEM');
}

/** An error from the operating system (it has an errno code such as ENOENT), not a bug in fussy. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return typeof err === 'object' && err !== null && typeof (err as NodeJS.ErrnoException).errno === 'number' && typeof (err as NodeJS.ErrnoException).code === 'string';
}

export function isErrno(err: unknown, ...codes: string[]): err is NodeJS.ErrnoException {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as NodeJS.ErrnoException).code === 'string' &&
    codes.includes((err as NodeJS.ErrnoException).code as string)
  );
}
