import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { fsyncDir, unlinkIfExists, writeAtomic } from '../util/fs-atomic.js';

/** In the state dir: the transaction in progress, if any. */
export const JOURNAL = 'journal.json';
const FORMAT = 'fussy-journal';

/**
 * Where an install (or a rollback, which is an install without a package) stands. Each step is
 * made durable before the action it announces, so after a crash the journal never claims less
 * than happened:
 *   commit       the verified, synced staging dir is about to become `release`;
 *   pre-install  the new release's .pre-install may have run (services may be stopped);
 *   switched     `current` points at `release`; .post-install may have run;
 *   recovering   a step failed; `back` is being re-enabled in recovery mode, and `release` is
 *                removed afterwards unless `keepRelease` (a failed post-install is kept).
 * The switch of `current` is the commit point: recovery rolls forward when `current` points at
 * `release`, and back otherwise (recover.ts). A clean writes one `commit` step naming the releases
 * it removes; recovery finishes the list.
 */
export type JournalStep = 'commit' | 'pre-install' | 'switched' | 'recovering';

export interface Journal {
  format: typeof FORMAT;
  version: 1;
  action: 'install' | 'rollback' | 'clean';
  /** pid-start time, for messages. */
  id: string;
  started: string;
  step: JournalStep;
  /** The release being enabled (a directory name in the target). */
  release: string;
  /** True when this transaction created `release` (an install), false for a rollback. */
  created: boolean;
  /** What was current before: where a failed or interrupted transaction returns to. */
  previous?: string;
  /** During `recovering`: the release being re-enabled, and whether `release` stays. */
  back?: string;
  keepRelease?: boolean;
  /** The new release's manifest sequence: recorded once it is enabled (downgrade protection). */
  sequence?: number;
  /** clean: the releases it set out to remove (recovery finishes the list). */
  remove?: string[];
}

export type JournalFields = Omit<Journal, 'format' | 'version'>;

/** Write the journal atomically and durably: temp file, fsync, rename, fsync of the state dir. */
export async function writeJournal(stateDir: string, j: JournalFields): Promise<void> {
  await writeAtomic(join(stateDir, JOURNAL), JSON.stringify({ format: FORMAT, version: 1, ...j }) + '\n');
}

export async function readJournal(stateDir: string): Promise<Journal | undefined> {
  const file = join(stateDir, JOURNAL);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  let j: Journal;
  try {
    j = JSON.parse(text) as Journal;
  } catch (err) {
    throw unreadable(file, `not JSON (${(err as Error).message})`);
  }
  if (j.format !== FORMAT || j.version !== 1 || typeof j.release !== 'string' || typeof j.step !== 'string') throw unreadable(file, 'not a fussy journal of a version this fussy knows');
  return j;
}

/** The transaction is over: remove the journal, durably. */
export async function clearJournal(stateDir: string): Promise<void> {
  await unlinkIfExists(join(stateDir, JOURNAL));
  await fsyncDir(stateDir);
}

function unreadable(file: string, why: string): FussyError {
  // Only fussy writes it, atomically: this is damage or a newer fussy, not something to guess about.
  return new FussyError('JOURNAL_UNREADABLE', `the transaction journal ${file} is ${why}`, {
    hint: 'run `fussy status` to see the state; move the file aside by hand once current points at a working release',
  });
}
