import { lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { holderAlive, readLockFile } from '../lock/pid-lock.js';
import { readDeviceState } from '../store/device-state.js';
import { readInstalledManifest } from '../store/installed-manifest.js';
import { lastEnabled, readHistory, type HistoryRecord } from '../store/history.js';
import { ownAndShared, releaseUsage } from '../store/release-usage.js';
import { readJournal, type Journal } from '../txn/journal.js';
import { FAILSAFE, readLayout, STATE_DIR } from '../store/layout.js';
import { checkStateDirForReading } from '../txn/target-lock.js';

export interface ReleaseStatus {
  name: string;
  current: boolean;
  failsafe: boolean;
  /** When it was last made current (history), else when its directory was put in place. */
  since: string;
  sequence?: number;
  /**
   * sha256 of its installed manifest (the package's, byte for byte): what a sender names as a
   * delta package's base (docs/format.md, "Delta packages"); absent without a manifest, or with
   * one fussy would not use (damaged: `fussy verify` names why).
   */
  manifestSha256?: string;
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
  /** Who holds the target's lock right now, if anyone (a live process). */
  lockedBy?: string;
  /** A lock left by a process that no longer runs ("dead pid N (...)"): the next command that takes the lock clears it. */
  staleLock?: string;
  /** The chain does not check out, or a file of the history is damaged: status still reports the rest. */
  historyProblems: string[];
  /** A history file that could not be read or used (a damaged history.head is rebuilt by the next transaction). */
  historyDamaged?: string;
}

/**
 * `fussy status` (docs/commands.md): what is installed and what happened last. Reads only, takes no lock,
 * so it works while an install runs (and says so).
 */
export async function status(targetDir: string): Promise<TargetStatus> {
  const target = resolve(targetDir);
  const layout = await readLayout(target);
  checkStateDirForReading(target); // a FIFO or link a user planted could stall or mislead status as root
  const stateDir = join(target, STATE_DIR);
  const [history, state, journal] = await Promise.all([readHistory(stateDir), readDeviceState(stateDir), readJournal(stateDir)]);
  const lock = lockState(join(stateDir, 'lock'));
  const enabled = await lastEnabled(target, layout.releases, history.records);
  const usage = await releaseUsage(target, layout.releases);
  const releases: ReleaseStatus[] = [];
  for (const r of layout.releases) {
    const { own, shared } = ownAndShared(usage, r);
    const when = enabled.get(r) as number;
    const since = new Date(Number.isFinite(when) ? when : (await lstat(join(target, r))).ctimeMs).toISOString();
    releases.push({ name: r, current: r === layout.current, failsafe: r === FAILSAFE, since, ...manifestFacts(join(target, r)), uniqueBytes: own, sharedBytes: shared });
  }
  releases.sort((a, b) => b.since.localeCompare(a.since));
  return {
    target,
    current: layout.current,
    releases,
    highestSequence: state.highestSequence,
    lastTransaction: history.records.at(-1),
    pendingRecovery: journal === undefined ? undefined : { action: journal.action, release: journal.release, step: journal.step, started: journal.started },
    ...lock,
    historyProblems: history.problems,
    ...(history.damagedFile === undefined ? {} : { historyDamaged: history.damagedFile }),
  };
}

/**
 * Who holds the lock, told apart from a dead holder (pid + process start time, as the lock
 * itself decides): a killed install leaves its lock file until the next command takes over.
 */
function lockState(file: string): Pick<TargetStatus, 'lockedBy' | 'staleLock'> {
  const lock = readLockFile(file);
  if (lock === undefined) return {};
  const h = lock.holder;
  if (h === undefined) return { staleLock: 'an unreadable lock file' };
  const desc = `pid ${h.pid} (${h.what}, since ${h.since})`;
  return holderAlive(h) ? { lockedBy: desc } : { staleLock: `dead ${desc}` };
}

/** The release's sequence and manifest sha256, from its installed manifest read once (none for one fussy would not use). */
function manifestFacts(dir: string): { sequence?: number; manifestSha256?: string } {
  const m = readInstalledManifest(dir);
  return m !== undefined && 'manifest' in m ? { sequence: m.manifest.sequence, manifestSha256: m.sha256 } : {}; // validated: sequence is a number
}
