import { lstat, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { noEvents } from '../events.js';
import { isTempName, unlinkIfExists } from '../util/fs-atomic.js';
import { removeTree } from '../util/remove-tree.js';
import { activate, hookContexts, reenable } from './activate.js';
import { failpoints, NO_FAILPOINTS, type Failpoints } from '../util/failpoint.js';
import { recordSequence } from '../store/device-state.js';
import { historyResultOf, recordHistory, type HistoryRecord } from '../store/history.js';
import { clearJournal, readJournal, writeJournal, type Journal, type JournalFields } from './journal.js';
import { lockTarget, trustedStateDir } from './target-lock.js';
import type { TargetRunOptions } from './target-run-options.js';
import { CURRENT, currentName, discardRelease, FAILSAFE, readLayout, STATE_DIR, swapCurrent, TRASH_PREFIX } from '../store/layout.js';

/** `now` is for the history record (default: the time recovery starts). */
export interface RecoverOptions extends Pick<TargetRunOptions, 'env' | 'cwd' | 'hookTimeoutMs' | 'onEvent' | 'now' | 'hookRoot'> {
  target: string;
  failpoints?: Failpoints;
}

export interface Recovery {
  /** clean: nothing was interrupted; otherwise what was done with the interrupted transaction. */
  outcome: 'clean' | 'rolled-back' | 'rolled-forward';
  /** The interrupted transaction's journal, if there was one. */
  interrupted?: Pick<Journal, 'action' | 'id' | 'release' | 'step' | 'previous'>;
  /** The release `current` points at afterwards. */
  current?: string;
  /** Leftovers removed from the state dir (staging and trash dirs, temp files). */
  removed: string[];
  message: string;
}

/**
 * Finish or undo an interrupted transaction (docs/crash-safety.md). Called with the target's
 * lock held, by every command that takes it, before it does anything else. Deterministic:
 * - leftovers in `.fussy/` (a staging dir of an unpack cut short, a release half deleted from the
 *   trash, temp files) are removed: none of them was ever visible under a release name;
 * - with a journal: when `current` already points at the new release, the switch (the commit
 *   point) happened and the install is rolled forward: its `.post-install` runs (again: hooks
 *   must be idempotent, as Fussy's were). Otherwise it is rolled back: the release that was
 *   current is re-enabled in recovery mode ("True") if any hook of the new one may have run, and
 *   the new release is removed (kept when its post-install had failed).
 * Recovery itself is restartable: the journal stays until it is done, and every step is
 * idempotent, so a crash during recovery is handled by the next recovery.
 */
export async function recoverTarget(o: RecoverOptions): Promise<Recovery> {
  const stateDir = join(o.target, STATE_DIR);
  const emit = o.onEvent ?? noEvents;
  trustedStateDir(o.target); // checks target and state dir, creates the latter 0755 if missing
  const removed = await sweep(stateDir);
  const j = await readJournal(stateDir);
  if (j === undefined) {
    const message = removed.length === 0 ? 'nothing to recover' : `removed ${removed.join(', ')} left by an interrupted install`;
    for (const r of removed) emit({ type: 'log', message: `removed ${join(stateDir, r)} left by an interrupted install` });
    return { outcome: 'clean', current: await currentName(o.target), removed, message };
  }
  const interrupted = { action: j.action, id: j.id, release: j.release, step: j.step, previous: j.previous };
  const started = Date.now();
  const history = ({ result, error }: Pick<HistoryRecord, 'result' | 'error'>): Promise<void> =>
    recordHistory(stateDir, {
      time: (o.now ?? new Date(started)).toISOString(),
      action: 'recover',
      result,
      release: j.release,
      previous: j.previous,
      ...(error === undefined ? {} : { error }),
      durationMs: Date.now() - started,
    }, emit);
  const fp = o.failpoints ?? NO_FAILPOINTS;
  const journal = (step: Journal['step'], extra: Partial<JournalFields> = {}): Promise<void> => writeJournal(stateDir, { ...j, ...extra, step });
  const cur = await currentName(o.target);
  if (j.action === 'clean') {
    // Deleting is idempotent and the list was made under the lock: finish it (never current).
    const left = (j.remove ?? []).filter((r) => r !== cur);
    for (const r of left) await discardRelease(o.target, r);
    await clearJournal(stateDir);
    await history({ result: 'rolled-forward' });
    const message = `finished the interrupted clean: ${left.join(', ') || 'nothing'} removed`;
    emit({ type: 'log', message });
    return { outcome: 'rolled-forward', interrupted, current: cur, removed, message };
  }
  const what = `${j.action} of ${j.release} (interrupted at "${j.step}")`;

  // `current` must end on a release that is there: a release deleted by hand or lost to a damaged
  // disk is never rolled forward onto, nor gone back to.
  const present = async (name: string | undefined): Promise<boolean> => name !== undefined && (await isReleaseDir(o.target, name));
  if (j.step !== 'recovering' && cur === j.release && (await present(j.release))) {
    emit({ type: 'log', message: `rolling forward the interrupted ${what}: current already points at it; running its post-install` });
    try {
      await activate({ target: o.target, release: j.release, previous: j.previous, env: o.env, cwd: o.cwd, hookTimeoutMs: o.hookTimeoutMs, hookRoot: o.hookRoot, onEvent: o.onEvent, created: j.created, from: 'post-install', journal, failpoints: fp });
    } catch (err) {
      // activate re-enabled the previous release; the journal's job is done either way.
      await clearJournal(stateDir);
      await history(historyResultOf(err, 'failed-unrecovered'));
      throw err;
    }
    if (j.sequence !== undefined) await recordSequence(stateDir, j.sequence);
    await clearJournal(stateDir);
    await history({ result: 'rolled-forward' });
    return { outcome: 'rolled-forward', interrupted, current: j.release, removed, message: `rolled forward the interrupted ${what}: current -> ${j.release}` };
  }

  const hooksMayHaveRun = j.step !== 'commit';
  const wanted = [j.back, j.previous, FAILSAFE].filter((n): n is string => n !== undefined && n !== j.release);
  const missing: string[] = [];
  let back: string | undefined;
  if (!hooksMayHaveRun && cur !== undefined && cur !== j.release && (await present(cur))) back = cur; // nothing was switched
  for (const n of wanted) {
    if (back !== undefined) break;
    if (await present(n)) back = n;
    else if (n !== FAILSAFE || j.back === FAILSAFE || j.previous === FAILSAFE) missing.push(n);
  }
  const problems: string[] = [];
  if (missing.length > 0) emit({ type: 'log', message: `cannot go back to ${missing.join(', ')}: no such release in ${o.target}` });
  if (back === undefined) problems.push(`no release to go back to (${[...missing, ...(missing.includes(FAILSAFE) ? [] : [`no ${FAILSAFE}`])].join(', ')})`);
  emit({ type: 'log', message: `rolling back the interrupted ${what}${back === undefined ? '' : `: re-enabling ${back}`}` });
  if (back !== undefined && hooksMayHaveRun) {
    await journal('recovering', { back });
    fp.at('recovery-started');
    problems.push(...(await reenable(back, hookContexts({ ...o, previous: j.previous }), { ...o, failpoints: fp })));
  } else if (back !== undefined && cur !== back) {
    // No hook ran; only `current` may be missing (a factory dir renamed to failsafe just before).
    await swapCurrent(o.target, back);
  }
  const now = await currentName(o.target);
  if (j.created && j.keepRelease !== true && now !== j.release) await discardRelease(o.target, j.release);
  await clearJournal(stateDir);
  if (problems.length > 0) {
    const err = new FussyError('INSTALL_FAILED_UNRECOVERED', `rolling back the interrupted ${what} failed: ${problems.join('; ')}; current -> ${now ?? '(nothing)'}`, {
      hint: 'the device needs attention: check the hook output above, then fussy rollback or install a working release',
    });
    await history(historyResultOf(err));
    throw err;
  }
  await history({ result: 'rolled-back' });
  const fate = j.created ? (j.keepRelease === true ? `; ${j.release} is kept for inspection` : `; ${j.release} was removed`) : '';
  return { outcome: 'rolled-back', interrupted, current: now, removed, message: `rolled back the interrupted ${what}: current -> ${now ?? '(nothing)'}${fate}` };
}

/** Remove what interrupted transactions leave in the state dir; returns the names removed. */
async function sweep(stateDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const n of await readdir(stateDir)) {
    const p = join(stateDir, n);
    if (n.startsWith('staging-') || n.startsWith(TRASH_PREFIX)) {
      await removeTree(p);
      removed.push(n);
    } else if (isTempName(n) && (await isFileOrLink(p))) {
      // A write cut short (journal, state, history head, hash cache, a lock record, the spooled
      // package): the file it was to replace is intact. `.fussy/` is checked to be root's alone,
      // so nothing can be swapped in between the lstat and the unlink, which never follows.
      await unlinkIfExists(p);
      removed.push(n);
    }
  }
  // A swap of `current` cut short leaves `current~` beside an intact `current`.
  await unlinkIfExists(join(stateDir, '..', `${CURRENT}~`));
  return removed;
}

/** Only a regular file or a symlink at a temp name is a leftover; a directory or FIFO is not fussy's. */
/** A release that is there: a directory (not a link) named `name` in the target. */
async function isReleaseDir(target: string, name: string): Promise<boolean> {
  const st = await lstat(join(target, name)).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw err;
  });
  return st?.isDirectory() === true;
}

async function isFileOrLink(p: string): Promise<boolean> {
  const st = await lstat(p);
  return st.isFile() || st.isSymbolicLink();
}

/** `failpoint` is the operation's own: the recovery withTarget runs first arms none (`fussy recover` does). */
export interface WithTargetOptions extends Omit<TargetRunOptions, 'failpoint'> {
  /** What the lock holder is doing, for a busy message ("install x.tar.gz.gpg"). */
  what: string;
}

/**
 * How every command that changes a target starts (install, rollback, clean, verify --repair):
 * take its lock, finish or undo whatever a crash interrupted, then run `fn` with what recovery
 * did. When rolling an interrupted install forward fails, its previous release is current again:
 * the device is consistent, so the command goes on (and says so); an unrecoverable state stops it.
 */
export async function withTarget<T>(target: string, o: WithTargetOptions, fn: (recovered: string | undefined) => Promise<T>): Promise<T> {
  const emit = o.onEvent ?? noEvents;
  await readLayout(target); // the target must exist before a lock is made in it
  const lock = await lockTarget(target, o.what, o.wait === true, o.now ?? new Date(), o.signal, (message) => emit({ type: 'log', message }));
  try {
    let recovered: string | undefined;
    try {
      const r = await recoverTarget({ ...o, target });
      recovered = r.outcome === 'clean' ? undefined : r.message;
    } catch (err) {
      if (!(err instanceof FussyError && err.code === 'INSTALL_FAILED_RECOVERED')) throw err;
      emit({ type: 'log', message: `recovering an interrupted transaction: ${err.message}` });
      recovered = err.message;
    }
    return await fn(recovered);
  } finally {
    await lock.release();
  }
}

/** `signal` stops only a wait for the lock: recovery itself always runs to its end. */
export interface RecoverCommandOptions extends TargetRunOptions {
  target: string;
}

/** `fussy recover`: take the target's lock, then recoverTarget. */
export async function recover(o: RecoverCommandOptions): Promise<Recovery> {
  const target = resolve(o.target);
  await readLayout(target); // the target must exist before a lock is made in it
  const lock = await lockTarget(target, 'recover', o.wait === true, o.now ?? new Date(), o.signal, (message) => (o.onEvent ?? noEvents)({ type: 'log', message }));
  try {
    return await recoverTarget({ ...o, target, failpoints: failpoints(o.failpoint) });
  } finally {
    await lock.release();
  }
}
