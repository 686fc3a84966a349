/**
 * The one module that starts processes (STYLE: one place for spawning, timeouts and
 * process-group kills): one entry point, startProgram (runProgram waits for it), one options
 * type, one result shape. Nothing else in src/ imports execa or node:child_process (eslint).
 */
import type { Readable, Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import type { Options, ResultPromise } from 'execa';
import { FussyError } from '../errors.js';
import { captureStream, leaderExit, splitLines, tail, type Captured } from './capture.js';

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

/** Every line the program writes, as it arrives; stderr merged into the same lines, or dropped. */
export interface LineOutput {
  onLine: (line: string) => void;
  stderr?: 'merge' | 'ignore';
}

export interface ProgramOptions {
  /** Variables for the program, added to fussy's own environment unless `extendEnv` is false. */
  env?: Record<string, string | undefined>;
  extendEnv?: boolean;
  cwd?: string;
  /** 'ignore' (the default: /dev/null), fussy's own, a pipe (Running.stdin), or these bytes. */
  stdin?: 'ignore' | 'inherit' | 'pipe' | Uint8Array;
  /**
   * 'capture' (the default): result.stdout (bounded by execa's maxBuffer, 100 MB: past it the
   * program is stopped) and result.stderr. 'pipe': Running.stdout to stream, stderr captured.
   * 'ignore', 'inherit' (fussy's stdout and stderr), or lines to a callback. 'capped':
   * result.captured, each stream's head and tail (`outputHead`, `outputTail`), always drained;
   * the result comes at the leader's exit plus at most `drainMs`, then the pipes are closed (a
   * descendant holding them cannot hold the result back).
   */
  output?: 'capture' | 'pipe' | 'ignore' | 'inherit' | 'capped' | LineOutput;
  /** With output 'capped': bytes kept from the start (1 MiB) and the end (64 KiB) of each stream, and the drain after the exit (2000 ms). */
  outputHead?: number;
  outputTail?: number;
  drainMs?: number;
  /** Run as this user and group (fussy must be root); supplementary groups are dropped (libuv: setgroups(0)). */
  uid?: number;
  gid?: number;
  /** The captured stderr keeps its last this many bytes (64 KiB): the end says what went wrong. */
  stderrLimit?: number;
  /** Start the program as the leader of its own process group: every signal goes to the group. */
  group?: boolean;
  /** Past this many milliseconds the program (its group) gets `timeoutSignal`. */
  timeoutMs?: number;
  /** SIGKILL (the default), or SIGTERM followed by SIGKILL `graceMs` later (timeout(1) -k). */
  timeoutSignal?: 'SIGKILL' | 'SIGTERM';
  /** Stops the program: SIGTERM, SIGKILL `graceMs` later; never started if already aborted. */
  signal?: AbortSignal;
  /** Milliseconds between a SIGTERM (timeout or abort) and the SIGKILL (5000). */
  graceMs?: number;
  /** Pass SIGINT, SIGTERM and SIGHUP sent to fussy on to the program (a terminal's Ctrl-C no longer reaches its group). */
  forwardSignals?: boolean;
}

/** How a program ended: the one shape every caller gets. */
export interface ProgramResult {
  /** Its exit status; undefined when a signal ended it or it never started. */
  exitCode: number | undefined;
  /** The signal that ended it (SIGKILL, ...). */
  signal: string | undefined;
  /** `timeoutMs` passed: it was sent `timeoutSignal`. */
  timedOut: boolean;
  /** The AbortSignal stopped it, or was aborted before it could start (then it never started). */
  interrupted: boolean;
  /** Why it could not be started at all (ENOENT, EACCES, not executable, bad interpreter). */
  startError?: string;
  /** With output 'capture'. */
  stdout?: Buffer;
  /** With output 'capture' or 'pipe'. */
  stderr?: string;
  /** With output 'capped'. */
  captured?: { stdout: Captured; stderr: Captured };
}

export interface Running {
  /** Undefined when it was not started. */
  pid: number | undefined;
  /** With stdin 'pipe', once started. */
  stdin?: Writable;
  /** With output 'pipe', once started. */
  stdout?: Readable;
  result: Promise<ProgramResult>;
  /**
   * Signal the program (its group with `group`, unless `leaderOnly`); one already gone is fine.
   * `leaderOnly` is for a leader that handles the signal itself: a process it is forking at
   * that instant is still in its group until its setsid(), and would get the signal too.
   */
  kill(sig: NodeJS.Signals, o?: { leaderOnly?: boolean }): void;
  /** Whether the program and its pipes keep fussy's process alive (they do unless unref'd). */
  ref(): void;
  unref(): void;
}

/** Start `cmd` directly (no shell) with `args`. Rejects only if execa cannot be loaded. */
export async function startProgram(cmd: string, args: string[], o: ProgramOptions = {}): Promise<Running> {
  const execa = await preloadRunner();
  if (o.signal?.aborted === true) return notStarted({ exitCode: undefined, signal: undefined, timedOut: false, interrupted: true });
  const out = o.output ?? 'capture';
  const lines = typeof out === 'object' ? out : undefined;
  const merged = lines !== undefined && lines.stderr !== 'ignore';
  const input = o.stdin instanceof Uint8Array ? o.stdin : undefined;
  const capped = out === 'capped';
  const child = execa(cmd, args, {
    env: o.env,
    extendEnv: o.extendEnv ?? true,
    cwd: o.cwd,
    ...(o.uid === undefined ? {} : { uid: o.uid }),
    ...(o.gid === undefined ? {} : { gid: o.gid }),
    input,
    stdin: input === undefined ? (o.stdin as 'ignore' | 'inherit' | 'pipe' | undefined) ?? 'ignore' : undefined,
    stdout: out === 'ignore' || out === 'inherit' ? out : 'pipe',
    stderr: out === 'ignore' || out === 'inherit' ? out : lines !== undefined && !merged ? 'ignore' : 'pipe',
    all: merged,
    buffer: { stdout: out === 'capture', stderr: false, all: false },
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    detached: o.group === true,
    // The signals are sent here (to the group, with the grace of the options), not by execa.
    forceKillAfterDelay: false,
  } as Options) as ResultPromise<Options>;
  const pid = child.pid;
  const send = (sig: NodeJS.Signals): void => {
    if (o.group === true) killGroup(pid, sig);
    else child.kill(sig);
  };
  const stderr = out === 'capture' || out === 'pipe' ? tail(child.stderr, o.stderrLimit ?? 64 * 1024) : undefined;
  const kept = capped ? [child.stdout, child.stderr].map((s) => captureStream(s, o.outputHead ?? 1024 * 1024, o.outputTail ?? 64 * 1024)) : undefined;
  const flush = lines === undefined ? undefined : splitLines((merged ? child.all : child.stdout) ?? undefined, lines.onLine);
  let timedOut = false;
  let interrupted = false;
  let killer: NodeJS.Timeout | undefined;
  // As timeout(1) -k: the program may stop its services cleanly, but not take longer than the grace.
  const terminate = (): void => {
    send('SIGTERM');
    killer ??= setTimeout(() => send('SIGKILL'), o.graceMs ?? 5000);
  };
  const timer =
    o.timeoutMs === undefined || pid === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          if ((o.timeoutSignal ?? 'SIGKILL') === 'SIGKILL') send('SIGKILL');
          else terminate();
        }, o.timeoutMs);
  const stop = (): void => {
    interrupted = true;
    terminate();
  };
  if (pid !== undefined) o.signal?.addEventListener('abort', stop, { once: true });
  const forwarded = o.forwardSignals === true && pid !== undefined ? (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, (): void => send(sig)] as const) : [];
  for (const [sig, h] of forwarded) process.on(sig, h);
  // With output 'capped' the ending is the leader's exit; execa's result waits for the pipes.
  const ended: Promise<Ending> = capped && pid !== undefined ? leaderExit(child, o.drainMs ?? 2000) : child;
  if (ended !== child) child.catch((err: unknown) => err); // settles (reject: false) once leaderExit closed the pipes
  const result = ended.then((r): ProgramResult => {
    clearTimeout(timer);
    clearTimeout(killer);
    o.signal?.removeEventListener('abort', stop);
    for (const [sig, h] of forwarded) process.removeListener(sig, h);
    // The leader is gone; nothing it started outlives a timeout or an interruption.
    if (o.group === true && (timedOut || interrupted)) killGroup(pid, 'SIGKILL');
    flush?.();
    if (pid === undefined) {
      const failed: ProgramResult = { exitCode: undefined, signal: undefined, timedOut: false, interrupted: false, startError: r.cause instanceof Error ? r.cause.message : r.shortMessage };
      startCauses.set(failed, r.cause ?? r);
      return failed;
    }
    return {
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut,
      interrupted,
      ...(out === 'capture' ? { stdout: Buffer.from(r.stdout as Uint8Array) } : {}),
      ...(stderr === undefined ? {} : { stderr: stderr() }),
      ...(kept?.[0] === undefined || kept[1] === undefined ? {} : { captured: { stdout: kept[0](), stderr: kept[1]() } }),
    };
  });
  const pipes = [child, child.stdin, child.stdout, child.stderr, child.all] as Array<{ ref?: () => unknown; unref?: () => unknown } | null | undefined>;
  return {
    pid,
    ...(pid !== undefined && child.stdin !== null && o.stdin === 'pipe' ? { stdin: child.stdin } : {}),
    ...(pid !== undefined && child.stdout !== null && out === 'pipe' ? { stdout: child.stdout } : {}),
    result,
    kill: (sig, k) => {
      if (pid !== undefined && k?.leaderOnly === true) child.kill(sig);
      else if (pid !== undefined) send(sig);
    },
    ref: () => pipes.forEach((p) => p?.ref?.()),
    unref: () => pipes.forEach((p) => p?.unref?.()),
  };
}

/**
 * Start a long-lived helper of fussy's own (the sync shell, util/sync-fs.ts) with node's spawn,
 * without execa: loading execa costs ~60 ms of the main thread, which an install that runs no
 * hook would pay for this alone, in the middle of its unpack. stdin is a pipe, stdout is read a
 * line at a time, stderr is ignored; its cwd is /. A start failure is the result's startError.
 */
export function startHelper(cmd: string, args: string[], onLine: (line: string) => void): Running {
  const child = spawn(cmd, args, { cwd: '/', stdio: ['pipe', 'pipe', 'ignore'] });
  const flush = splitLines(child.stdout, onLine);
  const result = new Promise<ProgramResult>((resolve) => {
    const none = { timedOut: false, interrupted: false };
    child.once('error', (err) => resolve({ exitCode: undefined, signal: undefined, ...none, startError: err.message }));
    child.once('close', (code, signal) => {
      flush();
      resolve({ exitCode: code ?? undefined, signal: signal ?? undefined, ...none });
    });
  });
  const pipes = [child, child.stdin, child.stdout] as Array<{ ref?: () => unknown; unref?: () => unknown } | null | undefined>;
  return {
    pid: child.pid,
    stdin: child.stdin,
    result,
    kill: (sig) => void child.kill(sig),
    ref: () => pipes.forEach((p) => p?.ref?.()),
    unref: () => pipes.forEach((p) => p?.unref?.()),
  };
}

/** What the result is made of: execa's result, or leaderExit's. */
interface Ending {
  exitCode?: number;
  signal?: string;
  stdout?: unknown;
  cause?: unknown;
  shortMessage?: string;
}

/** Start and wait for the end. */
export async function runProgram(cmd: string, args: string[], o: ProgramOptions = {}): Promise<ProgramResult> {
  return (await startProgram(cmd, args, o)).result;
}

/** True when the program never ran: it could not start, or was aborted before it could. */
export function neverStarted(r: ProgramResult): boolean {
  return r.exitCode === undefined && r.signal === undefined;
}

function notStarted(r: ProgramResult): Running {
  return { pid: undefined, result: Promise.resolve(r), kill: () => {}, ref: () => {}, unref: () => {} };
}

/** The error each start failure came with, for the `cause` of PROGRAM_MISSING. */
const startCauses = new WeakMap<ProgramResult, unknown>();

/** The package that provides each program fussy runs (Debian's name; Fedora's is the same). */
const PROVIDED_BY: Record<string, string> = { gpg: 'gnupg', openssl: 'openssl', sync: 'coreutils', sh: 'dash or bash' };

/** What a missing program was needed for (`needed`, in the message), and what else the user may do (`instead`, in the hint). */
export interface MissingProgramContext {
  needed?: string;
  instead?: string;
}

/**
 * A program fussy needs could not be started: PROGRAM_MISSING (exit 40) naming it and the
 * package that provides it. Every program fussy needs ends here; only firmware hooks
 * (HOOK_FAILED) and the command of `fussy lock` (the user's own) report a start failure their
 * own way.
 */
export function requireStarted(cmd: string, r: ProgramResult, c: MissingProgramContext = {}): void {
  if (r.startError === undefined) return;
  const cause = startCauses.get(r);
  const pkg = PROVIDED_BY[cmd];
  const install = pkg === undefined ? `install ${cmd}` : `install the ${pkg} package, which provides ${cmd}`;
  throw new FussyError('PROGRAM_MISSING', `cannot run ${cmd}${c.needed === undefined ? '' : ` (${c.needed})`}: ${r.startError}`, {
    cause,
    hint: c.instead === undefined ? install : `${install}, ${c.instead}`,
    details: { program: cmd, ...(pkg === undefined ? {} : { package: pkg }) },
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
