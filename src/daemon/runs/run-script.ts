import { chownSync, mkdirSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Captured } from '../../util/capture.js';
import { writeNewFile } from '../../util/fs-atomic.js';
import { readSmallFile } from '../../util/read-small-file.js';
import { removeTree } from '../../util/remove-tree.js';
import { startProgram } from '../../util/run.js';
import type { RunUser } from './users.js';

/** How a script runs: executed directly (`#!`), in the js host (run(ctx)), in the Viri host (class ViriScript). */
export type ScriptKind = 'exec' | 'js' | 'viri';

/** A stored script's bytes and the name its kind comes from. */
export interface ScriptFile {
  name: string;
  id: string;
  path: string;
  /** A symlink to the object whose last component is the name: run through it, `$0` is the script's name. */
  named?: string;
  /** A firmware job's program: executed in place (it is a trusted path of the release: jobs.ts), from `cwd`. */
  direct?: { cwd: string };
}

/** The programs that host js and Viri scripts. */
export interface RunHosts {
  node: string;
  jsHost: string;
  python: string;
  viriHost: string;
}

export function defaultHosts(): RunHosts {
  return {
    node: process.execPath,
    jsHost: fileURLToPath(new URL('./js-host.js', import.meta.url)),
    python: 'python3',
    viriHost: fileURLToPath(new URL('./viri-host.py', import.meta.url)),
  };
}

export interface RunScriptOptions {
  runId: string;
  script: ScriptFile;
  /** The stored `__base__` scripts: `__base__`/`.js`/`.mjs` for js scripts, `__base__.py` for Viri's. */
  bases?: { js?: ScriptFile; py?: ScriptFile };
  args: string[];
  /** STATE/runs/work: each run gets a directory of its own there, removed after the run. */
  workRoot: string;
  dataDir: string;
  /** The current release (FUSSY_FIRMWARE, ctx.firmwareDir). */
  firmwareDir: string;
  /** Who started it (FUSSY_CALLER): a client certificate's CN, or `schedule:JOB`. */
  caller: string;
  /** Run as this user (its uid and gid, no supplementary groups); default: fussyd's own. */
  user?: RunUser;
  timeoutMs: number;
  /** SIGTERM to SIGKILL (5000 ms). */
  graceMs?: number;
  outputHead?: number;
  outputTail?: number;
  /** After the leader's exit, how long to wait for the pipes (2000 ms). */
  drainMs?: number;
  /** ctx.device of js scripts. */
  device?: Record<string, unknown>;
  /** `self.conf` of Viri scripts. */
  conf?: Record<string, unknown>;
  hosts?: RunHosts;
  /** Stops the run: SIGTERM to its group, SIGKILL a grace later. */
  signal?: AbortSignal;
  /** Its stdin (a notify run's JSON); default /dev/null. */
  stdin?: Buffer;
  /** Variables added to the run's minimal environment (a notify run's FUSSY_NOTIFY_*). */
  env?: Record<string, string>;
  /** Awaited just before the spawn, after the preparation (the history's queued record on disk); a rejection means the run does not start. */
  beforeSpawn?: () => Promise<void>;
  /** Called with the leader's pid as soon as it runs, awaited (the history's start record). */
  onSpawn?: (pid: number) => Promise<void> | void;
}

/** How a run ended: util/run.ts's ending, the capped output, and what a js/Viri run() returned or threw. */
export interface RunOutcome {
  kind: ScriptKind;
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  interrupted: boolean;
  startError?: string;
  stdout: Captured;
  stderr: Captured;
  durationMs: number;
  result?: unknown;
  error?: { message: string; stack?: string };
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const NOTHING: Captured = { head: Buffer.alloc(0), tail: Buffer.alloc(0), totalBytes: 0, truncated: false };

/** The kind of a script, from its name's extension and, for `.py`, whether it defines Viri's class. */
export function scriptKind(name: string, bytes: Buffer): ScriptKind {
  if (/\.m?js$/.test(name)) return 'js';
  if (name.endsWith('.py') && /^class\s+ViriScript\b/m.test(bytes.toString('utf8'))) return 'viri';
  return 'exec';
}

/**
 * Run one script to its end (docs/daemon.md "Runs"). Replacing the script in the store mid-run
 * changes nothing that runs: an executable script run as fussyd's own user runs from its object
 * (content-addressed, never rewritten with other bytes, never removed), anything else from a copy
 * in a run directory of its own (the run's user's, removed after). Its process group, /dev/null
 * stdin, minimal environment, time limit and capped, always drained output are util/run.ts's;
 * the run ends at the leader's exit plus the drain.
 */
export async function runScript(o: RunScriptOptions): Promise<RunOutcome> {
  if (o.script.direct !== undefined) {
    if (!runnable(await head(o.script.path))) return notStarted('exec', `${o.script.name}: exec format error: it starts with neither "#!" nor an ELF header`);
    return start(o, 'exec', o.script.path, o.args, undefined);
  }
  const bytes = await readFile(o.script.path);
  const kind = scriptKind(o.script.name, bytes);
  if (kind === 'exec' && !runnable(bytes)) return notStarted(kind, `${o.script.name}: exec format error: it starts with neither "#!" nor an ELF header`);
  const own = o.user === undefined || (o.user.uid === process.getuid?.() && o.user.gid === process.getgid?.());
  // The object is 0500 in a 0700 directory, fussyd's: another user can neither read nor reach it.
  if (kind === 'exec' && own) return start(o, kind, o.script.named ?? o.script.path, o.args, undefined);
  const work = join(o.workRoot, o.runId);
  mkdirSync(work, { mode: 0o700 });
  try {
    if (o.user !== undefined) chownSync(work, o.user.uid, o.user.gid);
    const file = place(work, o.script.name, bytes, o.user);
    const hosts = o.hosts ?? defaultHosts();
    let cmd = file;
    let args = o.args;
    const result = join(work, '.result.json');
    if (kind !== 'exec') {
      const base = o.script.name.startsWith('__base__') ? undefined : kind === 'js' ? o.bases?.js : o.bases?.py;
      const baseName = kind === 'viri' ? '__base__.py' : base?.name.endsWith('.mjs') === true ? '__base__.mjs' : '__base__.js';
      const basePath = base === undefined ? '' : place(work, baseName, await readFile(base.path), o.user);
      const ctx = { dataDir: o.dataDir, firmwareDir: o.firmwareDir, device: o.device ?? {}, args: o.args, conf: o.conf ?? {}, runId: o.runId };
      const ctxFile = place(work, '.ctx.json', Buffer.from(JSON.stringify(ctx)), o.user);
      [cmd, args] = kind === 'js' ? [hosts.node, [hosts.jsHost, file, basePath, ctxFile, result]] : [hosts.python, [hosts.viriHost, file, basePath, ctxFile, result]];
    }
    return await start(o, kind, cmd, args, kind === 'exec' ? undefined : result);
  } finally {
    await removeTree(work);
  }
}

/** Spawn the prepared command and wait for the run's end; `result`: the js/Viri host's result file. */
async function start(o: RunScriptOptions, kind: ScriptKind, cmd: string, args: string[], result: string | undefined): Promise<RunOutcome> {
  const env = { ...o.env, PATH, HOME: o.user?.home ?? '/', LANG: 'C.UTF-8', FUSSY_RUN_ID: o.runId, FUSSY_DATA_DIR: o.dataDir, FUSSY_FIRMWARE: o.firmwareDir, FUSSY_CALLER: o.caller };
  const asUser = o.user !== undefined && (o.user.uid !== process.getuid?.() || o.user.gid !== process.getgid?.()) ? { uid: o.user.uid, gid: o.user.gid } : {};
  await o.beforeSpawn?.();
  const t0 = performance.now();
  const running = await startProgram(cmd, args, {
    ...asUser,
    env,
    extendEnv: false,
    cwd: o.script.direct?.cwd ?? o.dataDir,
    stdin: o.stdin ?? 'ignore',
    group: true,
    output: 'capped',
    outputHead: o.outputHead,
    outputTail: o.outputTail,
    drainMs: o.drainMs,
    timeoutMs: o.timeoutMs,
    timeoutSignal: 'SIGTERM',
    graceMs: o.graceMs,
    signal: o.signal,
  });
  if (running.pid !== undefined) await o.onSpawn?.(running.pid);
  const r = await running.result;
  const ended: RunOutcome = {
    kind,
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    interrupted: r.interrupted,
    ...(r.startError === undefined ? {} : { startError: r.startError }),
    stdout: r.captured?.stdout ?? NOTHING,
    stderr: r.captured?.stderr ?? NOTHING,
    durationMs: Math.round(performance.now() - t0),
  };
  return result === undefined || r.startError !== undefined ? ended : { ...ended, ...hostResult(result) };
}

/** A copy of a script (or the host's context) in the run directory, the run's user's, read-only. */
function place(work: string, name: string, bytes: Buffer, user: RunUser | undefined): string {
  const file = join(work, name);
  writeNewFile(file, bytes, 0o500);
  if (user !== undefined) chownSync(file, user.uid, user.gid);
  return file;
}

/** The first bytes of a file (enough for runnable()). */
async function head(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** execve(2) runs it itself: a `#!` line or an ELF binary. Anything else the C library would hand to /bin/sh (execvp's ENOEXEC fallback): refused instead. */
function runnable(bytes: Buffer): boolean {
  return (bytes[0] === 0x23 && bytes[1] === 0x21) || bytes.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

function notStarted(kind: ScriptKind, why: string): RunOutcome {
  return { kind, exitCode: undefined, signal: undefined, timedOut: false, interrupted: false, startError: why, stdout: NOTHING, stderr: NOTHING, durationMs: 0 };
}

/** What the host wrote to the result file (read as root from a directory the run's user owns: no link, no FIFO, bounded). */
function hostResult(file: string): Pick<RunOutcome, 'result' | 'error'> {
  const read = readSmallFile(file, 2 * 1024 * 1024);
  if (read === undefined) return {};
  if ('problem' in read) return { error: { message: `the script's result file ${read.problem}` } };
  let parsed: { ok?: unknown; value?: unknown; error?: unknown; stack?: unknown };
  try {
    parsed = JSON.parse(read.data.toString('utf8')) as typeof parsed;
  } catch (err) {
    return { error: { message: `the script's result does not parse: ${(err as Error).message}` } };
  }
  if (parsed.ok === true) return 'value' in parsed ? { result: parsed.value } : {};
  return { error: { message: String(parsed.error), ...(typeof parsed.stack === 'string' ? { stack: parsed.stack } : {}) } };
}
