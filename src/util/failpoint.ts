import { closeSync, existsSync, openSync } from 'node:fs';

/**
 * Fault injection for the crash-safety tests (docs/crash-safety.md: a SIGKILL at any instant). The CLI reads
 * FUSSY_FAILPOINT (undocumented for users) and passes it down; the library never reads the
 * environment. `NAME` kills this process with SIGKILL when the step NAME is reached;
 * `unpack-bytes:N` kills it once N bytes of file data have been written into staging.
 * A prefix picks another action, taken once: `stop:` stops the process with SIGSTOP there (a
 * test then sends it signals at exactly that step and continues it with SIGCONT); `reject:` leaves
 * a promise rejection nobody handles, `throw:` throws from a timer callback (an uncaught
 * exception): the tests of the CLI's process-wide guard.
 * `pause:NAME:/FILE` creates FILE when NAME is first reached and waits (at most a minute) until
 * another process removes it: the race tests use it to act in a window deterministically.
 */
export interface Failpoints {
  at(name: string): void;
  wrote(bytes: number): void;
}

export const NO_FAILPOINTS: Failpoints = { at: () => {}, wrote: () => {} };

type Action = 'kill' | 'stop' | 'reject' | 'throw';

export function failpoints(spec: string | undefined): Failpoints {
  if (spec === undefined || spec === '') return NO_FAILPOINTS;
  const pause = /^pause:([^:]+):(\/.+)$/.exec(spec);
  if (pause !== null) return pauseAt(pause[1] as string, pause[2] as string);
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

function pauseAt(name: string, file: string): Failpoints {
  let done = false;
  return {
    at: (n) => {
      if (n !== name || done) return;
      done = true;
      closeSync(openSync(file, 'wx', 0o644));
      const tick = new Int32Array(new SharedArrayBuffer(4));
      for (const until = Date.now() + 60_000; existsSync(file); Atomics.wait(tick, 0, 0, 5)) {
        if (Date.now() > until) throw new Error(`failpoint ${name}: ${file} was not removed within a minute`);
      }
    },
    wrote: () => {},
  };
}
