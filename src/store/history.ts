import { constants } from 'node:fs';
import { lstat, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeltaBase } from '../archive/manifest.js';
import { FussyError, isErrno, isSystemError } from '../errors.js';
import type { LogEvent } from '../events.js';
import { fsyncDir } from '../util/fs-atomic.js';
import { isPermissionError, permissionDenied } from '../util/system-error.js';
import { GENESIS, HISTORY_HEAD, settledHead, sha, writeHead } from './history-head.js';

/** In the state dir: one JSON record per line, each naming the sha256 of the line before it. */
export const HISTORY = 'history.log';
/** The log before the last rotation (one generation is kept). */
export const HISTORY_ARCHIVE = 'history.1.log';
/**
 * History space is bounded (docs/security.md): every refused upload adds a record, so the log is
 * rotated when it would pass this size, keeping one older generation (~2 x 4 MiB, ~16,000
 * records), and every string an untrusted package can influence is cut to a fixed length.
 */
export const HISTORY_MAX_BYTES = 4 * 1024 * 1024;
const FIELD_MAX = 1024;

export interface HistoryRecord {
  time: string;
  action: 'install' | 'rollback' | 'clean' | 'recover';
  /** ok; failed-recovered (exit 3); failed-unrecovered (exit 4); refused (nothing changed); error (a bug, exit 1). */
  result: 'ok' | 'failed-recovered' | 'failed-unrecovered' | 'refused' | 'error' | 'rolled-back' | 'rolled-forward';
  release?: string;
  previous?: string;
  package?: { file: string; bytes?: number; sha256?: string };
  signers?: string[];
  /** A delta package: the bases it was made against (docs/format.md, "Delta packages"). */
  delta?: { bases: DeltaBase[] };
  error?: { code: string; message: string };
  /** clean: the releases removed and the bytes that gave back. */
  removed?: string[];
  freedBytes?: number;
  durationMs: number;
  /** Why history.head was rebuilt from the log just before this record (history-head.ts). */
  headRebuilt?: string;
  /** sha256 of the previous line (hex), or 64 zeros for the first record. */
  prev: string;
}

/**
 * Append a record, durably (O_APPEND, fsync), then move the head file to it (atomic rename).
 * A crash between the two leaves one record more than the head says, following the head's
 * record: the next read or append takes it as written. A log that would pass HISTORY_MAX_BYTES
 * is first renamed to the archive (replacing the older one) and a new one starts whose first
 * record names the archive's last. A damaged head is rebuilt from the log (history-head.ts) and
 * the record says so; returns that damage, if any. Call with the target's lock held.
 */
export async function appendHistory(stateDir: string, rec: Omit<HistoryRecord, 'prev'>, maxBytes = HISTORY_MAX_BYTES): Promise<string | undefined> {
  const log = join(stateDir, HISTORY);
  const settled = await settledHead(stateDir, { log: await readText(log), archive: await readText(join(stateDir, HISTORY_ARCHIVE)) });
  let head = settled.head;
  const line = JSON.stringify({ ...bounded(rec), ...(settled.damage === undefined ? {} : { headRebuilt: settled.damage }), prev: head.sha256 }) + '\n';
  const size = await stat(log).then((s) => s.size, (err: unknown) => (isErrno(err, 'ENOENT') ? 0 : Promise.reject(err)));
  if (size > 0 && size + Buffer.byteLength(line) > maxBytes) {
    await rename(log, join(stateDir, HISTORY_ARCHIVE));
    await fsyncDir(stateDir);
    head = { count: 0, sha256: head.sha256, base: head.sha256, archiveBase: head.base ?? GENESIS };
    await writeHead(stateDir, head);
  }
  const fh = await open(log, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  try {
    await fh.write(line);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await writeHead(stateDir, { ...head, count: head.count + 1, sha256: sha(line) });
  return settled.damage;
}

/** Strings a package can influence (paths, error messages naming archive members) cut to FIELD_MAX. */
function bounded(rec: Omit<HistoryRecord, 'prev'>): Omit<HistoryRecord, 'prev'> {
  const cut = (v: string): string => (v.length > FIELD_MAX ? `${v.slice(0, FIELD_MAX)}... (${v.length} characters)` : v);
  return {
    ...rec,
    ...(rec.release === undefined ? {} : { release: cut(rec.release) }),
    ...(rec.package === undefined ? {} : { package: { ...rec.package, file: cut(rec.package.file) } }),
    ...(rec.error === undefined ? {} : { error: { code: cut(rec.error.code), message: cut(rec.error.message) } }),
  };
}

export interface History {
  records: HistoryRecord[];
  /** Empty when the chain is intact and matches the head file. */
  problems: string[];
  /** A file of the history that could not be read or used (history.head, history.log): the first problem names it. */
  damagedFile?: string;
}

/**
 * Read and check the log: every record must name the hash of the one before, the last the
 * head's. The archive of the last rotation comes first; its chain must end where the log's begins.
 * Reads only. Nothing in `.fussy/` makes it throw: a file that cannot be read, a head that is not
 * one (rebuilt from the log for the check, history-head.ts), a line that is not a record are
 * problems, so that status, clean and rollback go on and `fussy history` reports them. The one
 * exception is a file this user may not read: that is no damage but PERMISSION_DENIED.
 */
export async function readHistory(stateDir: string): Promise<History> {
  const problems: string[] = [];
  let damagedFile: string | undefined;
  const text = async (name: string): Promise<string | undefined> => {
    try {
      return await readText(join(stateDir, name));
    } catch (err) {
      if (isPermissionError(err)) throw permissionDenied(err, `cannot read ${join(stateDir, name)}: ${err.code}`, { path: join(stateDir, name), need: 'read' }); // not damage
      if (!isSystemError(err)) throw err;
      damagedFile ??= join(stateDir, name);
      problems.push(`${join(stateDir, name)} cannot be read (${err.code}: ${err.message})`);
      return undefined;
    }
  };
  const log = await text(HISTORY);
  const archive = await text(HISTORY_ARCHIVE);
  const { head, damage } = await settledHead(stateDir, { log, archive });
  if (damage !== undefined) {
    damagedFile ??= join(stateDir, HISTORY_HEAD);
    problems.push(`${damage}: checked against the log as it stands, so records removed from its end cannot be detected; the next install, rollback or clean rebuilds it`);
  }
  const records: HistoryRecord[] = [];
  if (archive !== undefined && head.base !== undefined) {
    const a = checkChain(archive, head.archiveBase ?? GENESIS, `${HISTORY_ARCHIVE} `);
    records.push(...a.records);
    problems.push(...a.problems);
    if (a.last !== head.base) problems.push(`${HISTORY} does not continue ${HISTORY_ARCHIVE} (its first record names another predecessor): a log was replaced or edited`);
  }
  const c = checkChain(log ?? '', head.base ?? GENESIS, '');
  records.push(...c.records);
  problems.push(...c.problems);
  const n = c.lines;
  if (n < head.count) problems.push(`the log has ${n} records but ${head.count} were written: records were removed from the end`);
  else if (n === head.count && c.last !== head.sha256) problems.push('the newest record is not the one fussy wrote last: the log was edited');
  else if (n === head.count + 1) problems.push('the newest record does not follow the one fussy wrote last');
  else if (n > head.count + 1) problems.push(`the log has ${n} records but only ${head.count} were written: records were added`);
  return { records, problems, ...(damagedFile === undefined ? {} : { damagedFile }) };
}

function checkChain(text: string, base: string, label: string): { records: HistoryRecord[]; problems: string[]; lines: number; last: string } {
  const problems: string[] = [];
  const records: HistoryRecord[] = [];
  const lines = text.split('\n');
  const torn = lines.pop(); // '' after the final newline; anything else is a write cut short
  if (torn !== undefined && torn !== '') problems.push(`the last record ${label === '' ? '' : `of ${label}`}is incomplete (a write cut short): ${JSON.stringify(torn.slice(0, 60))}`);
  let prev = base;
  for (const [i, line] of lines.entries()) {
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      problems.push(`${label}record ${i + 1} is not JSON: the log was edited`);
      prev = sha(line + '\n');
      continue;
    }
    if (!isRecord(r)) problems.push(`${label}record ${i + 1} is not a history record (time, action, result): the log was edited`);
    else {
      if (r.prev !== prev) problems.push(`${label}record ${i + 1} does not follow record ${i} (its hash of the previous record differs): the log was edited or records were removed`);
      records.push(r);
    }
    prev = sha(line + '\n');
  }
  return { records, problems, lines: lines.length, last: prev };
}

/** The fields readers rely on (lastEnabled, status, `fussy history`) have their types. */
function isRecord(r: unknown): r is HistoryRecord {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return false;
  const o = r as Record<string, unknown>;
  const optional = (k: string, t: string): boolean => o[k] === undefined || typeof o[k] === t;
  return typeof o.time === 'string' && typeof o.action === 'string' && typeof o.result === 'string' && optional('release', 'string') && optional('durationMs', 'number') && (o.signers === undefined || Array.isArray(o.signers)) && (o.removed === undefined || Array.isArray(o.removed));
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/**
 * Append, but never make the history the reason a transaction fails or reports failure (issue
 * 11): a full, read-only or broken disk under `.fussy/`, or any file of the history that is not
 * what fussy wrote (a directory at its name, ...), is an error of the operating system, reported
 * through `emit`, and the transaction's own outcome stands. A damaged head is rebuilt from the log
 * (history-head.ts) and reported the same way. A bug is still a bug (exit 1).
 */
export async function recordHistory(stateDir: string, rec: Omit<HistoryRecord, 'prev'>, emit: (e: LogEvent) => void): Promise<void> {
  try {
    const damage = await appendHistory(stateDir, rec);
    if (damage !== undefined) emit({ type: 'log', message: `the history is damaged: ${damage}; rebuilt it from ${join(stateDir, HISTORY)} (records removed from its end before now cannot be detected)` });
  } catch (err) {
    if (!isSystemError(err)) throw err;
    emit({ type: 'log', message: `could not add to the history in ${stateDir}: ${err.message}` });
  }
}

/**
 * How a transaction that failed with `err` is recorded (install, rollback and recovery all ask
 * here): a failed activation as the state activate says it left (INSTALL_FAILED_RECOVERED, exit 3;
 * INSTALL_FAILED_UNRECOVERED, exit 4); any other FussyError as `refused` (nothing changed); any
 * other error as `error`, a bug, with code INTERNAL. `otherwise` replaces the last two for a
 * transaction that cannot end as a refusal: recovery rolling an install forward has no earlier
 * state to fall back on, so whatever stops it leaves the device unrecovered.
 */
export function historyResultOf(err: unknown, otherwise?: HistoryRecord['result']): { result: HistoryRecord['result']; error: { code: string; message: string } } {
  const code = err instanceof FussyError ? err.code : 'INTERNAL';
  const result = code === 'INSTALL_FAILED_RECOVERED' ? 'failed-recovered' : code === 'INSTALL_FAILED_UNRECOVERED' ? 'failed-unrecovered' : (otherwise ?? (err instanceof FussyError ? 'refused' : 'error'));
  return { result, error: { code, message: (err as Error).message } };
}

/**
 * When each of `releases` was last made current: from the history (install, rollback, recovery),
 * else its directory's ctime, which rename sets when a release is put in place (releases the
 * original Fussy installed). A release kept after its install failed (a failed post-install) and
 * never enabled since gets -Infinity: the oldest of all.
 */
export async function lastEnabled(target: string, releases: string[], records: HistoryRecord[]): Promise<Map<string, number>> {
  const known = new Map<string, number>();
  for (const r of records) {
    if (r.release === undefined || r.action === 'clean') continue;
    if (r.result === 'ok' || r.result === 'rolled-forward') known.set(r.release, Date.parse(r.time));
    else if (r.result.startsWith('failed') && !known.has(r.release)) known.set(r.release, Number.NEGATIVE_INFINITY);
  }
  const out = new Map<string, number>();
  for (const r of releases) out.set(r, known.get(r) ?? (await lstat(join(target, r))).ctimeMs);
  return out;
}
