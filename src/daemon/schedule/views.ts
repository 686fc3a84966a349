import { basename } from 'node:path';
import type { RunRecord } from '../runs/engine.js';
import { nextFirings } from './expression.js';
import type { JobSpec } from './jobs.js';
import type { JobOutcome } from './notify.js';
import type { Job } from './scheduler.js';
import type { JobState, LastRun } from './store.js';

/** How the scheduler shows a job (`cron ls`, status) and reads a run's end. */

/** A job as `cron ls` shows it. */
export interface JobView {
  name: string;
  origin: JobSpec['origin'];
  schedule: string;
  timezone?: string;
  script?: string;
  command?: string;
  release?: string;
  args: string[];
  enabled: boolean;
  priority: number;
  timeout?: number;
  overlap: JobSpec['overlap'];
  missed: JobSpec['missed'];
  randomDelay: number;
  notify?: string;
  /** The next firings (ISO), as many as asked. */
  next: string[];
  /** Firings of it in progress (random delay, waiting for a slot, running). */
  running: number;
  /** Failed runs in a row. */
  failures: number;
  last?: LastRun;
}

/** A job as `cron ls` shows it: its definition, its next `count` firings, its runs in progress, streak and last run. */
export function jobView(j: Job, o: { state: JobState | undefined; enabled: boolean; running: number; now: Date; count: number; first?: number }): JobView {
  const s = j.spec;
  const { state, enabled, count, now } = o;
  return {
    name: s.name,
    origin: s.origin,
    schedule: s.schedule.text,
    ...(s.schedule.timezone === undefined ? {} : { timezone: s.schedule.timezone }),
    ...(s.script === undefined ? {} : { script: s.script }),
    ...(s.command === undefined || j.releaseDir === undefined ? {} : { command: relativeTo(j.releaseDir, s.command), release: basename(j.releaseDir) }),
    args: s.args,
    enabled,
    priority: s.priority,
    ...(s.timeoutS === undefined ? {} : { timeout: s.timeoutS }),
    overlap: s.overlap,
    missed: s.missed,
    randomDelay: s.randomDelayS,
    ...(s.notify === undefined ? {} : { notify: j.releaseDir === undefined ? s.notify : relativeTo(j.releaseDir, s.notify) }),
    next: enabled && count > 0 ? nexts(s, o.first, now, count) : [],
    running: o.running,
    failures: state?.failures ?? 0,
    ...(state?.last === undefined ? {} : { last: state.last }),
  };
}

/** What a job's run came to, for its streak; undefined when fussyd stopped it (not the job's doing). */
export function outcomeOf(r: Pick<RunRecord, 'status' | 'exitCode' | 'error'>): JobOutcome | undefined {
  switch (r.status) {
    case 'exited':
      return r.exitCode === 0 && r.error === undefined ? 'ok' : 'failed';
    case 'timeout':
      return 'timeout';
    case 'signaled':
      return 'killed';
    case 'not-started':
      return 'not-started';
    default:
      return undefined;
  }
}

export function relativeTo(dir: string, path: string): string {
  return path.startsWith(`${dir}/`) ? path.slice(dir.length + 1) : path;
}

export function tailText(c: { head: Buffer; tail: Buffer }): string {
  const all = c.tail.length > 0 ? Buffer.concat([c.head.subarray(Math.max(0, c.head.length - 4096)), c.tail]) : c.head;
  return all.subarray(Math.max(0, all.length - 4096)).toString('utf8');
}

/** `count` next firings after `now`, starting from the one the loop keeps (`first`) when it has it. */
function nexts(s: JobSpec, first: number | undefined, now: Date, count: number): string[] {
  if (first === undefined || first <= now.getTime()) return nextFirings(s.schedule, now, count).map((d) => d.toISOString());
  return [first, ...(count > 1 ? nextFirings(s.schedule, new Date(first), count - 1).map((d) => d.getTime()) : [])].map((t) => new Date(t).toISOString());
}
