import { readlink, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { runHook, type HookPhase } from './hooks.js';
import { CURRENT, FAILSAFE, readLayout, swapCurrent } from './layout.js';

export type ActivateEvent =
  | { type: 'hook'; phase: HookPhase; release: string; recovery: boolean; line: string }
  | { type: 'switch'; release: string; recovery: boolean }
  | { type: 'recover'; release: string; reason: string };

export interface ActivateOptions {
  target: string;
  /** The new release (directory name under target). */
  release: string;
  /** What to return to if it fails: the previous release, else failsafe. */
  previous?: string;
  env: Record<string, string | undefined>;
  cwd: string;
  hookTimeoutMs: number;
  emit: (e: ActivateEvent) => void;
}

type Stage = 'pre-install' | 'switch' | 'post-install';

async function currentName(target: string): Promise<string | undefined> {
  try {
    return basename(await readlink(join(target, CURRENT)));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'EINVAL')) return undefined;
    throw err;
  }
}

/**
 * Enable a release the way Fussy did: `.pre-install` → swap `current` → `.post-install`. On
 * failure: pre-install or swap failed → the new release is removed; post-install failed → it is
 * kept for inspection. Then the previous release (else failsafe) is re-enabled with its own
 * hooks in recovery mode ("True"). Decision: a failing recovery pre-install is reported and the
 * swap is still made (Fussy skipped it; the device must end on a release that worked), and the
 * recovery post-install still runs, as in Fussy.
 * Throws INSTALL_FAILED_RECOVERED (exit 3) or INSTALL_FAILED_UNRECOVERED (exit 4) saying
 * exactly what state the device is in.
 */
export async function activate(o: ActivateOptions): Promise<void> {
  const ctx = (release: string, recovery: boolean) => ({
    target: o.target,
    release: join(o.target, release),
    previous: o.previous === undefined ? undefined : join(o.target, o.previous),
    recovery,
    env: o.env,
    cwd: o.cwd,
    timeoutMs: o.hookTimeoutMs,
    onLine: (phase: HookPhase, line: string) => o.emit({ type: 'hook', phase, release, recovery, line }),
  });
  let stage: Stage = 'pre-install';
  try {
    await runHook('pre-install', ctx(o.release, false));
    stage = 'switch';
    await swapCurrent(o.target, o.release);
    o.emit({ type: 'switch', release: o.release, recovery: false });
    stage = 'post-install';
    await runHook('post-install', ctx(o.release, false));
    return;
  } catch (err) {
    const reason = (err as Error).message;
    const switched = (await currentName(o.target)) === o.release;
    if (!switched) await rm(join(o.target, o.release), { recursive: true, force: true });
    const back = o.previous ?? ((await readLayout(o.target)).hasFailsafe ? FAILSAFE : undefined);
    const kept = switched ? `${o.release} is kept for inspection` : `${o.release} was removed`;
    if (back === undefined) {
      if (!switched) {
        throw new FussyError('INSTALL_FAILED_RECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; ${kept}. No release was active before, and none is now.`, { cause: err, hint: 'fix the firmware and install again' });
      }
      throw new FussyError('INSTALL_FAILED_UNRECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; current -> ${o.release}, and there is no previous release or failsafe to return to`, { cause: err, hint: 'the device needs attention: install a working release' });
    }
    o.emit({ type: 'recover', release: back, reason });
    const problems = await recover(back, ctx, o);
    const now = await currentName(o.target);
    if (problems.length === 0 && now === back) {
      throw new FussyError('INSTALL_FAILED_RECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; ${kept}, and ${back} is current again`, { cause: err, hint: 'see the hook output above, fix the firmware, and install again' });
    }
    throw new FussyError('INSTALL_FAILED_UNRECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; ${kept}. Recovery of ${back} also failed (${problems.join('; ')}); current -> ${now ?? '(nothing)'}`, { cause: err, hint: 'the device needs attention: check the hook output above, then fussy rollback or install a working release' });
  }
}

async function recover(back: string, ctx: (release: string, recovery: boolean) => Parameters<typeof runHook>[1], o: ActivateOptions): Promise<string[]> {
  const problems: string[] = [];
  try {
    await runHook('pre-install', ctx(back, true));
  } catch (err) {
    // As in Fussy, a failing recovery pre-install is reported but does not stop the recovery.
    o.emit({ type: 'recover', release: back, reason: `recovery pre-install failed, continuing: ${(err as Error).message}` });
  }
  try {
    await swapCurrent(o.target, back);
    o.emit({ type: 'switch', release: back, recovery: true });
  } catch (err) {
    problems.push(`switch back: ${(err as Error).message}`);
  }
  try {
    await runHook('post-install', ctx(back, true));
  } catch (err) {
    problems.push(`recovery post-install: ${(err as Error).message}`);
  }
  return problems;
}
