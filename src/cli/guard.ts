import { FussyError } from '../errors.js';

/**
 * Signals and the process-wide guard. An operation that can be stopped runs through
 * `cancellable`: while it runs, SIGINT, SIGTERM and SIGHUP abort its AbortSignal with INTERRUPTED
 * (a refusal like any other: the library removes what it made, releases the lock and writes the
 * history, then the command ends with one line), and repeated signals change nothing while that
 * cleanup runs. Outside such an operation signals keep their default effect.
 *
 * The guard: an unhandled rejection or uncaught exception must never end the process with a
 * half-done transaction. While an operation runs, it aborts it the same way (with an internal
 * error as the reason, which the history records as such), waits for its cleanup, and then makes
 * the operation fail with the original error, which the CLI reports as an internal error (exit 1,
 * "please report"), once. With no operation running there is nothing to clean up: it reports and
 * exits 1 at once, as node itself would, but in fussy's words.
 */

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

interface Operation {
  controller: AbortController;
  fatal?: { error: unknown };
}

let running: Operation | undefined;
let guarded = false;

export async function cancellable<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (running !== undefined) throw new Error('cancellable operations do not nest');
  const op: Operation = { controller: new AbortController() };
  const handlers = SIGNALS.map((sig) => {
    const h = (): void => {
      if (!op.controller.signal.aborted) op.controller.abort(new FussyError('INTERRUPTED', `interrupted by ${sig}`, { details: { signal: sig } }));
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  running = op;
  let value: T;
  try {
    value = await fn(op.controller.signal);
  } catch (err) {
    throw op.fatal === undefined ? err : op.fatal.error;
  } finally {
    running = undefined;
    for (const [sig, h] of handlers) process.removeListener(sig, h);
  }
  if (op.fatal !== undefined) throw op.fatal.error;
  return value;
}

/** Install the guard once per process; `report` prints an internal error (renderError) when no operation can clean up. */
export function installGuard(report: (err: unknown) => void): void {
  if (guarded) return;
  guarded = true;
  let reported = false;
  const fatal = (err: unknown): void => {
    const op = running;
    if (op !== undefined) {
      if (op.fatal !== undefined) return; // the first one is reported; the cleanup is already under way
      op.fatal = { error: err };
      op.controller.abort(new Error(`internal error (${err instanceof Error ? err.message : String(err)}): stopped safely`, { cause: err }));
      return;
    }
    if (reported) return;
    reported = true;
    report(err);
    process.exit(1);
  };
  process.on('unhandledRejection', fatal);
  process.on('uncaughtException', fatal);
}
