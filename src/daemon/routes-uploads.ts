import type { IncomingMessage } from 'node:http';
import { EXIT_CODES, FussyError, type ErrorCode } from '../errors.js';
import type { FussyEvent } from '../index.js';
import { checkDeclaredLength, requireType, sendJson } from './http-io.js';
import type { InstallFailure } from './installer.js';
import type { Route } from './router.js';
import type { Ctx } from './routes.js';

/**
 * The firmware upload endpoints (docs/daemon.md, "Firmware upload"), operator role; the audit
 * line of each names the sha256 (its resource), and the daemon's log records what each did:
 *   GET  /v1/uploads/SHA256          {size, have, verified}, or 404
 *   PUT  /v1/uploads/SHA256          Fussy-Upload-Size, Fussy-Upload-Offset: the body is appended
 *                                    at the offset, streamed to disk; a cut keeps what arrived
 *   POST /v1/uploads/SHA256/install  the sha256 of the whole checked, then the install of
 *                                    `fussy install` in the install child; NDJSON answer
 */
export const UPLOAD_ROUTES: ReadonlyArray<Route<Ctx>> = [
  { method: 'GET', path: '/v1/uploads/:sha256', action: 'upload.state', need: 'operator', handle: uploadState },
  { method: 'PUT', path: '/v1/uploads/:sha256', action: 'upload.put', need: 'operator', handle: uploadPut },
  { method: 'POST', path: '/v1/uploads/:sha256/install', action: 'upload.install', need: 'operator', handle: uploadInstall },
];

/** Progress lines are passed on at most this often (the last one always): the child reports every chunk. */
const PROGRESS_EVERY_MS = 250;
/** A beat line this often while nothing else is said, so that neither side's idle timeout ends a quiet install (a long hook). */
const BEAT_MS = 10_000;
/** Answer bytes a client has not read yet past which events are dropped (counted); the outcome is always sent. */
const MAX_PENDING = 1024 * 1024;

async function uploadState(c: Ctx): Promise<void> {
  const sha256 = c.params.sha256 as string;
  const st = c.uploads.store.state(sha256);
  if (st === undefined) throw new FussyError('NOT_FOUND', `no upload ${sha256}`, { hint: 'begin it with PUT (Fussy-Upload-Size, Fussy-Upload-Offset: 0)', details: { status: 404 } });
  sendJson(c.res, 200, st);
}

async function uploadPut(c: Ctx): Promise<void> {
  requireType(c.req, 'application/octet-stream');
  const sha256 = c.params.sha256 as string;
  const size = header(c.req, 'fussy-upload-size');
  const offset = header(c.req, 'fussy-upload-offset');
  const store = c.uploads.store;
  await store.begin(sha256, size);
  if (offset <= size) checkDeclaredLength(c.req, size - offset, `the rest of upload ${sha256} from offset ${offset}`);
  try {
    const st = await store.append(sha256, offset, c.req);
    c.uploads.log({ event: 'upload', cn: c.id.cn, sha256, from: offset, have: st.have, size });
    sendJson(c.res, 200, st);
  } catch (err) {
    c.uploads.log({ event: 'upload', cn: c.id.cn, sha256, from: offset, have: store.state(sha256)?.have, size, error: err instanceof FussyError ? err.code : err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

async function uploadInstall(c: Ctx): Promise<void> {
  const sha256 = c.params.sha256 as string;
  const pkg = await c.uploads.store.complete(sha256);
  await c.uploads.hold(() => installAndAnswer(c, sha256, pkg));
}

/** The install of a checked upload, its events and outcome streamed to the client while it listens. */
async function installAndAnswer(c: Ctx, sha256: string, pkg: string): Promise<void> {
  c.uploads.log({ event: 'install-started', cn: c.id.cn, sha256 });
  const res = c.res;
  let open = false;
  let dropped = 0;
  const send = (line: Record<string, unknown>, always = false): void => {
    if (!open) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      open = true;
    }
    if (res.destroyed || res.writableEnded) return;
    if (!always && res.writableLength > MAX_PENDING) {
      dropped++;
      return;
    }
    res.write(JSON.stringify(line) + '\n');
  };
  const t0 = Date.now();
  let lastProgress = 0;
  const onEvent = (e: FussyEvent): void => {
    if (e.type === 'progress') {
      const last = e.total !== undefined && e.done >= e.total;
      if (!last && Date.now() - lastProgress < PROGRESS_EVERY_MS) return;
      lastProgress = Date.now();
    }
    send({ event: e });
  };
  const beat = setInterval(() => send({ running: { elapsedMs: Date.now() - t0 } }), Math.min(BEAT_MS, c.config.idleTimeoutMs / 2));
  let outcome;
  try {
    outcome = await c.uploads.install(sha256, pkg, onEvent);
  } finally {
    clearInterval(beat);
  }
  c.uploads.log({ event: 'install', cn: c.id.cn, sha256, ok: outcome.ok, ...(outcome.ok ? { release: outcome.result.release } : { code: outcome.error.code, exitCode: outcome.error.exitCode }), ...(dropped > 0 ? { droppedEvents: dropped } : {}), answered: !res.destroyed });
  if (!outcome.ok && !open && outcome.error.code in EXIT_CODES) throw asError(outcome.error); // refused before it began: a plain error answer (LOCKED: 409)
  const extra = dropped > 0 ? { droppedEvents: dropped } : {};
  send(outcome.ok ? { result: outcome.result, ...extra } : { error: publicError(outcome.error), ...extra }, true);
  if (res.destroyed) return;
  await new Promise<void>((resolve) => {
    res.once('close', resolve);
    res.end(resolve);
  });
}

/** What a client is told of a failed install: the code and status of `fussy install`, its message and hint. */
function publicError(e: InstallFailure): Record<string, unknown> {
  return { code: e.code, exitCode: e.exitCode, message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) };
}

function asError(e: InstallFailure): FussyError {
  return new FussyError(e.code as ErrorCode, e.message, { hint: e.hint });
}

/** A non-negative whole number header (BAD_REQUEST without one). */
function header(req: IncomingMessage, name: string): number {
  const text = req.headers[name];
  const n = typeof text === 'string' && /^[0-9]{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new FussyError('BAD_REQUEST', `the ${name} header is missing or not a number of bytes`, { hint: 'an upload PUT names Fussy-Upload-Size (the whole package) and Fussy-Upload-Offset (where this body starts)', details: { status: 400 } });
  return n;
}
