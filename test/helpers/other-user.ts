import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';

/** The unprivileged user the attack tests run their attacker as (nobody). */
export const NOBODY = 65534;

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));

/** Attack tests need root (CI runs as root) to start a real second user with setpriv(1). */
export function canSwitchUser(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/setpriv');
}

export interface UserResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run a command as `uid` (default nobody), with no supplementary groups, like a local user would. */
export async function asUser(cmd: string, args: string[], opts: Options & { uid?: number } = {}): Promise<UserResult> {
  const { uid = NOBODY, ...rest } = opts;
  const r = await execa('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', cmd, ...args], { reject: false, stdin: 'ignore', timeout: 60_000, ...rest });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), timedOut: r.timedOut };
}

/** A shell snippet as the other user (`sh -c SCRIPT`). */
export function shAs(script: string, opts: Options & { uid?: number } = {}): Promise<UserResult> {
  return asUser('sh', ['-c', script], opts);
}

/** The real fussy CLI as the other user. */
export function fussyAs(args: string[], opts: Options & { uid?: number } = {}): Promise<UserResult> {
  return asUser(process.execPath, [FUSSY, ...args], opts);
}

/** The real fussy CLI as this process's user, in a child with a time limit (a stall fails the test, not the run). */
export async function fussy(args: string[], opts: Options = {}): Promise<UserResult> {
  const r = await execa(process.execPath, [FUSSY, ...args], { reject: false, stdin: 'ignore', timeout: 60_000, ...opts });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), timedOut: r.timedOut };
}
