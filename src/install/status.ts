import { lstat, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isErrno } from '../errors.js';
import { readDeviceState } from './device-state.js';
import { readInstalledManifest } from './installed-manifest.js';
import { lastEnabled, readHistory, type HistoryRecord } from './history.js';
import { ownAndShared, releaseUsage } from './release-usage.js';
import { readJournal, type Journal } from './journal.js';
import { FAILSAFE, readLayout, STATE_DIR } from './layout.js';

export interface ReleaseStatus {
  name: string;
  current: boolean;
  failsafe: boolean;
  /** When it was last made current (history), else when its directory was put in place. */
  since: string;
  sequence?: number;
  /** Bytes only this release holds (every hard link to them is inside it). */
  uniqueBytes: number;
  /** Bytes it shares with other releases through hard links. */
  sharedBytes: number;
}

export interface TargetStatus {
  target: string;
  current?: string;
  releases: ReleaseStatus[];
  /** The highest sequence this device has enabled (downgrade protection). */
  highestSequence?: number;
  lastTransaction?: HistoryRecord;
  /** An interrupted transaction that the next install, clean, rollback or recover will finish. */
  pendingRecovery?: Pick<Journal, 'action' | 'release' | 'step' | 'started'>;
  /** Who holds the target's lock right now, if anyone. */
  lockedBy?: string;
  historyProblems: string[];
}

/**
 * `fussy status` (SPEC §4): what is installed and what happened last. Reads only, takes no lock,
 * so it works while an install runs (and says so).
 */
export async function status(targetDir: string): Promise<TargetStatus> {
  const target = resolve(targetDir);
  const layout = await readLayout(target);
  const stateDir = join(target, STATE_DIR);
  const [history, state, journal, lock] = await Promise.all([
    readHistory(stateDir),
    readDeviceState(stateDir),
    readJournal(stateDir),
    readFile(join(stateDir, 'lock'), 'utf8').catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err))),
  ]);
  const enabled = await lastEnabled(target, layout.releases, history.records);
  const usage = await releaseUsage(target, layout.releases);
  const releases: ReleaseStatus[] = [];
  for (const r of layout.releases) {
    const { own, shared } = ownAndShared(usage, r);
    const when = enabled.get(r) as number;
    const since = new Date(Number.isFinite(when) ? when : (await lstat(join(target, r))).ctimeMs).toISOString();
    releases.push({ name: r, current: r === layout.current, failsafe: r === FAILSAFE, since, sequence: await manifestSequence(join(target, r)), uniqueBytes: own, sharedBytes: shared });
  }
  releases.sort((a, b) => b.since.localeCompare(a.since));
  let lockedBy: string | undefined;
  if (lock !== undefined) {
    try {
      const o = JSON.parse(lock) as { pid: number; what: string; since: string };
      lockedBy = `pid ${o.pid} (${o.what}, since ${o.since})`;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      lockedBy = 'unknown (unreadable lock file)';
    }
  }
  return {
    target,
    current: layout.current,
    releases,
    highestSequence: state.highestSequence,
    lastTransaction: history.records.at(-1),
    pendingRecovery: journal === undefined ? undefined : { action: journal.action, release: journal.release, step: journal.step, started: journal.started },
    lockedBy,
    historyProblems: history.problems,
  };
}

async function manifestSequence(dir: string): Promise<number | undefined> {
  const m = readInstalledManifest(dir);
  return m !== undefined && 'manifest' in m && typeof m.manifest.sequence === 'number' ? m.manifest.sequence : undefined;
}
