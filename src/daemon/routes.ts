import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { status } from '../index.js';
import { FussyError } from '../errors.js';
import type { Identity, Role } from './auth.js';
import type { DaemonConfig } from './config.js';
import type { DataStore } from './data.js';
import { checkDeclaredLength, readJson, requireType, sendJson } from './http-io.js';
import { Router, type Params } from './router.js';
import { runGet, runPost, runsList } from './run-routes.js';
import type { RunEngine } from './runs/engine.js';
import type { Scheduler } from './schedule/scheduler.js';
import { SCHEDULE_ROUTES } from './schedule-routes.js';
import { scriptGet, scriptPut, scriptRemove, scriptsList } from './script-routes.js';
import type { ScriptStore } from './scripts.js';
import type { Log } from './server.js';
import { UPLOAD_ROUTES } from './routes-uploads.js';
import type { UploadService } from './upload-service.js';

/** What a handler gets: the request, the verified caller, its parameters, the daemon's parts. */
export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  id: Identity;
  roles: Role[];
  params: Params;
  query: URLSearchParams;
  config: DaemonConfig;
  data: DataStore;
  scripts: ScriptStore;
  engine: RunEngine;
  /** An audit event line for what this request did (audit.ts), after its decision line. */
  note: (event: string, detail: Record<string, unknown>) => Promise<void>;
  log: Log;
  uploads: UploadService;
  scheduler: Scheduler;
}

/**
 * The route table (docs/daemon.md, "HTTP API"). The seam for what comes next: scripts, runs and
 * uploads add their routes here (`router.add(...)`), each with its action for the audit log and
 * the least role that may call it.
 */
export function buildRouter(): Router<Ctx> {
  return new Router<Ctx>().add(
    { method: 'GET', path: '/v1/whoami', action: 'whoami', need: 'any', handle: whoami },
    { method: 'GET', path: '/v1/status', action: 'status', need: 'viewer', handle: async (c) => sendJson(c.res, 200, { ...(await status({ target: c.config.target })), schedule: c.scheduler.status() }) },
    { method: 'GET', path: '/v1/data', action: 'data.ls', need: 'viewer', handle: async (c) => sendJson(c.res, 200, { files: await c.data.list() }) },
    { method: 'GET', path: '/v1/data/:name', action: 'data.get', need: 'viewer', handle: dataGet },
    { method: 'PUT', path: '/v1/data/:name', action: 'data.put', need: 'operator', query: ['overwrite'], handle: dataPut },
    { method: 'POST', path: '/v1/data/:name/move', action: 'data.mv', need: 'operator', handle: dataMove },
    { method: 'DELETE', path: '/v1/data/:name', action: 'data.rm', need: 'operator', handle: dataRemove },
    { method: 'GET', path: '/v1/scripts', action: 'scripts.ls', need: 'viewer', handle: scriptsList },
    { method: 'GET', path: '/v1/scripts/:name', action: 'scripts.get', need: 'viewer', handle: scriptGet },
    { method: 'PUT', path: '/v1/scripts/:name', action: 'scripts.put', need: 'admin', handle: scriptPut },
    { method: 'DELETE', path: '/v1/scripts/:name', action: 'scripts.rm', need: 'admin', handle: scriptRemove },
    { method: 'POST', path: '/v1/runs', action: 'runs.start', need: 'operator', handle: runPost },
    { method: 'GET', path: '/v1/runs', action: 'runs.ls', need: 'viewer', query: ['script', 'since', 'limit'], handle: runsList },
    { method: 'GET', path: '/v1/runs/:id', action: 'runs.get', need: 'viewer', handle: runGet },
    ...UPLOAD_ROUTES,
    ...SCHEDULE_ROUTES,
  );
}

async function whoami(c: Ctx): Promise<void> {
  sendJson(c.res, 200, { cn: c.id.cn, fingerprint: c.id.fingerprint, serial: c.id.serial, issuer: c.id.issuer, roles: c.roles });
}

async function dataGet(c: Ctx): Promise<void> {
  const f = await c.data.read(c.params.name as string);
  c.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': f.size, 'last-modified': new Date(f.mtime).toUTCString(), 'cache-control': 'no-store' });
  await pipeline(f.stream, c.res);
}

async function dataPut(c: Ctx): Promise<void> {
  requireType(c.req, 'application/octet-stream');
  const name = c.params.name as string;
  checkDeclaredLength(c.req, c.config.maxDataBytes, `data file ${name}`);
  const r = await c.data.write(name, c.req, { overwrite: flag(c.query, 'overwrite'), maxBytes: c.config.maxDataBytes });
  sendJson(c.res, 201, r);
}

async function dataMove(c: Ctx): Promise<void> {
  requireType(c.req, 'application/json');
  const body = await readJson(c.req);
  const to = body.to;
  const overwrite = body.overwrite ?? false;
  if (typeof to !== 'string' || typeof overwrite !== 'boolean') throw new FussyError('BAD_REQUEST', 'the body is not {"to": NAME, "overwrite": true|false}', { details: { status: 400 } });
  await c.data.move(c.params.name as string, to, overwrite);
  sendJson(c.res, 200, { from: c.params.name, to });
}

async function dataRemove(c: Ctx): Promise<void> {
  await c.data.remove(c.params.name as string);
  sendJson(c.res, 200, { removed: c.params.name });
}

/** `?overwrite=1`: 1/true or 0/false, nothing else. */
function flag(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  if (v === null || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true') return true;
  throw new FussyError('BAD_REQUEST', `?${name}= takes 1 or 0`, { details: { status: 400 } });
}
