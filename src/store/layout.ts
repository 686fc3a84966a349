import { lstat, mkdir, readdir, readlink, rename, stat, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { fsyncDir, unlinkIfExists } from '../util/fs-atomic.js';
import { removeTree } from '../util/remove-tree.js';
import { NO_FAILPOINTS, type Failpoints } from '../util/failpoint.js';

/** The device layout (Fussy's): `current` link, `failsafe` dir, release dirs, hidden `.fussy/`. */
export const CURRENT = 'current';
export const FAILSAFE = 'failsafe';
export const STATE_DIR = '.fussy';

export interface Layout {
  target: string;
  /** Release dir name `current` points at, when it resolves to a directory. */
  current?: string;
  hasFailsafe: boolean;
  /** `current` is a real directory: a factory image not yet turned into failsafe. */
  currentIsDir: boolean;
  /** Release directories (failsafe included), by name. */
  releases: string[];
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return false;
    throw err;
  }
}

function missingTarget(target: string, cause: unknown): FussyError {
  return new FussyError('TARGET_MISSING', `target ${target} does not exist or is not a directory`, { cause, hint: 'create it (mkdir -p), or pass -t DIR' });
}

/** The target is a directory, else the same TARGET_MISSING error every command gives for a mistyped -t. */
export async function requireTarget(target: string): Promise<void> {
  let isDir: boolean;
  try {
    isDir = (await stat(target)).isDirectory();
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw missingTarget(target, err);
    throw err;
  }
  if (!isDir) throw missingTarget(target, undefined);
}

export async function readLayout(target: string): Promise<Layout> {
  let names: string[];
  try {
    names = await readdir(target);
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw missingTarget(target, err);
    throw err;
  }
  const releases: string[] = [];
  for (const n of names.sort()) {
    if (n.startsWith('.') || n === CURRENT || n === `${CURRENT}~`) continue;
    const st = await lstat(join(target, n));
    if (st.isDirectory()) releases.push(n);
  }
  let current: string | undefined;
  let currentIsDir = false;
  try {
    const link = await readlink(join(target, CURRENT));
    const name = basename(link);
    if (releases.includes(name) && (await isDir(join(target, CURRENT)))) current = name;
  } catch (err) {
    if (!isErrno(err, 'ENOENT', 'EINVAL')) throw err;
    currentIsDir = isErrno(err, 'EINVAL') && (await lstat(join(target, CURRENT))).isDirectory();
  }
  return { target, current, hasFailsafe: releases.includes(FAILSAFE), currentIsDir, releases };
}

/**
 * Refuse a layout fussy must not guess about, before anything changes: a real `current`
 * directory next to an existing failsafe.
 */
export function checkLayout(layout: Layout): void {
  if (layout.currentIsDir && layout.hasFailsafe) throw ambiguousFactoryImage(layout.target);
}

function ambiguousFactoryImage(target: string): FussyError {
  return new FussyError('LAYOUT_AMBIGUOUS', `${join(target, CURRENT)} is a directory, not a link, and ${join(target, FAILSAFE)} already exists`, {
    hint: 'move one of them aside by hand: fussy will not decide which is the factory image',
  });
}

/**
 * Fussy's ensure_current_link: a factory image installed as a real `current` directory becomes
 * `failsafe`, and `current -> failsafe`. A real `current` directory next to an existing failsafe
 * is a layout fussy must not guess about.
 */
export async function ensureCurrentLink(target: string, fp: Failpoints = NO_FAILPOINTS): Promise<boolean> {
  const cur = join(target, CURRENT);
  let st;
  try {
    st = await lstat(cur);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
  if (!st.isDirectory()) return false;
  if (await isDir(join(target, FAILSAFE))) throw ambiguousFactoryImage(target);
  await rename(cur, join(target, FAILSAFE));
  await fsyncDir(target);
  fp.at('ensure-current-renamed'); // no `current` at all until the next line: recovery links it
  await swapCurrent(target, FAILSAFE);
  return true;
}

/**
 * Point `current` at `release` atomically: a relative symlink made as `current~`, renamed over
 * `current` (rename(2) replaces atomically), then the directory fsync'd so it survives power loss.
 */
export async function swapCurrent(target: string, release: string): Promise<void> {
  const tmp = join(target, `${CURRENT}~`);
  await unlinkIfExists(tmp);
  await symlink(release, tmp);
  await rename(tmp, join(target, CURRENT));
  await fsyncDir(target);
}

/** `<name>`, else `<name>-1`, `<name>-2`, ... (Fussy's collision rule: any existing entry counts). */
export async function freeReleaseName(target: string, name: string): Promise<string> {
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? name : `${name}-${i}`;
    try {
      await lstat(join(target, candidate));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return candidate;
      throw err;
    }
  }
}

/** `current`'s release name, or undefined when there is no `current` link. */
export async function currentName(target: string): Promise<string | undefined> {
  try {
    return basename(await readlink(join(target, CURRENT)));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'EINVAL')) return undefined;
    throw err;
  }
}

/** Prefix of releases being deleted, inside the state dir. */
export const TRASH_PREFIX = 'trash-';

/**
 * Delete a release without ever leaving half of it under a release name: it is renamed into the
 * state dir first (atomic, made durable), then removed. A crash in between leaves only a
 * `.fussy/trash-*` dir, which the next command that takes the lock removes (recover.ts).
 */
export async function discardRelease(target: string, name: string): Promise<void> {
  const stateDir = join(target, STATE_DIR);
  await mkdir(stateDir, { recursive: true });
  const trash = join(stateDir, `${TRASH_PREFIX}${name}-${process.pid}-${Date.now()}`);
  try {
    await rename(join(target, name), trash);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  await fsyncDir(target);
  await removeTree(trash);
}
