/**
 * The exit statuses, by class, as the README's "Exit codes" table and the man pages give them
 * (test/cli/man-pages.test.ts holds the README to this list). Which code maps to which status
 * is src/errors.ts.
 */
export const EXIT_STATUSES: ReadonlyArray<readonly [number, string]> = [
  [0, 'success'],
  [1, 'internal error: a bug, please report it'],
  [2, 'usage error, or a generic error (`verify` found damage, a `link-tree` conflict, a damaged history)'],
  [3, 'install or rollback failed; the previous release (or `failsafe`) was restored'],
  [4, 'install failed and could not be recovered: the device needs attention'],
  [20, 'package refused: signature or decryption'],
  [21, 'package refused: archive content (unsafe path, malformed, wrong name, incompatible, downgrade), or a delta package whose base the device lacks'],
  [40, 'system setup: keys, gpg, disk space, an untrusted directory'],
  [69, '`fussy remote`: the device cannot be reached, its certificate is not trusted, or fussyd stopped mid-run'],
  [75, "busy: another command holds the target's lock, or `fussy lock`'s lock is held; `fussy remote cron run` of a job whose run is in progress"],
  [77, "`fussy remote`: the device denied this certificate's role, or refused the certificate"],
  [124, '`fussy lock`: the command timed out; `fussy remote exec`: the script reached its time limit'],
  [130, 'interrupted (SIGINT, SIGTERM or SIGHUP) before anything changed'],
];
