/**
 * fussyd's install, in a child `node` of its own (docs/daemon.md "Processes"), started by
 * installer.ts:
 *   node install-child.js REQUEST.json-text
 * It calls the library's install() (the code of `fussy install`: the keyring decides) and writes
 * NDJSON to stdout, one message a line: `{"ready": true}` once its signal handlers are in place
 * (before the library loads), `{"event": FussyEvent}` as the install reports, then
 * `{"result": InstallResult}` or `{"error": {code, exitCode, message, hint, details}}`, and
 * exits with the status `fussy install` would (0, the FussyError's, 1 for a bug). Hook output
 * never reaches stdout (the library reads it line by line); a hook line is cut at 64 KiB.
 * SIGTERM, SIGINT and SIGHUP abort the install's signal: before the switch a refusal
 * (INTERRUPTED), after it the install completes (the library's AbortSignal semantics).
 */
import '../util/quiet-warnings.js';
import type { FussyEvent } from '../index.js';

/** What installer.ts asks for: install()'s options that a JSON line can carry. */
export interface InstallRequest {
  package: string;
  keyring: string;
  target: string;
  /** The hooks' environment (and this process's): nothing else of the daemon's. */
  env: Record<string, string>;
  cwd: string;
  hookTimeoutMs?: number;
  reserveBytes?: number;
  allowDowngrade?: boolean;
  deviceType?: string;
  /** Testing only (util/failpoint.ts). */
  failpoint?: string;
}

/** The longest hook line passed on whole; installer.ts refuses lines much longer than this. */
export const MAX_HOOK_LINE = 64 * 1024;

function send(message: Record<string, unknown>): void {
  // stdout is a pipe: on Linux node writes to it synchronously, so nothing is lost at exit.
  process.stdout.write(JSON.stringify(message) + '\n');
}

function bounded(e: FussyEvent): FussyEvent {
  return e.type === 'hook' && e.line.length > MAX_HOOK_LINE ? { ...e, line: `${e.line.slice(0, MAX_HOOK_LINE)}... [${e.line.length - MAX_HOOK_LINE} characters cut]` } : e;
}

// The handlers come first and the library after them: a SIGTERM that came while the library
// loaded killed the process unrecorded. installer.ts holds a cancel until it reads "ready".
const stop = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => stop.abort());
send({ ready: true });
const request = JSON.parse(process.argv[2] ?? '{}') as InstallRequest;
const { FussyError, install } = await import('../index.js');

let status: number;
try {
  const result = await install({
    package: request.package,
    keyring: request.keyring,
    target: request.target,
    env: request.env,
    cwd: request.cwd,
    hookTimeoutMs: request.hookTimeoutMs,
    reserveBytes: request.reserveBytes,
    allowDowngrade: request.allowDowngrade,
    deviceType: request.deviceType,
    failpoint: request.failpoint,
    signal: stop.signal,
    onEvent: (e) => send({ event: bounded(e) }),
  });
  send({ result });
  status = 0;
} catch (err) {
  if (err instanceof FussyError) {
    send({ error: { code: err.code, exitCode: err.exitCode, message: err.message, hint: err.hint, details: err.details } });
    status = err.exitCode;
  } else {
    process.stderr.write(`${(err as Error | undefined)?.stack ?? String(err)}\n`);
    send({ error: { code: 'INTERNAL', exitCode: 1, message: `internal error, please report: ${(err as Error | undefined)?.message ?? String(err)}`, hint: 'the install process printed the stack trace on its stderr' } });
    status = 1;
  }
}
process.exit(status);
