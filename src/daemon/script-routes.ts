import { pipeline } from 'node:stream/promises';
import { FussyError } from '../errors.js';
import { checkDeclaredLength, requireType, sendJson } from './http-io.js';
import type { Ctx } from './routes.js';

/**
 * The script endpoints (docs/daemon.md, "HTTP API"): list and read for viewers, store and
 * remove for admins (storing a script is running code as run-as). A put streams the body into
 * the store under max-script-bytes (scripts.ts hashes it on the way) and records the id it got
 * in the audit log, the id the run history will name.
 */

export async function scriptsList(c: Ctx): Promise<void> {
  sendJson(c.res, 200, { scripts: c.scripts.list() });
}

/** The bytes of a name's current version, or of any id ever stored. */
export async function scriptGet(c: Ctx): Promise<void> {
  const s = c.scripts.resolve(c.params.name as string);
  const stream = c.scripts.open(s.id);
  c.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': s.size, 'cache-control': 'no-store', 'fussy-script-id': s.id, 'fussy-script-name': s.name });
  await pipeline(stream, c.res);
}

export async function scriptPut(c: Ctx): Promise<void> {
  requireType(c.req, 'application/octet-stream');
  const name = c.params.name as string;
  checkDeclaredLength(c.req, c.config.maxScriptBytes, `script ${name}`);
  const e = await c.scripts.put(name, c.req, { cn: c.id.cn, fingerprint: c.id.fingerprint });
  await c.note('stored', { name, id: e.id, size: e.size });
  sendJson(c.res, 201, { name, id: e.id, size: e.size, updated: e.updated, by: e.by });
}

/** The name only: its ids stay runnable and readable (the history names them). */
export async function scriptRemove(c: Ctx): Promise<void> {
  const name = c.params.name as string;
  if (!c.scripts.has(name)) throw new FussyError('NOT_FOUND', `no script named ${JSON.stringify(name)}`, { hint: 'an id cannot be removed, only a name (ids stay for the history)', details: { status: 404 } });
  const id = c.scripts.resolve(name).id;
  await c.scripts.remove(name);
  await c.note('removed', { name, id });
  sendJson(c.res, 200, { removed: name, id });
}
