/**
 * Fault injection for the crash-safety tests (SPEC: a SIGKILL at any instant). The CLI reads
 * FUSSY_FAILPOINT (undocumented for users) and passes it down; the library never reads the
 * environment. `NAME` kills this process with SIGKILL when the step NAME is reached;
 * `unpack-bytes:N` kills it once N bytes of file data have been written into staging.
 */
export interface Failpoints {
  at(name: string): void;
  wrote(bytes: number): void;
}

export const NO_FAILPOINTS: Failpoints = { at: () => {}, wrote: () => {} };

export function failpoints(spec: string | undefined): Failpoints {
  if (spec === undefined || spec === '') return NO_FAILPOINTS;
  const m = /^unpack-bytes:(\d+)$/.exec(spec);
  const limit = m === null ? undefined : Number(m[1]);
  let written = 0;
  return {
    at: (name) => {
      if (name === spec) die();
    },
    wrote: (bytes) => {
      written += bytes;
      if (limit !== undefined && written >= limit) die();
    },
  };
}

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('SIGKILL did not stop the process'); // not reached
}
