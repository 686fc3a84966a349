import { realpathSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { FussyError, isErrno, isSystemError } from '../../errors.js';
import { readSmallFile } from '../../util/read-small-file.js';
import { checkTrustedPath } from '../../util/trusted-path.js';
import { parseSchedule, type Schedule } from './expression.js';
import type { MissedPolicy, OverlapPolicy } from './loop.js';

/**
 * Job definitions (docs/daemon.md, "Jobs"): an operator's job (stored by fussyd, runs a stored
 * script) or a firmware's (declared by the current release in `etc/fussy/jobs.json`, runs a
 * program of the release's tree). Both are checked here, field by field, with errors that name
 * the job and the field.
 */
export interface JobSpec {
  name: string;
  origin: 'operator' | 'firmware';
  schedule: Schedule;
  /** Operator jobs: the stored script's name or id. */
  script?: string;
  /** Firmware jobs: the program, an absolute path inside the release (resolved from `command`). */
  command?: string;
  args: string[];
  enabled: boolean;
  priority: number;
  /** The run's time limit (s); undefined: fussyd's default. */
  timeoutS?: number;
  overlap: OverlapPolicy;
  missed: MissedPolicy;
  randomDelayS: number;
  /** Run when the job fails and when it recovers: a stored script (operator jobs) or a release path (firmware jobs). */
  notify?: string;
}

/** Where a firmware's own jobs are, relative to the release root. */
export const FIRMWARE_JOBS_FILE = 'etc/fussy/jobs.json';
const MAX_FILE_BYTES = 1024 * 1024;
const MAX_JOBS = 256;
const MAX_ARGS = 64;
/** The args of a run as JSON at most (the run engine's bound: a job must be able to run). */
const MAX_ARGS_JSON = 4096;
/** A job's time limit at most, unless the device's max-run-timeout is lower. */
const MAX_TIMEOUT_S = 7 * 24 * 3600;
/** Any other string field: a schedule, a time zone, a script name, a path (PATH_MAX). */
const MAX_STRING_BYTES = 4096;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const COMMON = ['name', 'schedule', 'args', 'timezone', 'enabled', 'priority', 'timeout', 'overlap', 'missed', 'randomDelay', 'notify'];
const FIELDS = { operator: [...COMMON, 'script'], firmware: [...COMMON, 'command'] };

function bad(job: string, why: string, hint: string): FussyError {
  return new FussyError('BAD_JOB', `job ${job}: ${why}`, { hint, details: { job } });
}

/** What the device allows a run (fussyd.conf): a job that could never run is refused when it is read. */
export interface JobLimits {
  /** max-run-timeout, seconds. */
  maxTimeoutS?: number;
}

/**
 * Check one job definition (the JSON of jobs.json's entries or of `cron add`). Throws BAD_JOB or
 * BAD_SCHEDULE naming the job and the field. `stored`: read back (schedule.json, a release's
 * jobs.json), so a schedule whose years have passed is over, not wrong.
 */
export function parseJob(raw: unknown, o: { origin: JobSpec['origin']; releaseDir?: string; now?: Date; stored?: boolean; limits?: JobLimits }): JobSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('(unnamed)', 'is not a JSON object', 'each job is an object with at least "name" and "schedule"');
  const r = raw as Record<string, unknown>;
  const name = typeof r.name === 'string' && NAME.test(r.name) ? r.name : undefined;
  if (name === undefined) throw bad(JSON.stringify(r.name ?? null).slice(0, 80), 'has no valid "name"', 'a name is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  const unknown = Object.keys(r).filter((k) => !FIELDS[o.origin].includes(k));
  if (unknown.length > 0) throw bad(name, `has the unknown field${unknown.length === 1 ? '' : 's'} ${unknown.map((k) => `"${k.slice(0, 40)}"`).join(', ')}`, `the fields of a${o.origin === 'firmware' ? ' firmware' : 'n operator'} job are ${FIELDS[o.origin].join(', ')}`);
  const str = (k: string): string | undefined => {
    const v = r[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v === '' || Buffer.byteLength(v) > MAX_STRING_BYTES) throw bad(name, `"${k}" is not a non-empty string of at most ${MAX_STRING_BYTES} bytes`, `give "${k}" as a string`);
    return v;
  };
  const int = (k: string, min: number, max: number): number | undefined => {
    const v = r[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(name, `"${k}" is not a whole number from ${min} to ${max}`, `give "${k}" as a number in that range`);
    return v;
  };
  const oneOf = <T extends string>(k: string, values: readonly T[], dflt: T): T => {
    const v = r[k] ?? dflt;
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) throw bad(name, `"${k}" is not one of ${values.join(', ')}`, `give "${k}" as one of ${values.join(', ')}`);
    return v as T;
  };
  const text = str('schedule');
  if (text === undefined) throw bad(name, 'has no "schedule"', 'give five cron fields and an optional year, e.g. "30 2 * * *"');
  const timezone = str('timezone');
  const schedule = parseSchedule(text, { timezone, now: o.now, ended: o.stored === true ? 'accept' : 'refuse' });
  const argsRaw = r.args ?? [];
  if (!Array.isArray(argsRaw) || argsRaw.length > MAX_ARGS || !argsRaw.every((a) => typeof a === 'string' && !a.includes('\0')) || JSON.stringify(argsRaw).length > MAX_ARGS_JSON)
    throw bad(name, `"args" is not a list of at most ${MAX_ARGS} strings without NUL, at most ${MAX_ARGS_JSON} bytes as JSON`, 'give "args" as a list of strings; pass large inputs as a data file');
  if (r.enabled !== undefined && typeof r.enabled !== 'boolean') throw bad(name, '"enabled" is not true or false', 'give "enabled" as true or false');
  const spec: JobSpec = {
    name,
    origin: o.origin,
    schedule,
    args: argsRaw as string[],
    enabled: (r.enabled as boolean | undefined) ?? true,
    priority: int('priority', -100, 100) ?? 0,
    overlap: oneOf('overlap', ['skip', 'allow'] as const, 'skip'),
    missed: oneOf('missed', ['skip', 'run-once'] as const, 'skip'),
    randomDelayS: int('randomDelay', 0, 24 * 3600) ?? 0,
  };
  const maxTimeoutS = Math.min(MAX_TIMEOUT_S, o.limits?.maxTimeoutS ?? MAX_TIMEOUT_S);
  const timeoutS = int('timeout', 1, maxTimeoutS);
  if (timeoutS !== undefined) spec.timeoutS = timeoutS;
  const notify = str('notify');
  if (o.origin === 'operator') {
    const script = str('script');
    if (script === undefined) throw bad(name, 'has no "script"', 'name a stored script (fussy remote ls) by its name or id');
    spec.script = script;
    if (notify !== undefined) spec.notify = notify;
  } else {
    const command = str('command');
    if (command === undefined) throw bad(name, 'has no "command"', 'give the program as a path relative to the release root, e.g. "usr/lib/maint/rotate-logs"');
    if (o.releaseDir === undefined) throw new Error('parseJob: a firmware job needs its releaseDir');
    spec.command = releasePath(name, 'command', command, o.releaseDir);
    if (notify !== undefined) spec.notify = releasePath(name, 'notify', notify, o.releaseDir);
  }
  return spec;
}

/**
 * A program of the release, named relative to its root: no absolute path, no `..`, and what it
 * resolves to (symlinks followed) stays inside the release, is an executable regular file, and
 * is a trusted path (util/trusted-path.ts: no one but root or fussyd's user can change it).
 */
function releasePath(job: string, field: string, rel: string, releaseDir: string): string {
  const hint = `give "${field}" as a path relative to the release root, inside it, of an executable file`;
  if (isAbsolute(rel) || rel.split('/').includes('..') || rel.includes('\0')) throw bad(job, `"${field}" ${JSON.stringify(rel.slice(0, 200))} is not a path inside the release`, hint);
  let real: string;
  let root: string;
  try {
    root = realpathSync(releaseDir);
    real = realpathSync(join(releaseDir, rel));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw bad(job, `"${field}" ${rel} does not exist in the release`, hint);
    throw bad(job, `"${field}" ${rel} cannot be resolved: ${(err as Error).message}`, hint);
  }
  const inside = relative(root, real);
  if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) throw bad(job, `"${field}" ${rel} leads outside the release (to ${real})`, hint);
  const st = statSync(real);
  if (!st.isFile() || (st.mode & 0o111) === 0) throw bad(job, `"${field}" ${rel} is not an executable file`, hint);
  // fussyd runs it later by this path: nobody but root (and fussyd's user) may be able to change
  // what the path names meanwhile (a directory of the release owned by a local user, or writable
  // by group or others, would let that user swap the program).
  checkTrustedPath(real, { what: `job ${job}'s ${field} (${rel})`, codes: { untrusted: 'BAD_JOB', missing: 'BAD_JOB' } });
  return real;
}

export interface FirmwareJobs {
  jobs: JobSpec[];
  /** What was wrong: the file as a whole (then no jobs), or single entries (left out, the others kept). */
  problems: string[];
}

/**
 * The jobs a release declares in etc/fussy/jobs.json: `{"jobs": [...]}`. Never throws for what
 * the file holds: a file that cannot be read or parsed gives no jobs and one problem, an entry
 * that is wrong is left out with its problem and the others kept (a typo in one job must not
 * stop a firmware's other maintenance). No file: no jobs, no problems.
 */
export function readFirmwareJobs(releaseDir: string, now?: Date, limits?: JobLimits): FirmwareJobs {
  const file = join(releaseDir, FIRMWARE_JOBS_FILE);
  const read = readSmallFile(file, MAX_FILE_BYTES);
  if (read === undefined) return { jobs: [], problems: [] };
  if ('problem' in read) return { jobs: [], problems: [`${file} ${read.problem}`] };
  // The file says what fussyd runs, as root by default: like a program it names, nobody but root
  // (or fussyd's user) may be able to change it, or a local user owning a directory the firmware
  // ships (etc/fussy, or one above it) could declare a job running a shell of the release.
  try {
    checkTrustedPath(file, { what: 'the firmware\'s jobs file', codes: { untrusted: 'BAD_JOB', missing: 'BAD_JOB' } });
  } catch (err) {
    if (!(err instanceof FussyError)) throw err;
    return { jobs: [], problems: [`${err.message}: its jobs are not loaded`] };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(read.data.toString('utf8'));
  } catch (err) {
    return { jobs: [], problems: [`${file} is not valid JSON: ${(err as Error).message}`] };
  }
  const list = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as { jobs?: unknown }).jobs : undefined;
  if (!Array.isArray(list)) return { jobs: [], problems: [`${file} has no "jobs" list (expected {"jobs": [...]})`] };
  if (list.length > MAX_JOBS) return { jobs: [], problems: [`${file} declares ${list.length} jobs, more than ${MAX_JOBS}`] };
  const jobs: JobSpec[] = [];
  const problems: string[] = [];
  for (const [i, entry] of list.entries()) {
    try {
      const job = parseJob(entry, { origin: 'firmware', releaseDir, now, stored: true, limits });
      if (jobs.some((j) => j.name === job.name)) throw bad(job.name, 'is declared twice', 'give each job its own name');
      jobs.push(job);
    } catch (err) {
      if (!(err instanceof FussyError)) throw err;
      problems.push(`${file}, entry ${i + 1}: ${err.message}`);
    }
  }
  return { jobs, problems };
}

/** The current release's jobs: its directory and name, the signature it was read at (currentSignature), what it declares. */
export interface CurrentJobs extends FirmwareJobs {
  release?: string;
  dir?: string;
  seen: string;
}

/** The jobs of the release `target/current` points at (none when there is none); never throws for what the release holds. */
export function currentJobs(target: string | undefined, now: Date, limits?: JobLimits): CurrentJobs {
  const seen = currentSignature(target);
  if (seen === '') return { seen, jobs: [], problems: [] };
  if (seen.startsWith('unreadable ')) return { seen, jobs: [], problems: [`${join(target ?? '', 'current')} cannot be resolved (${seen.slice('unreadable '.length)}): the firmware's jobs are not loaded`] };
  const dir = seen.slice(0, seen.lastIndexOf('\0'));
  try {
    return { release: basename(dir), dir, seen, ...readFirmwareJobs(dir, now, limits) };
  } catch (err) {
    if (!isSystemError(err)) throw err;
    return { release: basename(dir), dir, seen, jobs: [], problems: [`${join(dir, FIRMWARE_JOBS_FILE)} cannot be read: ${err.message}`] };
  }
}

/**
 * The release `current` points at and its inode ("" when there is none): a swap, even to a
 * release of the same name made again, changes it. A `current` that cannot be resolved (a link
 * loop, EIO) is `unreadable CODE`: a problem to report, never fussyd's end.
 */
export function currentSignature(target: string | undefined): string {
  if (target === undefined) return '';
  try {
    const dir = realpathSync(join(target, 'current'));
    return `${dir}\0${statSync(dir).ino}`;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return '';
    if (isSystemError(err)) return `unreadable ${err.code ?? err.message}`;
    throw err;
  }
}
