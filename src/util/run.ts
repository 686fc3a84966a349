/**
 * The one module that starts processes (STYLE: one place for spawning, timeouts and
 * process-group kills). Everything else receives a `Runner` so tests can hand in their own
 * environment (GNUPGHOME, PATH) without mocking child_process.
 */
import { spawn } from 'node:child_process';
import type { ResultPromise } from 'execa';
import { FussyError } from '../errors.js';

type Execa = typeof import('execa').execa;
let execaModule: Promise<Execa> | undefined;

/**
 * execa is loaded on first use: with its dependencies it costs ~0.17 s of start-up, which an
 * install without hooks never needs. preloadRunner() starts loading it in the background, e.g.
 * while a package streams and the main thread waits on the thread pool anyway.
 */
export function preloadRunner(): Promise<Execa> {
  execaModule ??= import('execa').then((m) => m.execa);
  return execaModule;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string | Uint8Array;
  /** Milliseconds; the whole process group is killed when it passes. */
  timeout?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: Buffer;
  stderr: string;
}

/** Run to completion, capturing output; a program that cannot start is PROGRAM_MISSING naming it. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const execa = await preloadRunner();
  const child = execa(cmd, args, {
    env: opts.env,
    extendEnv: true,
    cwd: opts.cwd,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : undefined,
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    timeout: opts.timeout,
    detached: opts.timeout !== undefined,
    killSignal: 'SIGKILL',
  });
  const r = await child;
  if (neverStarted(r)) missingProgram(cmd, r.cause ?? r);
  return { exitCode: r.exitCode ?? 128, stdout: Buffer.from(r.stdout as Uint8Array), stderr: Buffer.from(r.stderr as Uint8Array).toString('utf8') };
}

export type Subprocess = ResultPromise<{ stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe'; buffer: { stdout: false; stderr: true }; encoding: 'buffer'; reject: false }>;

/** Start a filter process whose stdin and stdout the caller streams; stderr is collected. */
export async function spawnFilter(cmd: string, args: string[], opts: Pick<RunOptions, 'env' | 'cwd'> = {}): Promise<{ child: Subprocess }> {
  const execa = await preloadRunner();
  const child = execa(cmd, args, {
    env: opts.env,
    extendEnv: true,
    cwd: opts.cwd,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
  });
  return { child };
}

/**
 * Run a program that needs no input and whose output is not wanted (sync -f), with plain
 * child_process: no execa load on the install path. Resolves to the exit code; a program that
 * cannot start is PROGRAM_MISSING naming it.
 */
export function runQuiet(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.once('error', (err) => {
      try {
        missingProgram(cmd, err);
      } catch (e) {
        reject(e);
      }
    });
    child.once('close', (code, signal) => resolve(code ?? (signal !== null ? 128 : 1)));
  });
}

/** The package that provides each program fussy runs (Debian's name; Fedora's is the same). */
const PROVIDED_BY: Record<string, string> = { gpg: 'gnupg', sync: 'coreutils', sh: 'dash or bash' };

/**
 * True when an execa run never started (ENOENT, EACCES, not executable, bad interpreter): it has
 * no exit status, was not killed and did not time out. Every runner asks this one question.
 */
export function neverStarted(r: { failed: boolean; exitCode?: number | undefined; signal?: string | undefined; timedOut?: boolean }): boolean {
  return r.failed && r.exitCode === undefined && r.signal === undefined && r.timedOut !== true;
}

/** What a missing program was needed for (`needed`, in the message), and what else the user may do (`instead`, in the hint). */
export interface MissingProgramContext {
  needed?: string;
  instead?: string;
}

/**
 * A program fussy needs could not be started: PROGRAM_MISSING (exit 40) naming it and the
 * package that provides it. Every runner ends here; only firmware hooks (HOOK_FAILED) and the
 * command of `fussy lock` (the user's own) report a start failure their own way.
 */
export function missingProgram(cmd: string, cause: unknown, c: MissingProgramContext = {}): never {
  const pkg = PROVIDED_BY[cmd];
  const why = cause instanceof Error ? ((cause as Error & { shortMessage?: string }).shortMessage ?? cause.message) : String(cause);
  const install = pkg === undefined ? `install ${cmd}` : `install the ${pkg} package, which provides ${cmd}`;
  throw new FussyError('PROGRAM_MISSING', `cannot run ${cmd}${c.needed === undefined ? '' : ` (${c.needed})`}: ${why}`, {
    cause,
    hint: c.instead === undefined ? install : `${install}, ${c.instead}`,
    details: { program: cmd, ...(pkg === undefined ? {} : { package: pkg }) },
  });
}

export interface StreamingOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Milliseconds; then the whole process group gets SIGKILL. */
  timeout: number;
  /** Each line of stdout and stderr (merged), as it arrives. */
  onLine: (line: string) => void;
  /** Stops the run: SIGTERM to the whole group, SIGKILL `graceMs` (5000) later; not started if already aborted. */
  signal?: AbortSignal;
  graceMs?: number;
}

export interface StreamingResult {
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  /** `signal` stopped it, or was aborted before it could start (then it was never started). */
  interrupted?: boolean | 'before-start';
  /** Could not be started at all (ENOENT, EACCES, not executable, bad interpreter). */
  spawnError?: string;
}

/**
 * Run a program directly (no shell) in its own process group with stdin closed, reporting its
 * output line by line; past the timeout the whole group is killed, so a hook's children do not
 * outlive it. Used for firmware hooks (Fussy's contract: argv, stdin closed, merged output).
 */
export async function runStreaming(cmd: string, args: string[], o: StreamingOptions): Promise<StreamingResult> {
  const execa = await preloadRunner();
  if (o.signal?.aborted === true) return { exitCode: undefined, signal: undefined, timedOut: false, interrupted: 'before-start' };
  const child = execa(cmd, args, {
    env: o.env,
    extendEnv: false,
    cwd: o.cwd,
    stdin: 'ignore',
    all: true,
    buffer: false,
    detached: true,
    reject: false,
    encoding: 'utf8',
  });
  let timedOut = false;
  let interrupted = false;
  let killer: NodeJS.Timeout | undefined;
  const group = (sig: NodeJS.Signals): void => killGroup(child.pid, sig);
  const timer = setTimeout(() => {
    timedOut = true;
    group('SIGKILL');
  }, o.timeout);
  // As timeout(1) -k: the group may stop its services cleanly, but not take longer than the grace.
  const stop = (): void => {
    interrupted = true;
    group('SIGTERM');
    killer = setTimeout(() => group('SIGKILL'), o.graceMs ?? 5000);
  };
  o.signal?.addEventListener('abort', stop, { once: true });
  let pending = '';
  child.all?.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) o.onLine(l);
  });
  const r = await child;
  clearTimeout(timer);
  clearTimeout(killer);
  o.signal?.removeEventListener('abort', stop);
  if (interrupted) group('SIGKILL'); // the leader is gone; nothing it started outlives the interruption
  if (pending !== '') o.onLine(pending);
  if (neverStarted(r) && !timedOut && !interrupted) {
    return { exitCode: undefined, signal: undefined, timedOut, spawnError: r.shortMessage };
  }
  return { exitCode: r.exitCode, signal: r.signal, timedOut, interrupted };
}

export interface ForegroundResult {
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  spawnError?: string;
}

/**
 * Run a command with the caller's stdin/stdout/stderr, in its own process group (`fussy lock`).
 * Past `timeoutMs` the whole group gets SIGTERM, and SIGKILL `graceMs` later if any of it is
 * still there (timeout(1) -k). SIGINT, SIGTERM and SIGHUP sent to fussy are passed on to the
 * group, which a terminal's Ctrl-C no longer reaches directly.
 */
export function runForeground(cmd: string, args: string[], o: { timeoutMs?: number; graceMs?: number; env?: Record<string, string | undefined>; cwd?: string; onSpawn?: (pid: number) => void } = {}): Promise<ForegroundResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit', detached: true, env: o.env as NodeJS.ProcessEnv | undefined, cwd: o.cwd });
    child.once('spawn', () => {
      if (child.pid !== undefined) o.onSpawn?.(child.pid);
    });
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const group = (sig: NodeJS.Signals): void => killGroup(child.pid, sig);
    const forward = (sig: NodeJS.Signals) => (): void => group(sig);
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    const timer =
      o.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            group('SIGTERM');
            killer = setTimeout(() => group('SIGKILL'), o.graceMs ?? 5000);
          }, o.timeoutMs);
    const done = (r: ForegroundResult): void => {
      if (timer !== undefined) clearTimeout(timer);
      for (const [sig, h] of handlers) process.removeListener(sig, h);
      if (timedOut) {
        // The leader is gone; make sure nothing it started outlives the timeout either.
        if (killer !== undefined) clearTimeout(killer);
        group('SIGKILL');
      }
      resolve(r);
    };
    child.once('error', (err) => done({ exitCode: undefined, signal: undefined, timedOut, spawnError: err.message }));
    child.once('exit', (code, signal) => done({ exitCode: code ?? undefined, signal: signal ?? undefined, timedOut }));
  });
}

/** Signal a process group (a child started detached leads its own); a group already gone is fine. */
function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
