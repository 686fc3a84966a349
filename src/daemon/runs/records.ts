/**
 * Who or what asked for a run: an operator (exec), the scheduler (a job's firing; `reason`
 * manual: an operator's `cron run`, `cn` names them), or a job's notify command.
 */
export type Trigger =
  | { kind: 'user'; cn: string; fingerprint: string }
  | { kind: 'schedule'; job: string; origin?: 'operator' | 'firmware'; reason?: 'schedule' | 'missed' | 'manual'; scheduledAt?: string; cn?: string }
  | { kind: 'notify'; job: string; origin?: 'operator' | 'firmware'; event: 'failure' | 'recovery' };

/** FUSSY_CALLER of a run: the operator's CN, `schedule:JOB` or `notify:JOB`. */
export function callerOf(t: Trigger): string {
  return t.kind === 'user' ? t.cn : `${t.kind}:${t.job}`;
}

/** Written when a run is submitted (it may wait in the queue). */
export interface QueuedRecord {
  type: 'queued';
  runId: string;
  time: string;
  trigger: Trigger;
  /** A stored script; for a firmware job's program: its path relative to the release root, and no id. */
  script: { name: string; id: string };
  /** A firmware job's program: the release it belongs to. */
  release?: string;
  args: string[];
  priority: number;
  timeoutMs: number;
}

/** Written as the run's leader starts: what identifies its process group later (orphans.ts). */
export interface StartRecord {
  type: 'start';
  runId: string;
  time: string;
  waitMs: number;
  pid: number;
  pidStart: string;
  bootId: string;
}

/**
 * How a run ended. exited / signaled / timeout: it ran to an end; not-started: it could not be
 * started (startError); interrupted: fussyd stopped it (close); cancelled: it never left the
 * queue; abandoned: fussyd went away during it, found at the next start. The scheduler records
 * what it decided not to run (`reason` says why): skipped (a firing while the job's previous run
 * was in progress), missed (firings while fussyd or the device was down or the clock jumped),
 * invalid (a firmware's jobs file, or an entry of it, that was refused).
 */
export type EndStatus = 'exited' | 'signaled' | 'timeout' | 'not-started' | 'interrupted' | 'cancelled' | 'abandoned' | 'skipped' | 'missed' | 'invalid';

export interface StreamSize {
  totalBytes: number;
  truncated: boolean;
}

/** A run's output as stored, in its end record (small) or in runs/out/RUNID.json: head and tail in base64. */
export interface StoredOutput {
  stdout: StoredStream;
  stderr: StoredStream;
  result?: unknown;
  error?: { message: string; stack?: string };
}

export interface StoredStream {
  head: string;
  tail: string;
  totalBytes: number;
  truncated: boolean;
}

export interface EndRecord {
  type: 'end';
  runId: string;
  time: string;
  status: EndStatus;
  exitCode?: number;
  signal?: string;
  timedOut?: boolean;
  startError?: string;
  /** skipped, missed, invalid: why the scheduler did not run it. */
  reason?: string;
  durationMs?: number;
  /** The js/Viri return value when its JSON is small (RESULT_INLINE); the whole of it is in the output file. */
  result?: unknown;
  resultInFile?: boolean;
  /** The js/Viri exception, its message cut at 4 KiB (the stack is in the output file). */
  error?: string;
  stdout?: StreamSize;
  stderr?: StreamSize;
  /** The output file (runs/out/RUNID.json), relative to the runs directory; or the output itself, when small (history.ts). */
  outputFile?: string;
  output?: StoredOutput;
  /** abandoned: processes of its group that were still running and were killed. */
  killed?: number;
}

export type HistoryRecord = QueuedRecord | StartRecord | EndRecord;

/** One run as the history shows it: its records merged. */
export interface RunSummary extends Omit<QueuedRecord, 'type' | 'time'>, Partial<Omit<StartRecord, 'type' | 'time' | 'runId'>>, Partial<Omit<EndRecord, 'type' | 'time' | 'runId' | 'status' | 'output'>> {
  queuedAt: string;
  startedAt?: string;
  endedAt?: string;
  status: EndStatus | 'queued' | 'running';
}

/** A run's records, in the order written. */
export interface RunRecords {
  queued: QueuedRecord;
  start?: StartRecord;
  end?: EndRecord;
}

export function summarize(r: RunRecords): RunSummary {
  const { type: _q, time: queuedAt, ...queued } = r.queued;
  const { type: _s, time: startedAt, runId: _sr, ...start } = r.start ?? { type: 'start', time: undefined, runId: '' };
  const { type: _e, time: endedAt, runId: _er, status, output: _o, ...end } = r.end ?? { type: 'end', time: undefined, runId: '', status: r.start === undefined ? ('queued' as const) : ('running' as const) };
  return { ...queued, ...start, ...end, queuedAt, status, ...(startedAt === undefined ? {} : { startedAt }), ...(endedAt === undefined ? {} : { endedAt }) };
}
