import { constants } from 'node:os';
import { FussyError } from '../errors.js';
import type { RemoteClient } from './client.js';

/** Running scripts and reading the history on a device (docs/daemon.md, "HTTP API"). */

/** One stream of a run's output as the device sends it. */
export interface RemoteOutput {
  encoding: 'utf8' | 'base64';
  head: string;
  tail: string;
  totalBytes: number;
  truncated: boolean;
}

/** A run as the device records it (runs/records.ts's summary, with the output once it ended). */
export interface RemoteRun {
  runId: string;
  queuedAt: string;
  startedAt?: string;
  endedAt?: string;
  trigger: { kind: 'user'; cn: string; fingerprint: string } | { kind: 'schedule'; job: string; origin?: string; reason?: string; cn?: string } | { kind: 'notify'; job: string; origin?: string; event: string };
  /** A firmware job's runs: the release its program is in. */
  release?: string;
  script: { name: string; id: string };
  args: string[];
  status: string;
  exitCode?: number;
  signal?: string;
  timedOut?: boolean;
  durationMs?: number;
  startError?: string;
  /** skipped, missed, invalid: why the scheduler did not run it. */
  reason?: string;
  result?: unknown;
  error?: string | { message: string; stack?: string };
  stdout?: RemoteOutput | { totalBytes: number; truncated: boolean };
  stderr?: RemoteOutput | { totalBytes: number; truncated: boolean };
}

export interface ExecRequest {
  /** A script name or id on the device. */
  script: string;
  args: string[];
  timeoutSec?: number;
  /** Each event before the result (queued, started, running). */
  onEvent?: (e: Record<string, unknown>) => void;
}

/** Run a script on the device and wait for its end; the result record. */
export function execRun(c: RemoteClient, o: ExecRequest): Promise<RemoteRun> {
  return followRun(c, '/v1/runs', { script: o.script, args: o.args, ...(o.timeoutSec === undefined ? {} : { timeoutSec: o.timeoutSec }) }, o.onEvent);
}

/** POST to an endpoint that answers a run as NDJSON (`/v1/runs`, a job's `/run`) and wait for the run's end; the result record. */
export async function followRun(c: RemoteClient, path: string, body: unknown, onEvent?: (e: Record<string, unknown>) => void): Promise<RemoteRun> {
  let result: RemoteRun | undefined;
  let runId: string | undefined;
  let failed: Record<string, unknown> | undefined;
  try {
    await c.ndjson('POST', path, body, (e) => {
      if (typeof e.runId === 'string') runId = e.runId;
      if (e.type === 'result') {
        const { type: _type, ...r } = e;
        result = r as unknown as RemoteRun;
      } else if (e.type === 'error') failed = e;
      else onEvent?.(e);
    });
  } catch (err) {
    // The run is the device's, not the connection's: it goes on and is recorded.
    if (runId === undefined || !(err instanceof FussyError) || err.code !== 'UNREACHABLE') throw err;
    throw new FussyError('UNREACHABLE', `${err.message} (run ${runId} had started)`, { cause: err, hint: `the run goes on without this client; fussy remote history --json shows how run ${runId} ended`, details: { runId } });
  }
  if (result !== undefined) return result;
  const why = failed === undefined ? 'the answer ended before the result' : String((failed.error as { message?: unknown } | undefined)?.message);
  throw new FussyError('REMOTE_FAILED', `${c.host}: run ${runId ?? '(no id)'}: ${why}`, { hint: runId === undefined ? undefined : `fussy remote history --json shows how run ${runId} ended` });
}

/**
 * The exit status `fussy remote exec` gives a run (docs/commands.md): the script's own; 128 + the
 * signal's number for a signal (a shell's convention); 124 for the time limit (timeout(1)); 2 when
 * it could not start; 69 when fussyd stopped before it ended (interrupted, cancelled, abandoned).
 */
export function runExitStatus(r: Pick<RemoteRun, 'status' | 'exitCode' | 'signal'>): number {
  switch (r.status) {
    case 'exited':
      return r.exitCode ?? 1;
    case 'timeout':
      return 124;
    case 'signaled': {
      const n = (constants.signals as Record<string, number>)[r.signal ?? ''];
      return n === undefined ? 1 : 128 + n;
    }
    case 'not-started':
      return 2;
    default:
      return 69;
  }
}

/** The bytes of one stream: head, then tail (the device drops what lies between when truncated). */
export function outputBytes(o: RemoteOutput): { head: Buffer; tail: Buffer } {
  return { head: Buffer.from(o.head, o.encoding), tail: Buffer.from(o.tail, o.encoding) };
}

export async function listRuns(c: RemoteClient, q: { script?: string; since?: Date; limit?: number }): Promise<RemoteRun[]> {
  const p = new URLSearchParams();
  if (q.script !== undefined) p.set('script', q.script);
  if (q.since !== undefined) p.set('since', q.since.toISOString());
  if (q.limit !== undefined) p.set('limit', String(q.limit));
  const query = p.toString();
  const r = await c.json('GET', `/v1/runs${query === '' ? '' : `?${query}`}`);
  return Array.isArray(r.runs) ? (r.runs as RemoteRun[]) : [];
}

export async function getRun(c: RemoteClient, runId: string): Promise<RemoteRun> {
  const r = await c.json('GET', `/v1/runs/${encodeURIComponent(runId)}`);
  return r.run as RemoteRun;
}

/** `--since T`: an ISO 8601 time, or a duration back from `now` (`90m`, `2h`, `7d`, `30s`). */
export function parseSince(text: string, now: Date): Date {
  const ago = /^([0-9]+)([smhd])$/.exec(text);
  if (ago !== null) return new Date(now.getTime() - Number(ago[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[ago[2] as 's' | 'm' | 'h' | 'd'] * 1000);
  const t = new Date(text);
  if (Number.isNaN(t.getTime())) throw new FussyError('USAGE', `--since ${JSON.stringify(text)} is neither a time (2025-01-31, 2025-01-31T12:00:00Z) nor a duration back (90m, 2h, 7d)`);
  return t;
}
