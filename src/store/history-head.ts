import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno, isSystemError } from '../errors.js';
import { writeAtomic } from '../util/fs-atomic.js';

/** In the state dir: the newest record's hash and the record count, so that cutting records off the end shows. */
export const HISTORY_HEAD = 'history.head';
export const GENESIS = '0'.repeat(64);

export interface Head {
  /** Records in history.log. */
  count: number;
  /** sha256 of its last line (or `base` when it has none). */
  sha256: string;
  /** What the first record of history.log names as its predecessor: the archive's last line. */
  base?: string;
  /** The same for the archive's first record. */
  archiveBase?: string;
}

/** The log and its archive as read (undefined: no such file), for settling the head. */
export interface HistoryTexts {
  log?: string;
  archive?: string;
}

export interface SettledHead {
  head: Head;
  /**
   * Why the head file could not be used, naming it ("/x/.fussy/history.head is not JSON (...)"):
   * `head` was then rebuilt from the log. Damage, never a reason for a transaction to fail.
   */
  damage?: string;
}

/**
 * The head to check the log against and to append after. Decision (issue 11): the head only
 * guards the log's end (records cut off it, the newest one edited), so a head that cannot be read
 * (a torn write by something other than fussy, an edit, garbage, not a file, missing while the
 * log has records) is rebuilt from the log as it stands: count and hash of its complete lines,
 * bases from the first records' `prev`. The damage is reported (status, `fussy history` exit 2,
 * a log event and a `headRebuilt` note in the next record), and the next append writes a good
 * head again, so the history keeps working; what the lost head would have caught before then
 * (records removed from the end) cannot be detected. Two crash windows are settled silently:
 * a rotation cut short after the rename, and an append cut short before the head was rewritten
 * (the log holds one record more, and it follows the head's).
 */
export async function settledHead(stateDir: string, texts: HistoryTexts): Promise<SettledHead> {
  const file = join(stateDir, HISTORY_HEAD);
  const read = await readHead(file);
  const lines = completeLines(texts.log);
  if (typeof read === 'string') return { head: headFromLog(lines, completeLines(texts.archive)), damage: `${file} ${read}` };
  if (read === undefined && (lines.length > 1 || (lines.length === 1 && prevOf(lines[0]) !== GENESIS) || completeLines(texts.archive).length > 0)) {
    return { head: headFromLog(lines, completeLines(texts.archive)), damage: `${file} is missing while the log has records` };
  }
  const head = read ?? { count: 0, sha256: GENESIS };
  if (head.count > 0 && texts.log === undefined) {
    // The rotation's rename happened, the head's rewrite did not: the archive ends with the head's record.
    const last = completeLines(texts.archive).at(-1);
    if (last !== undefined && sha(last + '\n') === head.sha256) return { head: { count: 0, sha256: head.sha256, base: head.sha256, archiveBase: head.base ?? GENESIS } };
  }
  const newest = lines.at(-1);
  if (lines.length === head.count + 1 && newest !== undefined && prevOf(newest) === head.sha256) return { head: { ...head, count: lines.length, sha256: sha(newest + '\n') } };
  return { head };
}

export function writeHead(stateDir: string, head: Head): Promise<void> {
  return writeAtomic(join(stateDir, HISTORY_HEAD), JSON.stringify(head) + '\n');
}

/** The head file, or why it cannot be used; undefined when there is none. */
async function readHead(file: string): Promise<Head | string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    if (!isSystemError(err)) throw err;
    return `cannot be read (${err.code}: ${err.message})`;
  }
  let h: unknown;
  try {
    h = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return `is not JSON (${err.message}): a write cut short or an edit`;
  }
  return isHead(h) ? { count: h.count, sha256: h.sha256, base: h.base, archiveBase: h.archiveBase } : 'is not a fussy history head (count, sha256): it was edited';
}

function isHead(h: unknown): h is Head {
  if (typeof h !== 'object' || h === null) return false;
  const o = h as Record<string, unknown>;
  const hash = (v: unknown): boolean => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  return Number.isSafeInteger(o.count) && (o.count as number) >= 0 && hash(o.sha256) && (o.base === undefined || hash(o.base)) && (o.archiveBase === undefined || hash(o.archiveBase));
}

/** The head fussy would have written after the last complete line of the log (see settledHead). */
function headFromLog(lines: string[], archive: string[]): Head {
  const archiveBase = prevOf(archive[0]) ?? GENESIS;
  const newest = lines.at(-1);
  if (newest === undefined) {
    const last = archive.at(-1);
    if (last === undefined) return { count: 0, sha256: GENESIS };
    const s = sha(last + '\n');
    return { count: 0, sha256: s, base: s, archiveBase };
  }
  const base = prevOf(lines[0]);
  const rotated = base !== undefined && base !== GENESIS;
  return { count: lines.length, sha256: sha(newest + '\n'), ...(rotated ? { base, archiveBase } : {}) };
}

/** The lines a log holds, without a last one cut short (it has no newline). */
function completeLines(text: string | undefined): string[] {
  if (text === undefined) return [];
  const lines = text.split('\n');
  lines.pop();
  return lines;
}

/** The `prev` a record line names, if it is a record. */
function prevOf(line: string | undefined): string | undefined {
  if (line === undefined) return undefined;
  try {
    const r = JSON.parse(line) as unknown;
    return typeof r === 'object' && r !== null && typeof (r as { prev?: unknown }).prev === 'string' ? (r as { prev: string }).prev : undefined;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return undefined;
  }
}

export function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
