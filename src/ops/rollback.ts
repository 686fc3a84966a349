import { join, resolve } from 'node:path';
import { FussyError } from '../errors.js';
import { noEvents } from '../events.js';
import { activate } from '../txn/activate.js';
import { failpoints } from '../util/failpoint.js';
import { historyResultOf, lastEnabled, readHistory, recordHistory } from '../store/history.js';
import { clearJournal, writeJournal, type JournalStep } from '../txn/journal.js';
import { FAILSAFE, readLayout, STATE_DIR } from '../store/layout.js';
import { withTarget } from '../txn/recover.js';
import type { TargetRunOptions } from '../txn/target-run-options.js';

/** `signal`: as for an install (activate.ts): before the pre-install starts a refusal, then a failed hook. */
export interface RollbackOptions extends TargetRunOptions {
  target: string;
  /** The release to go back to; default: the one most recently current before this one. */
  to?: string;
}

export interface RollbackResult {
  release: string;
  path: string;
  previous?: string;
  durationMs: number;
  recovered?: string;
}

/**
 * `fussy rollback [--to NAME]`: re-enable an installed release through the same path as an
 * install (pre-install → switch → post-install, argv "False": a rollback is a deliberate enable,
 * not a recovery), journaled the same way, so a crash is rolled forward or back like an install's.
 * On failure the release that was current is re-enabled in recovery mode; the rollback target is
 * never deleted (it was not created by this transaction). Default target: the release most
 * recently current before the current one (history), else the newest other release, else failsafe.
 */
export async function rollback(o: RollbackOptions): Promise<RollbackResult> {
  const target = resolve(o.target);
  const emit = o.onEvent ?? noEvents;
  const started = Date.now();
  const stateDir = join(target, STATE_DIR);
  const what = `rollback${o.to === undefined ? '' : ` to ${o.to}`}`;
  return withTarget(target, { ...o, what }, async (recovered) => {
    const layout = await readLayout(target);
    const to = o.to ?? (await defaultTarget(target, stateDir, layout.current, layout.releases));
    if (!layout.releases.includes(to) || to.startsWith('.')) {
      throw new FussyError('RELEASE_NOT_FOUND', `there is no release ${to} in ${target}`, { hint: `installed releases: ${layout.releases.join(', ') || '(none)'}` });
    }
    if (to === layout.current) throw new FussyError('ALREADY_CURRENT', `${to} is already current`, { hint: 'name another release with --to' });
    const facts = { time: (o.now ?? new Date(started)).toISOString(), action: 'rollback' as const, release: to, previous: layout.current };
    const txn = { action: 'rollback' as const, id: `${process.pid}-${started}`, started: facts.time, created: false, previous: layout.current };
    const journal = (step: JournalStep, extra: { back?: string; keepRelease?: boolean } = {}): Promise<void> => writeJournal(stateDir, { ...txn, ...extra, step, release: to });
    try {
      await activate({ ...o, target, release: to, previous: layout.current, created: false, journal, failpoints: failpoints(o.failpoint) });
    } catch (err) {
      if (err instanceof FussyError && (err.code === 'INSTALL_FAILED_RECOVERED' || err.code === 'INSTALL_FAILED_UNRECOVERED' || err.code === 'INTERRUPTED')) {
        await recordHistory(stateDir, { ...facts, ...historyResultOf(err), durationMs: Date.now() - started }, emit);
      }
      throw err;
    } finally {
      await clearJournal(stateDir);
    }
    await recordHistory(stateDir, { ...facts, result: 'ok', durationMs: Date.now() - started }, emit);
    return { release: to, path: join(target, to), previous: layout.current, durationMs: Date.now() - started, recovered };
  });
}

async function defaultTarget(target: string, stateDir: string, current: string | undefined, releases: string[]): Promise<string> {
  const others = releases.filter((r) => r !== current && r !== FAILSAFE);
  const when = await lastEnabled(target, others, (await readHistory(stateDir)).records);
  const best = others.filter((r) => (when.get(r) as number) > Number.NEGATIVE_INFINITY).sort((a, b) => (when.get(b) as number) - (when.get(a) as number))[0];
  if (best !== undefined) return best;
  if (releases.includes(FAILSAFE) && current !== FAILSAFE) return FAILSAFE;
  throw new FussyError('NOTHING_TO_ROLL_BACK', `there is no release to roll back to in ${target}`, { hint: 'install a package instead' });
}
