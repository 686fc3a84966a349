import type { RemoteClient } from './client.js';
import { followRun, type RemoteRun } from './runs.js';

/** The schedule's verbs of `fussy remote cron` over one client (docs/daemon.md, "HTTP API"). */

/** A job as the device lists it (daemon/schedule/scheduler.ts, JobView). */
export interface RemoteJob {
  name: string;
  origin: 'operator' | 'firmware';
  schedule: string;
  timezone?: string;
  script?: string;
  command?: string;
  release?: string;
  args: string[];
  enabled: boolean;
  priority: number;
  timeout?: number;
  overlap: string;
  missed: string;
  randomDelay: number;
  notify?: string;
  next: string[];
  running: number;
  failures: number;
  last?: { runId: string; at: string; outcome: string; exitCode?: number };
}

export type Origin = 'operator' | 'firmware';

const jobPath = (name: string, verb?: string, q: Record<string, string | undefined> = {}): string => {
  const query = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined)).toString();
  return `/v1/schedule/${encodeURIComponent(name)}${verb === undefined ? '' : `/${verb}`}${query === '' ? '' : `?${query}`}`;
};

export async function listJobs(c: RemoteClient, count?: number): Promise<{ jobs: RemoteJob[]; problems: string[]; release?: string }> {
  const r = await c.json('GET', `/v1/schedule${count === undefined ? '' : `?count=${count}`}`);
  return { jobs: Array.isArray(r.jobs) ? (r.jobs as RemoteJob[]) : [], problems: Array.isArray(r.problems) ? (r.problems as string[]) : [], ...(typeof r.release === 'string' ? { release: r.release } : {}) };
}

/** Add an operator job (the device checks every field, the schedule and the script). */
export async function addJob(c: RemoteClient, job: Record<string, unknown>): Promise<RemoteJob> {
  const r = await c.json('POST', '/v1/schedule', job);
  return r.job as RemoteJob;
}

export async function removeJob(c: RemoteClient, name: string): Promise<void> {
  await c.json('DELETE', jobPath(name));
}

export async function setJobEnabled(c: RemoteClient, name: string, enabled: boolean, origin?: Origin): Promise<RemoteJob> {
  const r = await c.json('POST', jobPath(name, enabled ? 'enable' : 'disable', { origin }));
  return r.job as RemoteJob;
}

export async function nextFirings(c: RemoteClient, name: string, count: number, origin?: Origin): Promise<{ job: RemoteJob; next: string[] }> {
  const r = await c.json('GET', jobPath(name, 'next', { origin, count: String(count) }));
  return { job: r.job as RemoteJob, next: Array.isArray(r.next) ? (r.next as string[]) : [] };
}

/** Run a job now and wait for its end (its streak and notify count it like a firing). */
export function runJob(c: RemoteClient, name: string, origin: Origin | undefined, onEvent?: (e: Record<string, unknown>) => void): Promise<RemoteRun> {
  return followRun(c, jobPath(name, 'run', { origin }), {}, onEvent);
}
