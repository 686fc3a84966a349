import { FussyError } from '../errors.js';
import { readJson, requireType, sendJson } from './http-io.js';
import type { Route } from './router.js';
import type { Ctx } from './routes.js';
import { streamRun } from './run-routes.js';
import type { JobSpec } from './schedule/jobs.js';

/**
 * The schedule's endpoints (docs/daemon.md, "HTTP API"; `fussy remote cron`): viewers read,
 * operators run, enable and disable, admins add and remove. A job is named by its name; when an
 * operator job and a firmware job share one, the operator's is meant unless `?origin=firmware`.
 */
export const SCHEDULE_ROUTES: ReadonlyArray<Route<Ctx>> = [
  { method: 'GET', path: '/v1/schedule', action: 'cron.ls', need: 'viewer', query: ['count'], handle: list },
  { method: 'POST', path: '/v1/schedule', action: 'cron.add', need: 'admin', handle: add },
  { method: 'DELETE', path: '/v1/schedule/:name', action: 'cron.rm', need: 'admin', handle: remove },
  { method: 'POST', path: '/v1/schedule/:name/enable', action: 'cron.enable', need: 'operator', query: ['origin'], handle: (c) => enable(c, true) },
  { method: 'POST', path: '/v1/schedule/:name/disable', action: 'cron.disable', need: 'operator', query: ['origin'], handle: (c) => enable(c, false) },
  { method: 'POST', path: '/v1/schedule/:name/run', action: 'cron.run', need: 'operator', query: ['origin'], handle: run },
  { method: 'GET', path: '/v1/schedule/:name/next', action: 'cron.next', need: 'viewer', query: ['origin', 'count'], handle: next },
];

async function list(c: Ctx): Promise<void> {
  sendJson(c.res, 200, c.scheduler.list(count(c, 3)));
}

async function add(c: Ctx): Promise<void> {
  requireType(c.req, 'application/json');
  const body = await readJson(c.req);
  const job = await c.scheduler.add(body);
  await c.note('cron.added', { job: job.name, schedule: job.schedule, script: job.script ?? null, args: job.args });
  sendJson(c.res, 201, { job });
}

async function remove(c: Ctx): Promise<void> {
  const name = c.params.name as string;
  await c.scheduler.remove(name);
  await c.note('cron.removed', { job: name });
  sendJson(c.res, 200, { removed: name });
}

async function enable(c: Ctx, enabled: boolean): Promise<void> {
  const job = await c.scheduler.setEnabled(c.params.name as string, enabled, origin(c));
  await c.note(enabled ? 'cron.enabled' : 'cron.disabled', { job: job.name, origin: job.origin });
  sendJson(c.res, 200, { job });
}

async function run(c: Ctx): Promise<void> {
  const { job, submitted } = c.scheduler.runNow(c.params.name as string, c.id.cn, origin(c));
  const named = { runId: submitted.runId, job: job.name, origin: job.origin, script: job.script ?? job.command ?? '' };
  void c.note('cron.run', named);
  await streamRun(c, submitted, named);
}

async function next(c: Ctx): Promise<void> {
  sendJson(c.res, 200, c.scheduler.next(c.params.name as string, count(c, 10), origin(c)));
}

function origin(c: Ctx): JobSpec['origin'] | undefined {
  const o = c.query.get('origin');
  if (o === null) return undefined;
  if (o === 'operator' || o === 'firmware') return o;
  throw new FussyError('BAD_REQUEST', '?origin= is operator or firmware', { details: { status: 400 } });
}

/** `?count=N`: 1 to 100. */
function count(c: Ctx, dflt: number): number {
  const t = c.query.get('count');
  if (t === null) return dflt;
  const n = Number(t);
  if (!/^[0-9]{1,3}$/.test(t) || n < 1 || n > 100) throw new FussyError('BAD_REQUEST', '?count= is a whole number from 1 to 100', { details: { status: 400 } });
  return n;
}
