/**
 * Fault injection for the crash-safety tests (SPEC: a SIGKILL at any instant). The CLI reads
 * FUSSY_FAILPOINT (undocumented for users) and passes it down; the library never reads the
 * environment. `NAME` kills this process with SIGKILL when the step NAME is reached;
 * `unpack-bytes:N` kills it once N bytes of file data have been written into staging.
 * A prefix picks another action, taken once: `stop:` stops the process with SIGSTOP there (a
 * test then sends it signals at exactly that step and continues it with SIGCONT); `reject:` leaves
 * a promise rejection nobody handles, `throw:` throws from a timer callback (an uncaught
 * exception): the tests of the CLI's process-wide guard.
 */
export interface Failpoints {
  at(name: string): void;
  wrote(bytes: number): void;
}

export const NO_FAILPOINTS: Failpoints = { at: () => {}, wrote: () => {} };

type Action = 'kill' | 'stop' | 'reject' | 'throw';

export function failpoints(spec: string | undefined): Failpoints {
  if (spec === undefined || spec === '') return NO_FAILPOINTS;
  const prefixed = /^(stop|reject|throw):(.+)$/.exec(spec);
  const action: Action = (prefixed?.[1] as Action | undefined) ?? 'kill';
  const point = prefixed?.[2] ?? spec;
  const m = /^unpack-bytes:(\d+)$/.exec(point);
  const limit = m === null ? undefined : Number(m[1]);
  let written = 0;
  let fired = false;
  const fire = (): void => {
    if (action === 'kill') die();
    if (fired) return;
    fired = true;
    if (action === 'stop') process.kill(process.pid, 'SIGSTOP');
    else if (action === 'reject') void Promise.reject(new Error(`failpoint ${spec}: a promise rejection nobody handles`));
    else
      setImmediate(() => {
        throw new Error(`failpoint ${spec}: an exception nobody catches`);
      });
  };
  return {
    at: (name) => {
      if (name === point) fire();
    },
    wrote: (bytes) => {
      written += bytes;
      if (limit !== undefined && written >= limit) fire();
    },
  };
}

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('SIGKILL did not stop the process'); // not reached
}
