import { FussyError } from '../errors.js';

/**
 * Cancellation (STYLE: an AbortSignal is a parameter). What an aborted operation throws is the
 * signal's reason when the caller chose an Error (the CLI aborts with INTERRUPTED on a signal, or
 * with an internal error from its process-wide guard); a bare abort() is INTERRUPTED.
 */
export function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name !== 'AbortError') return r;
  return new FussyError('INTERRUPTED', 'the operation was cancelled');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  const err = abortedWith(signal);
  if (err !== undefined) throw err;
}

/** The abort error when `signal` has aborted, else undefined. */
export function abortedWith(signal: AbortSignal | undefined): Error | undefined {
  return signal?.aborted === true ? abortError(signal) : undefined;
}

/**
 * `p`, or the abort error as soon as `signal` aborts: a wait that may never end (a pipe without a
 * writer, a stream a failure left stuck) must not outlast a Ctrl-C. `p` keeps a handler, so its
 * own later rejection is never an unhandled one.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  return new Promise<T>((resolve, reject) => {
    const stop = (): void => reject(abortError(signal));
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', stop);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', stop);
        reject(e);
      },
    );
  });
}

/**
 * Iterate `source` until `signal` aborts: checked before each item and raced against each wait.
 * When the abort interrupts a wait, the source is left as it is (its owner closes what feeds it:
 * asking an async generator to return while its next() is pending would wait for that next()).
 */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  if (signal === undefined) return yield* source;
  const it = source[Symbol.asyncIterator]();
  let pending = false;
  try {
    for (;;) {
      throwIfAborted(signal);
      pending = true;
      const r = await untilAborted(it.next(), signal);
      pending = false;
      if (r.done === true) return;
      yield r.value;
    }
  } finally {
    if (!pending) await it.return?.();
  }
}

/** Sleep `ms`, or throw the abort error as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const slept = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return untilAborted(slept, signal).finally(() => clearTimeout(timer));
}
