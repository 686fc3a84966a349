/**
 * The one error type users can reach, and the one table that maps its codes to the exit
 * statuses in the README (Fussy's documented codes). Anything that is not a FussyError is a bug
 * and exits 1 with "internal error, please report".
 */

export const EXIT_CODES = {
  // 2: usage errors and generic fussy errors
  USAGE: 2, // a command line (or passphrase source) that cannot be acted on; nothing finer fits
  BAD_SOURCE: 2, // pack / link-tree: the source tree is missing, not a directory, or changed while read
  BAD_OUTPUT: 2, // pack: the output file cannot be written where asked
  KEY_AMBIGUOUS: 2, // a key id or name matches more than one key
  HISTORY_DAMAGED: 2, // the history log fails its hash chain
  LINK_CONFLICT: 2, // link-tree: something else is already at a destination path
  PROVISION_CONFLICT: 2, // provision: the root holds something other than the config declares (a key, a file, firmware, a link); nothing was changed
  VERIFY_FAILED: 2, // verify found files that differ from their manifest
  PACKAGE_UNREADABLE: 2, // the package cannot be opened or read: missing, a directory or device, stdin closed (EACCES: PERMISSION_DENIED)
  RELEASE_NOT_FOUND: 2, // rollback --to / verify NAME: no such release (or no current one to verify)
  ALREADY_CURRENT: 2, // rollback --to names the current release
  NOTHING_TO_ROLL_BACK: 2, // rollback: no release besides the current one
  KEYGEN_FAILED: 2, // keygen: OpenPGP.js refused to make the key (bad --name / --email / --rsa)
  CROSS_DEVICE: 2, // link-tree --hard: source and destination are on different file systems (EXDEV)
  COMMAND_NOT_STARTED: 2, // fussy lock: the command to run could not be started
  PROMPT_INTERRUPTED: 2, // Ctrl-C at the passphrase prompt
  PKI_CA_EXISTS: 2, // pki init: the directory already holds a CA (nothing is changed)
  PKI_DIR_NOT_EMPTY: 2, // pki init: the directory holds something else, or is not a directory
  PKI_BAD_NAME: 2, // pki issue: a name, SAN or serial that is not one safe component, DNS name or IP
  PKI_NAME_TAKEN: 2, // pki issue: the CN has a valid certificate already (--force issues a second one)
  PKI_FILE_EXISTS: 2, // pki issue: the key or certificate file is already in the output directory (--force replaces it)
  PKI_BAD_CSR: 2, // pki issue --csr: the request cannot be read or its signature does not verify
  PKI_NOT_FOUND: 2, // pki revoke: no valid certificate has that CN or serial
  BAD_NAME: 2, // fussyd: a script or data file name that is not one plain path component
  BAD_JOB: 2, // fussyd: a job definition with a missing, unknown or wrong field, or a command outside its release
  BAD_SCHEDULE: 2, // fussyd: a job's schedule that cannot be parsed, names an unknown time zone, or never fires
  NOT_FOUND: 2, // fussyd: no script (or run) by that name or id, no upload begun by that sha256
  TOO_LARGE: 2, // fussyd: a script, data file, request body or upload past its size limit, more bytes than an upload's size, or a job past the most kept
  UPLOAD_OFFSET: 2, // fussyd: an upload's bytes sent from another offset than the bytes it holds
  UPLOAD_CONFLICT: 2, // fussyd: an upload begun with another size than its verified package's
  UPLOAD_INCOMPLETE: 2, // fussyd: an upload checked before all its bytes arrived
  UPLOAD_MISMATCH: 2, // fussyd: the bytes of an upload do not have its sha256 (the upload is removed)
  BAD_REQUEST: 2, // fussyd: a request target, method, query or JSON body the daemon refuses (400)
  ALREADY_EXISTS: 2, // fussyd: a data file of that name exists and overwrite was not asked
  NOT_REGULAR_FILE: 2, // fussyd: the name in the data directory is a symlink, directory or other non-file
  REMOTE_FAILED: 2, // fussy remote: the device answered with an error this client does not know, or an internal one
  // 3 / 4: install outcome after a failure
  INSTALL_FAILED_RECOVERED: 3, // install or rollback failed; the previous release (or failsafe) is back
  INSTALL_FAILED_UNRECOVERED: 4, // install failed and could not be recovered: the device needs attention
  HOOK_FAILED: 3, // a hook exited non-zero, timed out, was killed or could not start; previous release restored
  // 20: package rejected, signature or decryption
  BAD_SIGNATURE: 20, // unsigned, signed by a key outside the keyring, expired, tampered, too few signers
  DECRYPT_FAILED: 20, // encrypted for another device key, or the encryption layer is damaged
  // 21: package rejected, archive content (also refused at pack time: same rule, same code)
  UNSAFE_PATH: 21, // an entry name or link that would leave the release
  BAD_RELEASE_NAME: 21, // not one top-level directory, or a reserved name (current, failsafe, .x)
  BAD_ARCHIVE: 21, // malformed tar, a manifest mismatch, past a bound (entries, sizes)
  DELTA_BASE_MISSING: 21, // a delta package whose left-out files the device does not have (not on any of its bases, or the base was cleaned)
  INCOMPATIBLE: 21, // built for another device type, or below the device's minSequence
  DOWNGRADE: 21, // an older sequence than installed, without --allow-downgrade or a signed rollback mark
  // 40: system setup
  SETUP: 40, // an operating-system refusal fussy has no finer code for (the errno is in the message)
  PERMISSION_DENIED: 40, // EACCES / EPERM / EROFS on something fussy must read, create or change (util/system-error.ts)
  KEYRING_MISSING: 40, // the keyring directory does not exist or is not a directory
  KEYRING_UNTRUSTED: 40, // the keyring, a directory above it or an entry in it can be changed by others, or is not a file
  KEY_UNREADABLE: 40, // a key file or keybox (keyring, signing or recipient key) is damaged or holds no readable key
  KEYRING_EMPTY: 40, // the keyring holds no public key to trust
  POLICY_INVALID: 40, // the keyring's policy file does not parse, or asks for more signers than it trusts
  TARGET_MISSING: 40, // the target does not exist or is not a directory
  TARGET_UNTRUSTED: 40, // the target, its .fussy/ or a directory above them can be changed by others
  LAYOUT_AMBIGUOUS: 40, // the target's current is a directory and failsafe exists too
  JOURNAL_UNREADABLE: 40, // the transaction journal cannot be read or parsed: recovery will not guess
  STATE_UNREADABLE: 40, // the device state file (the recorded sequence) cannot be parsed
  LOCK_UNUSABLE: 40, // a lock directory or lock file fussy may not trust
  LOG_UNUSABLE: 40, // the -l log file cannot be opened, or is a link, directory or FIFO
  PROC_MISSING: 40, // /proc is not mounted
  MOUNT_IN_TREE: 40, // a tree to remove has another file system mounted inside it
  PROGRAM_MISSING: 40, // a program fussy runs (gpg, sync) cannot be started
  KEY_NOT_FOUND: 40, // no key matches the id or name given, or a key file given cannot be read
  KEY_UNUSABLE: 40, // the key cannot do what is asked (not one secret key, cannot sign or encrypt)
  BAD_PASSPHRASE: 40, // a signing key's passphrase is missing or wrong
  GPG_FAILED: 40, // gpg ran and failed (sign, export, list keys)
  PKI_NOT_A_CA: 40, // pki: the CA directory does not exist or does not hold a CA made by fussy pki init
  OPENSSL_FAILED: 40, // openssl ran and failed (pki: req, ca, gencrl)
  NO_SPACE: 40, // ENOSPC / EDQUOT, or not enough room for the release
  CONFIG_INVALID: 40, // fussyd.conf or remote.json: an unknown key or a bad value (file:line named), or the file cannot be read
  TLS_UNUSABLE: 40, // a certificate, key, CA or CRL file cannot be read or parsed (fussyd or fussy remote)
  ROLES_INVALID: 40, // fussyd: the roles file is missing or not {"admin"|"operator"|"viewer": [CN, ...]}
  // 69 / 77: fussy remote (sysexits.h: EX_UNAVAILABLE, EX_NOPERM)
  UNREACHABLE: 69, // fussy remote: the device cannot be reached (refused, timed out, no route, closed mid-answer)
  DEVICE_UNTRUSTED: 69, // fussy remote: the device's certificate does not verify against --ca, or not for the host name
  ROLE_DENIED: 77, // fussyd: the certificate's CN has no role that may do this (403)
  CERT_REFUSED: 77, // fussyd refused the client certificate: at the handshake (no certificate, another CA, expired, revoked) or revoked since
  // 75 / 124: locks
  LOCKED: 75, // the target's or fussy lock's lock is held by a live process
  UPLOAD_BUSY: 75, // fussyd: another request is writing or checking the same upload
  JOB_BUSY: 75, // fussyd: cron run of a job whose run is in progress (its overlap is skip)
  LOCK_TIMEOUT: 124, // fussy lock: the command ran past --timeout
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
