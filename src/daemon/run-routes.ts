import { isUtf8 } from 'node:buffer';
import { FussyError } from '../errors.js';
import type { Captured } from '../util/capture.js';
import { readJson, requireType, sendJson } from './http-io.js';
import type { Ctx } from './routes.js';
import type { Submitted } from './runs/engine.js';
import type { RunOutput } from './runs/history.js';
import type { RunSummary } from './runs/records.js';

/**
 * The run endpoints (docs/daemon.md, "HTTP API"). `POST /v1/runs` answers NDJSON, one event a
 * line: `queued` (only when the run waits for a slot), `started` as its leader runs, `running`
 * every few seconds meanwhile (so that neither side's idle timeout ends a quiet run), and last
 * `result` (or `error` when the history could not be written). The run belongs to the engine,
 * not to the connection: a client that goes away loses the answer, never the run or its record.
 */

/** A stream of a run's output as JSON: text when head and tail are each valid UTF-8, else base64. */
export interface OutputView {
  encoding: 'utf8' | 'base64';
  head: string;
  tail: string;
  totalBytes: number;
  truncated: boolean;
}

export type RunView = Omit<RunSummary, 'stdout' | 'stderr' | 'error'> & { stdout?: OutputView | RunSummary['stdout']; stderr?: OutputView | RunSummary['stderr']; error?: { message: string; stack?: string } | string };

const BEAT_MS = 10_000;
const MAX_LIMIT = 10_000;

export async function runPost(c: Ctx): Promise<void> {
  requireType(c.req, 'application/json');
  const body = await readJson(c.req);
  const { script, args, timeoutSec } = body;
  if (typeof script !== 'string') throw badRequest('the body is not {"script": NAME-OR-ID, "args": [STRING...], "timeoutSec": N}');
  if (timeoutSec !== undefined && (typeof timeoutSec !== 'number' || !(timeoutSec > 0))) throw badRequest('"timeoutSec" is a number of seconds above 0');
  const resolved = c.scripts.resolve(script);
  const submitted = c.engine.submit({ script: resolved.id, args: args as string[] | undefined, ...(timeoutSec === undefined ? {} : { timeoutMs: Math.ceil(timeoutSec * 1000) }), trigger: { kind: 'user', cn: c.id.cn, fingerprint: c.id.fingerprint } });
  const named = { runId: submitted.runId, script: resolved.name, id: resolved.id };
  // Not awaited: the audit log keeps its lines in order and logs its own failures (server.ts).
  void c.note('run', { ...named, args: args ?? [] });
  await streamRun(c, submitted, named);
}

/** Answer a submitted run as NDJSON (queued, started, running..., result): `POST /v1/runs` and a job's `cron run`. */
export async function streamRun(c: Ctx, submitted: Submitted, named: Record<string, unknown> & { runId: string }): Promise<void> {
  const { runId } = submitted;
  // The headers leave with the first line (queued, started, or the result of a run that could not start).
  c.res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  const send = (event: Record<string, unknown>): void => {
    if (!c.res.destroyed && !c.res.writableEnded) c.res.write(JSON.stringify(event) + '\n');
  };
  let last: Record<string, unknown> | undefined;
  const t0 = Date.now();
  const beat = setInterval(() => send({ type: 'running', runId, elapsedMs: Date.now() - t0 }), Math.min(BEAT_MS, c.config.idleTimeoutMs / 2));
  try {
    if (await submitted.waiting) send({ type: 'queued', ...named, running: c.engine.snapshot().running.length });
    const started = await submitted.started;
    if (started.pid !== undefined) send({ type: 'started', ...named, pid: started.pid, waitMs: started.waitMs });
    const { output, ...record } = await submitted.done;
    last = { type: 'result', ...runView(record, output) };
  } catch (err) {
    c.log({ event: 'run-unrecorded', runId, error: err instanceof Error ? err.message : String(err) });
    last = { type: 'error', runId, error: { code: err instanceof FussyError ? err.code : 'REMOTE_FAILED', message: `the run could not be recorded: ${err instanceof Error ? err.message : String(err)}` } };
  } finally {
    clearInterval(beat);
    if (!c.res.destroyed) {
      // The last line and the end of the body in one write: one TLS record, one segment.
      const tail = last === undefined || c.res.writableEnded ? undefined : JSON.stringify(last) + '\n';
      await new Promise<void>((resolve) => {
        c.res.once('close', resolve);
        if (tail === undefined) c.res.end(resolve);
        else c.res.end(tail, resolve);
      });
    }
  }
}

/** The history, newest first: `?script=NAME&since=ISO-TIME&limit=N` (100, at most 10000). */
export async function runsList(c: Ctx): Promise<void> {
  const script = c.query.get('script') ?? undefined;
  const sinceText = c.query.get('since');
  const since = sinceText === null ? undefined : new Date(sinceText);
  if (since !== undefined && Number.isNaN(since.getTime())) throw badRequest('?since= is an ISO 8601 time, e.g. 2025-01-31T12:00:00Z');
  const limitText = c.query.get('limit');
  const limit = limitText === null ? 100 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw badRequest(`?limit= is a whole number from 1 to ${MAX_LIMIT}`);
  sendJson(c.res, 200, { runs: c.engine.history.query({ script, since, limit }) });
}

/** One run: its record, and its output and result once it ended (until retention drops them). */
export async function runGet(c: Ctx): Promise<void> {
  const runId = c.params.id as string;
  const summary = c.engine.history.get(runId);
  if (summary === undefined) throw new FussyError('NOT_FOUND', `no run ${runId}`, { hint: 'list the runs with fussy remote history', details: { status: 404 } });
  sendJson(c.res, 200, { run: runView(summary, c.engine.history.readOutput(runId)) });
}

/** A run's summary with its output as JSON (OutputView) and its result or error with the stack. */
export function runView(summary: RunSummary, output: RunOutput | undefined): RunView {
  if (output === undefined) return summary;
  return {
    ...summary,
    stdout: outputView(output.stdout),
    stderr: outputView(output.stderr),
    ...('result' in output ? { result: output.result } : {}),
    ...(output.error === undefined ? {} : { error: output.error }),
  };
}

function outputView(c: Captured): OutputView {
  const text = isUtf8(c.head) && isUtf8(c.tail);
  const enc = text ? 'utf8' : 'base64';
  return { encoding: enc, head: c.head.toString(enc), tail: c.tail.toString(enc), totalBytes: c.totalBytes, truncated: c.truncated };
}

function badRequest(what: string): FussyError {
  return new FussyError('BAD_REQUEST', what, { details: { status: 400 } });
}
