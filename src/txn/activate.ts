import { join } from 'node:path';
import { FussyError } from '../errors.js';
import { noEvents, type HookPhase } from '../events.js';
import { abortedWith, throwIfAborted } from '../util/abort.js';
import { NO_FAILPOINTS, type Failpoints } from '../util/failpoint.js';
import { runHook, type HookContext } from './hooks.js';
import type { JournalStep } from './journal.js';
import type { TargetRunOptions } from './target-run-options.js';
import { currentName, discardRelease, FAILSAFE, readLayout, swapCurrent } from '../store/layout.js';

export interface ActivateOptions extends Pick<TargetRunOptions, 'env' | 'cwd' | 'hookTimeoutMs' | 'onEvent' | 'signal' | 'hookRoot'> {
  target: string;
  /** The new release (directory name under target). */
  release: string;
  /** What to return to if it fails: the previous release, else failsafe. */
  previous?: string;
  /** Whether a failure before the switch removes `release` (an install) or leaves it (a rollback). */
  created?: boolean;
  /** Resume an interrupted activation after its switch: only `.post-install` is left to run. */
  from?: 'pre-install' | 'post-install';
  /** Made durable before each step it names (journal.ts); recovery reads it after a crash. */
  journal?: (step: JournalStep, extra?: { back?: string; keepRelease?: boolean }) => Promise<void>;
  failpoints?: Failpoints;
}

type Stage = 'pre-install' | 'switch' | 'post-install';

export type HookContexts = (release: string, recovery: boolean) => HookContext;

/** The hook context for `release` (FUSSY_* variables, timeout, output to events). */
export function hookContexts(o: Pick<ActivateOptions, 'target' | 'previous' | 'env' | 'cwd' | 'hookTimeoutMs' | 'onEvent' | 'signal' | 'hookRoot'>): HookContexts {
  const emit = o.onEvent ?? noEvents;
  return (release, recovery) => ({
    target: o.target,
    release: join(o.target, release),
    previous: o.previous === undefined ? undefined : join(o.target, o.previous),
    recovery,
    env: o.env,
    cwd: o.cwd,
    timeoutMs: o.hookTimeoutMs,
    onLine: (phase: HookPhase, line: string) => emit({ type: 'hook', phase, release, recovery, line }),
    signal: recovery ? undefined : o.signal,
    root: o.hookRoot,
  });
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
 * Interruption (`signal`): before the release's pre-install starts nothing of it ran, so it is a
 * refusal (an install's new release is removed; throws the abort error). While its pre-install
 * runs, the hook's process group is terminated, the switch is not made, and the failure path
 * re-enables the previous release. Once `current` is switched the operation completes: the
 * post-install runs to its end (a daemon shutting down or an upload cut after the switch must not
 * undo a release that is already current). Recovery hooks never get the signal either.
 */
export async function activate(o: ActivateOptions): Promise<void> {
  const emit = o.onEvent ?? noEvents;
  const ctx = hookContexts(o);
  const journal = o.journal ?? (async () => {});
  const fp = o.failpoints ?? NO_FAILPOINTS;
  const created = o.created !== false;
  let stage: Stage = o.from === 'post-install' ? 'post-install' : 'pre-install';
  let refused = false;
  try {
    if (stage === 'pre-install') {
      await journal('pre-install');
      // Nothing of the release has run yet: an interruption up to here refuses it, no hooks run.
      const stop = abortedWith(o.signal);
      if (stop !== undefined) {
        refused = true;
        throw stop;
      }
      fp.at('before-pre-install');
      await runHook('pre-install', ctx(o.release, false));
      fp.at('after-pre-install');
      throwIfAborted(o.signal); // not switched yet: not worth switching only to switch back
      stage = 'switch';
      await swapCurrent(o.target, o.release);
      fp.at('after-switch');
      await journal('switched');
      emit({ type: 'switch', release: o.release, recovery: false });
      stage = 'post-install';
    }
    await runHook('post-install', { ...ctx(o.release, false), signal: undefined }); // switched: it completes
    fp.at('after-post-install');
    return;
  } catch (err) {
    if (refused) {
      if (created) await discardRelease(o.target, o.release);
      throw err;
    }
    const reason = (err as Error).message;
    const switched = (await currentName(o.target)) === o.release;
    const back = o.previous ?? ((await readLayout(o.target)).hasFailsafe ? FAILSAFE : undefined);
    const keep = switched || !created;
    await journal('recovering', { back, keepRelease: keep });
    if (!keep) await discardRelease(o.target, o.release);
    const kept = keep ? `${o.release} is kept${created ? ' for inspection' : ''}` : `${o.release} was removed`;
    if (back === undefined) {
      if (!switched) {
        throw new FussyError('INSTALL_FAILED_RECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; ${kept}. No release was active before, and none is now.`, { cause: err, hint: 'fix the firmware and install again' });
      }
      throw new FussyError('INSTALL_FAILED_UNRECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; current -> ${o.release}, and there is no previous release or failsafe to return to`, { cause: err, hint: 'the device needs attention: install a working release' });
    }
    emit({ type: 'recover', release: back, reason });
    const problems = await reenable(back, ctx, o);
    const now = await currentName(o.target);
    if (problems.length === 0 && now === back) {
      throw new FussyError('INSTALL_FAILED_RECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; ${kept}, and ${back} is current again`, { cause: err, hint: 'see the hook output above, fix the firmware, and install again' });
    }
    throw new FussyError('INSTALL_FAILED_UNRECOVERED', `install of ${o.release} failed at ${stage}: ${reason}; ${kept}. Recovery of ${back} also failed (${problems.join('; ')}); current -> ${now ?? '(nothing)'}`, { cause: err, hint: 'the device needs attention: check the hook output above, then fussy rollback or install a working release' });
  }
}

/**
 * Re-enable `back` in recovery mode (hooks get "True"): pre-install, switch, post-install.
 * Returns what went wrong; an empty list means `back` is current and its hooks succeeded.
 */
export async function reenable(back: string, ctx: HookContexts, o: Pick<ActivateOptions, 'target' | 'onEvent' | 'failpoints'>): Promise<string[]> {
  const emit = o.onEvent ?? noEvents;
  const problems: string[] = [];
  try {
    await runHook('pre-install', ctx(back, true));
    o.failpoints?.at('recovery-after-pre-install');
  } catch (err) {
    // As in Fussy, a failing recovery pre-install is reported but does not stop the recovery.
    emit({ type: 'recover', release: back, reason: `recovery pre-install failed, continuing: ${(err as Error).message}` });
  }
  try {
    await swapCurrent(o.target, back);
    emit({ type: 'switch', release: back, recovery: true });
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
