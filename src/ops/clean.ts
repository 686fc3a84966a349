import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FussyError } from '../errors.js';
import { noEvents } from '../events.js';
import { failpoints } from '../util/failpoint.js';
import { lastEnabled, readHistory, recordHistory } from '../store/history.js';
import { bytesFreed, releaseUsage } from '../store/release-usage.js';
import { clearJournal, writeJournal } from '../txn/journal.js';
import { CURRENT, discardRelease, FAILSAFE, readLayout, STATE_DIR } from '../store/layout.js';
import { withTarget } from '../txn/recover.js';
import { throwIfAborted } from '../util/abort.js';
import type { TargetRunOptions } from '../txn/target-run-options.js';

/**
 * The hook options are for the recovery of an interrupted install, which runs first (hooks may
 * run). `signal` stops a wait for the lock, and the clean until its first release is removed
 * (INTERRUPTED, nothing removed); then it completes.
 */
export interface CleanOptions extends TargetRunOptions {
  target: string;
  /** Previous releases to keep besides current and failsafe (default 1, as Fussy's). */
  keep?: number;
  dryRun?: boolean;
}

export interface CleanResult {
  /** Releases removed (or, with dryRun, that would be), oldest first. */
  removed: string[];
  /** Releases kept besides current and failsafe, newest first. */
  kept: string[];
  current?: string;
  /** Bytes the removal gives back: files still linked from a kept release free nothing. */
  freedBytes: number;
  /** Plain files and foreign symlinks in the target: reported, never deleted. */
  foreign: string[];
  dryRun: boolean;
  /** What recovery did first, when an install had been interrupted. */
  recovered?: string;
}

/**
 * `fussy clean` (docs/commands.md): remove all but the `keep` most recently enabled previous releases.
 * Never current's release, failsafe, dot-entries (stale staging dirs of crashed installs go
 * through recovery, under the lock), plain files or symlinks. "Most recently enabled" comes from
 * the history (the last install, rollback or recovery that made a release current); releases it
 * does not know (installed by the original Fussy) count by their directory's ctime, which rename
 * sets when a release is put in place. Each release is removed through `.fussy/trash-*`, so a
 * crash never leaves half a release under its name.
 */
export async function clean(o: CleanOptions): Promise<CleanResult> {
  const target = resolve(o.target);
  const emit = o.onEvent ?? noEvents;
  const keep = o.keep ?? 1;
  if (!Number.isInteger(keep) || keep < 0) throw new FussyError('USAGE', `--keep must be a whole number >= 0, not ${keep}`);
  const started = Date.now();
  const time = (o.now ?? new Date(started)).toISOString(); // the caller's clock, for the journal and the history
  const what = o.dryRun === true ? 'clean --dry-run' : 'clean';
  return withTarget(target, { ...o, what }, async (recovered) => {
    const layout = await readLayout(target);
    const stateDir = join(target, STATE_DIR);
    const candidates = layout.releases.filter((r) => r !== FAILSAFE && r !== layout.current);
    const when = await lastEnabled(target, candidates, (await readHistory(stateDir)).records);
    const newestFirst = [...candidates].sort((a, b) => (when.get(b) as number) - (when.get(a) as number));
    const kept = newestFirst.slice(0, keep);
    const removed = newestFirst.slice(keep).reverse();
    const freedBytes = bytesFreed(await releaseUsage(target, removed), removed);
    const foreign = await foreignEntries(target);
    if (o.dryRun !== true && removed.length > 0) {
      throwIfAborted(o.signal); // the last moment at which nothing has been removed
      const fp = failpoints(o.failpoint);
      await writeJournal(stateDir, { action: 'clean', id: `${process.pid}-${started}`, started: time, step: 'commit', release: '(clean)', created: false, remove: removed });
      for (const r of removed) {
        await discardRelease(target, r);
        emit({ type: 'log', message: `removed ${join(target, r)}` });
        fp.at('clean-after-first');
      }
      await clearJournal(stateDir);
      await recordHistory(stateDir, { time, action: 'clean', result: 'ok', removed, freedBytes, durationMs: Date.now() - started }, emit);
    }
    return { removed, kept, current: layout.current, freedBytes, foreign, dryRun: o.dryRun === true, recovered };
  });
}

/** Entries of the target that are neither releases, `current`, nor dot-entries. */
async function foreignEntries(target: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(target)).sort()) {
    if (n.startsWith('.') || n === CURRENT) continue;
    const st = await lstat(join(target, n));
    if (st.isDirectory()) continue;
    out.push(st.isSymbolicLink() ? `${n} -> ${await readlink(join(target, n))}` : n);
  }
  return out;
}
