import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FussyError, isErrno, type ErrorCode } from '../errors.js';
import type { FussyEvent, InstallResult } from '../index.js';
import { startProgram } from '../util/run.js';
import type { InstallRequest } from './install-child.js';
import { readMessages } from './install-messages.js';

export interface RunInstallOptions {
  /** The package file (an upload's verified `.pkg`): the child opens it, the daemon never reads it. */
  package: string;
  keyring: string;
  target: string;
  /** Added to PATH and LANG for the child and its hooks (docs/hooks.md); nothing of the daemon's own environment is passed. */
  env?: Record<string, string>;
  hookTimeoutMs?: number;
  reserveBytes?: number;
  allowDowngrade?: boolean;
  deviceType?: string;
  /** Cancels: SIGTERM to the child (a refusal before the switch, completed after it); see killAfterMs. */
  signal?: AbortSignal;
  /** After a cancel, SIGKILL the child this much later if it has not reported the switch yet (600,000 ms). */
  killAfterMs?: number;
  onEvent?: (e: FussyEvent) => void;
  /** Testing only: util/failpoint.ts in the child. */
  failpoint?: string;
  /** The node binary (this one). */
  node?: string;
}

/** `code` INTERNAL (exit 1): the child crashed, was killed or reported no result. */
export interface InstallFailure {
  code: ErrorCode | 'INTERNAL';
  exitCode: number;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
}

export type InstallOutcome = { ok: true; result: InstallResult } | { ok: false; error: InstallFailure };

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const KILL_AFTER_MS = 600_000;

/** Targets with an install running in this process: a second one is LOCKED at once. */
const running = new Set<string>();

/**
 * Install a package the way `fussy install` does, in a child `node` (install-child.ts) in its
 * own process group, with stdin /dev/null, cwd `/` and a minimal environment; its events reach
 * `onEvent` as they come. Refusals and failures are outcomes with the exit status `fussy install`
 * would give; a child that dies is an INTERNAL outcome naming how, and the daemon goes on (the
 * next install recovers the target, docs/crash-safety.md). Rejects only for a bug (or a throwing
 * onEvent).
 */
export async function runInstall(o: RunInstallOptions): Promise<InstallOutcome> {
  const target = canonical(o.target);
  if (running.has(target)) return failed(new FussyError('LOCKED', `an install into ${target} is running in fussyd`, { hint: 'wait for it to end, then try again', details: { target } }));
  if (o.signal?.aborted === true) return failed(new FussyError('INTERRUPTED', `the install into ${target} was cancelled before it started`, { details: { target } }));
  running.add(target);
  try {
    return await installInChild(o, target);
  } finally {
    running.delete(target);
  }
}

async function installInChild(o: RunInstallOptions, target: string): Promise<InstallOutcome> {
  const env = { ...o.env, PATH: o.env?.PATH ?? PATH, LANG: o.env?.LANG ?? 'C.UTF-8' };
  const request: InstallRequest = {
    package: resolve(o.package),
    keyring: resolve(o.keyring),
    target,
    env,
    cwd: '/',
    hookTimeoutMs: o.hookTimeoutMs,
    reserveBytes: o.reserveBytes,
    allowDowngrade: o.allowDowngrade,
    deviceType: o.deviceType,
    failpoint: o.failpoint,
  };
  const child = await startProgram(o.node ?? process.execPath, [fileURLToPath(new URL('./install-child.js', import.meta.url)), JSON.stringify(request)], {
    env,
    extendEnv: false,
    cwd: '/',
    stdin: 'ignore',
    output: 'pipe',
    group: true,
  });
  let switched = false;
  let killer: NodeJS.Timeout | undefined;
  let ready = false;
  let cancelled = false;
  // The child alone: its handler aborts the install, which stops its hooks' groups itself. Not
  // before it says its handler is there (a SIGTERM would kill it unrecorded while it loads).
  const terminate = (): void => child.kill('SIGTERM', { leaderOnly: true });
  const cancel = (): void => {
    cancelled = true;
    if (ready) terminate();
    killer = setTimeout(() => {
      if (!switched) child.kill('SIGKILL');
    }, o.killAfterMs ?? KILL_AFTER_MS);
  };
  const onReady = (): void => {
    ready = true;
    if (cancelled) terminate();
  };
  o.signal?.addEventListener('abort', cancel, { once: true });
  // Aborted while the child was being started: no 'abort' event comes for that.
  if (o.signal?.aborted === true) cancel();
  try {
    const messages = readMessages(
      child.stdout,
      (e) => {
        if (e.type === 'switch' && !e.recovery) switched = true;
        o.onEvent?.(e);
      },
      onReady,
    );
    const [r, said] = await Promise.all([child.result, messages]);
    if (r.startError !== undefined) return failed(new FussyError('PROGRAM_MISSING', `cannot start the install process (${o.node ?? process.execPath}): ${r.startError}`, { hint: 'check the node installation fussyd runs with' }));
    if (said.eventError !== undefined) throw said.eventError;
    if (said.result !== undefined && r.exitCode === 0) return { ok: true, result: said.result };
    if (said.error !== undefined && r.signal === undefined) return { ok: false, error: said.error };
    const how = r.signal !== undefined ? `was killed by ${r.signal}` : `exited with status ${String(r.exitCode)}`;
    const last = r.stderr?.trim().split('\n').pop();
    return {
      ok: false,
      error: {
        code: 'INTERNAL',
        exitCode: 1,
        message: `the install process (pid ${String(child.pid)}) ${how} before it reported a result${switched ? ', after the switch' : ''}${last === undefined || last === '' ? '' : `: ${last}`}`,
        hint: `the next install (or fussy recover -t ${target}) finishes or undoes what it left (docs/crash-safety.md); status shows where the target is`,
        details: { pid: child.pid, signal: r.signal, exitCode: r.exitCode, switched, droppedLines: said.dropped },
      },
    };
  } finally {
    o.signal?.removeEventListener('abort', cancel);
    clearTimeout(killer);
  }
}

function failed(err: FussyError): InstallOutcome {
  return { ok: false, error: { code: err.code, exitCode: err.exitCode, message: err.message, hint: err.hint, details: err.details } };
}

/** The target's real path, so two spellings of one target share the lock (its own path if it does not exist yet). */
function canonical(target: string): string {
  try {
    return realpathSync(target);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return resolve(target);
    throw err;
  }
}
