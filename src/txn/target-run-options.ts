import type { OnEvent } from '../events.js';

/**
 * What every operation on a target passes down (install, rollback, clean, recover, verify
 * --repair, and through them withTarget, recovery and activate): each operation's options extend
 * it, and each layer takes the fields it uses (`Pick`), so a field is declared once. index.ts
 * fills in the defaults (the process's environment and directory, 600 s for a hook).
 */
export interface TargetRunOptions {
  /** Environment of the hooks (fussy adds FUSSY_*). */
  env: Record<string, string | undefined>;
  /** Working directory of the hooks. */
  cwd: string;
  /** Each hook's time limit; its process group is killed then. */
  hookTimeoutMs: number;
  /** Wait for the target's lock instead of failing with LOCKED. */
  wait?: boolean;
  /** The caller's clock (a daemon's, a test's): the lock, the journal, the history; default: now. */
  now?: Date;
  onEvent?: OnEvent;
  /**
   * Stops a wait for the lock, and the operation where it safely can (each operation says
   * where); recovery of an interrupted transaction always runs to its end.
   */
  signal?: AbortSignal;
  /**
   * Run the hooks chrooted into this directory, with the paths they are given spelled inside it:
   * provisioning an image root (fussy provision), whose firmware's hooks must act on the image,
   * never on the build host. Needs root (chroot(2)).
   */
  hookRoot?: string;
  /** Testing only: SIGKILL this process at a named step (util/failpoint.ts). */
  failpoint?: string;
}
