import { access, constants, lstat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { abortError } from '../util/abort.js';
import { neverStarted, runProgram } from '../util/run.js';
import type { HookPhase } from '../events.js';

export interface HookContext {
  target: string;
  /** Release being enabled (absolute path). */
  release: string;
  /** Release that was current before (absolute path), if any. */
  previous?: string;
  recovery: boolean;
  env: Record<string, string | undefined>;
  cwd: string;
  timeoutMs: number;
  onLine: (phase: HookPhase, line: string) => void;
  /** Terminates the hook's process group (SIGTERM, SIGKILL 5 s later): the hook then fails. */
  signal?: AbortSignal;
  /** Run it chrooted here (TargetRunOptions.hookRoot); `target`, `release` and `previous` lie beneath it. */
  root?: string;
}

/** The hooks' file names in a release: `.pre-install`, `.post-install`. */
export const HOOK_FILES: ReadonlySet<string> = new Set((['pre-install', 'post-install'] satisfies HookPhase[]).map((phase) => `.${phase}`));

/**
 * Run `<release>/.<phase>` if the firmware has one, with Fussy's contract: run directly
 * (shebang + exec bit), argv [release path, "False" | "True"], stdin closed, output logged line
 * by line, plus FUSSY_* variables; the whole process group is killed at the timeout.
 * Returns false when there is no such hook; throws HOOK_FAILED when it fails.
 */
export async function runHook(phase: HookPhase, c: HookContext): Promise<boolean> {
  const file = join(c.release, `.${phase}`);
  try {
    await lstat(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  try {
    await access(file, constants.X_OK);
  } catch (err) {
    if (!isErrno(err, 'EACCES')) throw err;
    throw new FussyError('HOOK_FAILED', `${file} is not executable`, { hint: 'hooks need the exec bit and a #! line (chmod 755 in the firmware tree before packing)' });
  }
  // In a root being provisioned, the hook sees the paths the device will see.
  const seen = (p: string): string => (c.root === undefined ? p : `/${relative(c.root, p)}`);
  const env = {
    ...c.env,
    FUSSY_RELEASE: seen(c.release),
    FUSSY_PREVIOUS: c.previous === undefined ? '' : seen(c.previous),
    FUSSY_TARGET: seen(c.target),
    FUSSY_PHASE: phase,
    FUSSY_RECOVERY: c.recovery ? 'True' : 'False',
  };
  const args = [seen(c.release), c.recovery ? 'True' : 'False'];
  const r = await runProgram(c.root === undefined ? file : 'chroot', c.root === undefined ? args : [c.root, seen(file), ...args], {
    env,
    extendEnv: false,
    cwd: c.root ?? c.cwd,
    stdin: 'ignore',
    output: { onLine: (l) => c.onLine(phase, l) },
    group: true,
    timeoutMs: c.timeoutMs,
    signal: c.signal,
  });
  if (r.exitCode === 0 && !r.interrupted) return true;
  const stopped = neverStarted(r) ? 'was not started' : 'was stopped (process group terminated)';
  const why = r.interrupted && c.signal !== undefined ? `${stopped}: ${abortError(c.signal).message}` : r.startError !== undefined ? `could not start: ${r.startError}` : r.timedOut ? `timed out after ${c.timeoutMs / 1000} s (process group killed)` : r.signal !== undefined ? `was killed by ${r.signal}` : `exited ${r.exitCode}`;
  throw new FussyError('HOOK_FAILED', `${phase} hook ${file} ${why}`, { hint: 'see the hook output above' });
}
