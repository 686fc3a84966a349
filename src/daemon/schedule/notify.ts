/**
 * When a job's notify command runs (docs/daemon.md, "Notify"): DPythOS's "correct, and say so
 * when that fails". A job's runs make a streak of failures; the notify command runs at the first
 * failure of a streak and at the first success after one (the recovery), not at every failure
 * (a job failing every minute would otherwise page someone every minute); the streak's length
 * is in the job's status. A notify run is never itself notified about: its failure is recorded
 * in the history, and that is all.
 */
export type JobOutcome = 'ok' | 'failed' | 'timeout' | 'killed' | 'not-started';

export interface Streak {
  /** Failed runs in a row; 0 after a success. */
  failures: number;
}

/** The streak after a run, and whether to notify (and why). */
export function afterRun(s: Streak, outcome: JobOutcome): { streak: Streak; notify?: 'failure' | 'recovery' } {
  if (outcome === 'ok') return s.failures > 0 ? { streak: { failures: 0 }, notify: 'recovery' } : { streak: s };
  const failures = s.failures + 1;
  return failures === 1 ? { streak: { failures }, notify: 'failure' } : { streak: { failures } };
}

export interface NotifyInput {
  job: string;
  event: 'failure' | 'recovery';
  outcome: JobOutcome;
  exitStatus?: number;
  signal?: string;
  runId: string;
  /** The failures in a row before this event (at a recovery: the streak that ended). */
  failures: number;
  /** The end of the run's output (stdout then stderr), at most TAIL_BYTES each. */
  stdoutTail: string;
  stderrTail: string;
}

export const TAIL_BYTES = 4096;

/** What the notify command gets: the same facts in its environment (FUSSY_NOTIFY_*) and as one JSON object on stdin. */
export function notifyPayload(n: NotifyInput): { env: Record<string, string>; stdin: Buffer } {
  const cut = (s: string): string => {
    const b = Buffer.from(s, 'utf8');
    return b.length <= TAIL_BYTES ? s : b.subarray(b.length - TAIL_BYTES).toString('utf8');
  };
  const body = { ...n, stdoutTail: cut(n.stdoutTail), stderrTail: cut(n.stderrTail) };
  const env: Record<string, string> = {
    FUSSY_NOTIFY_JOB: n.job,
    FUSSY_NOTIFY_EVENT: n.event,
    FUSSY_NOTIFY_OUTCOME: n.outcome,
    FUSSY_NOTIFY_RUN_ID: n.runId,
    FUSSY_NOTIFY_FAILURES: String(n.failures),
    // The environment holds no NUL; the full tails are on stdin.
    FUSSY_NOTIFY_OUTPUT_TAIL: cut(`${body.stdoutTail}${body.stderrTail}`).replaceAll('\0', ''),
  };
  if (n.exitStatus !== undefined) env.FUSSY_NOTIFY_EXIT_STATUS = String(n.exitStatus);
  if (n.signal !== undefined) env.FUSSY_NOTIFY_SIGNAL = n.signal;
  return { env, stdin: Buffer.from(`${JSON.stringify(body)}\n`) };
}
