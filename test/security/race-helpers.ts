import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pack } from '../../src/pack/pack.js';
import type { Device } from '../helpers/device.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

/** The local attacker: user and group nobody, in a second process (setpriv(1)). */
export const NOBODY = 65534;
const SETPRIV = ['--reuid=65534', '--regid=65534', '--clear-groups'];

/** Races need root (to be the victim) and setpriv (to be the attacker). */
export function canRaceAsNobody(): boolean {
  return process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
}

/** Run a node script (CommonJS body, `args` in process.argv.slice(1)) as nobody and wait for it. */
export function asNobodySync(code: string, args: string[]): string {
  return execFileSync('setpriv', [...SETPRIV, process.execPath, '-e', code, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface Attacker {
  /** Resolves with what the script printed once it exited; rejects if it failed. */
  done: Promise<string>;
}

/** Start a node script as nobody in the background. */
export function asNobody(code: string, args: string[]): Attacker {
  const child = spawn('setpriv', [...SETPRIV, process.execPath, '-e', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<string>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`attacker exited ${code}: ${err}`))));
  });
  return { done };
}

/** Wait (bounded) until `file` exists: the attacker's "I am running" or "I did it". */
export async function untilExists(file: string, what: string): Promise<void> {
  for (let i = 0; !existsSync(file); i++) {
    if (i > 3000) throw new Error(`gave up waiting for ${what} (${file})`);
    await sleep(10);
  }
}

/** A temp dir nobody can traverse (the chain to it must be, too) with a `ctl` dir nobody can write. */
export async function raceDir(tmp: string): Promise<{ dir: string; ctl: string }> {
  await chmod(tmp, 0o755);
  const ctl = join(tmp, 'ctl');
  await mkdir(ctl);
  await chown(ctl, NOBODY, NOBODY);
  return { dir: tmp, ctl };
}

/** Pack a firmware tree in which `nobodyDirs` (and `nobodyFiles`) belong to nobody: as root, install keeps owners. */
export async function packOwned(tmp: string, dev: Device, name: string, files: SampleFile[], owned: { dirs?: string[]; files?: string[] } = {}): Promise<string> {
  const src = await writeTree(join(tmp, 'build', name), files);
  for (const d of [...(owned.dirs ?? []), ...(owned.files ?? [])]) await chown(d === '.' ? src : join(src, d), NOBODY, NOBODY);
  return (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${name}.gpg`) })).path;
}

/** Everything about a file or a tree of files that root must not change: content, mode, owner, inode, ctime. */
export function victimState(path: string): unknown {
  const st = lstatSync(path);
  const me = { mode: st.mode, uid: st.uid, gid: st.gid, ino: st.ino, ctimeMs: st.ctimeMs };
  if (st.isDirectory()) return { ...me, entries: readdirSync(path).sort().map((n) => [n, victimState(join(path, n))]) };
  if (st.isFile()) return { ...me, content: readFileSync(path, 'utf8') };
  return me;
}
