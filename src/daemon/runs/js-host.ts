/**
 * The host of a `.js`/`.mjs` script that exports `run(ctx)`, run by fussyd in a child `node`:
 *   node js-host.js SCRIPT BASE|"" CTX.json RESULT.json
 * It imports the script (and the `__base__` script, whose exports are `ctx.base`), awaits
 * `run(ctx)`, and writes `{"ok": true, "value": ...}` or `{"ok": false, "error", "stack"}` to
 * RESULT.json, never to stdout (stdout stays the script's own output). Exit status 0 when run()
 * returned, 1 when it threw or its value is not JSON, 2 when the script has no run(). It exits
 * once run() settled: timers a script leaves behind do not keep the run going.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** A return value larger than this is an error, not a record (the history keeps results). */
const MAX_RESULT = 1024 * 1024;

const [script, base, ctxFile, resultFile] = process.argv.slice(2) as [string, string, string, string];

function finish(result: Record<string, unknown>, status: number): never {
  writeFileSync(resultFile, JSON.stringify(result) + '\n', { mode: 0o600 });
  process.exit(status);
}

function failure(err: unknown): Record<string, unknown> {
  return err instanceof Error ? { ok: false, error: err.message, stack: err.stack } : { ok: false, error: `run() threw ${typeof err}: ${String(err)}` };
}

function encode(value: unknown): string | undefined {
  if (typeof value === 'function' || typeof value === 'symbol') throw new TypeError(`run() returned a ${typeof value}, which JSON cannot hold`);
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`run() returned a value JSON cannot hold: ${(err as Error).message}`, { cause: err });
  }
}

const ctx = JSON.parse(readFileSync(ctxFile, 'utf8')) as Record<string, unknown>;
let mod: Record<string, unknown>;
try {
  mod = (await import(pathToFileURL(script).href)) as Record<string, unknown>;
  ctx.base = base === '' ? {} : ((await import(pathToFileURL(base).href)) as Record<string, unknown>);
} catch (err) {
  finish(failure(err), 1);
}
const run = typeof mod.run === 'function' ? mod.run : (mod.default as Record<string, unknown> | undefined)?.run;
if (typeof run !== 'function') finish({ ok: false, error: 'Script does not export a run(ctx) function' }, 2);
try {
  const text = encode(await (run as (c: unknown) => unknown)(ctx));
  if (text !== undefined && text.length > MAX_RESULT) throw new RangeError(`run() returned ${text.length} bytes of JSON, more than ${MAX_RESULT}`);
  finish(text === undefined ? { ok: true } : { ok: true, value: JSON.parse(text) as unknown }, 0);
} catch (err) {
  finish(failure(err), 1);
}
