import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));

export interface Watched {
  child: ResultPromise<{ reject: false; timeout: number }>;
  pid: number;
  /** Resolves with stderr so far once it matches `re`; rejects if the process ends first. */
  stderrMatches(re: RegExp): Promise<string>;
  /** Resolves once the process is stopped (SIGSTOP, e.g. by a `stop:` failpoint); rejects if it ends first. */
  stopped(): Promise<void>;
  done(): Promise<{ exitCode?: number; signal?: string; stdout: string; stderr: string; timedOut: boolean }>;
}

/**
 * A real bin/<launcher> process whose stderr a test watches as it arrives, to act at a chosen
 * step (send a signal when a hook has printed its line, or when a failpoint stopped it). The
 * timeout is only a safety net against a hanging fussy; tests assert on status and output.
 */
export function watchFussy(launcher: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number; inputFile?: string } = {}): Watched {
  const child = execa(process.execPath, [`${BIN}${launcher}.js`, ...args], {
    cwd: opts.cwd,
    env: opts.env,
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
    ...(opts.inputFile === undefined ? { stdin: 'ignore' as const } : { inputFile: opts.inputFile }),
  });
  let stderr = '';
  let ended = false;
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
    wake();
  });
  const finished = child.then((r) => {
    ended = true;
    wake();
    return r;
  });
  const pid = child.pid as number;
  return {
    child,
    pid,
    async stderrMatches(re) {
      for (;;) {
        if (re.test(stderr)) return stderr;
        if (ended) throw new Error(`fussy ended before its stderr matched ${re}:\n${stderr}`);
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    async stopped() {
      for (;;) {
        if (ended) throw new Error(`fussy ended before it stopped:\n${stderr}`);
        // /proc/PID/stat: "pid (comm) S ..."; T is stopped by a signal.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async done() {
      const r = await finished;
      return { exitCode: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr), timedOut: r.timedOut };
    },
  };
}
