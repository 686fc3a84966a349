import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isErrno } from '../errors.js';
import { writeNewFile } from '../util/fs-atomic.js';
import type { FussyEvent } from '../events.js';
import type { ProvisionConfig } from './config.js';
import { devicePath, inRoot } from './root-path.js';

/** One thing in the root that differs from the config and that provision will not overwrite. */
export interface Conflict {
  /** The device path. */
  path: string;
  why: string;
  /** What to do about it. */
  fix: string;
}

export type StepName = 'keyring' | 'firmware' | 'failsafe' | 'link-tree' | 'fussyd' | 'enable';

/** What a step found: what is already as the config says, what it would do, what stops it. */
export interface StepPlan {
  step: StepName;
  done: string[];
  todo: string[];
  conflicts: Conflict[];
  /** Carries out `todo`; absent when there is nothing to do. */
  apply?: () => Promise<void>;
}

/** What every step reads: the config, the root, and paths resolved inside it. */
export interface StepContext {
  config: ProvisionConfig;
  /** The root file system, absolute; `/` provisions the running system. */
  root: string;
  /** The host path of a device path, resolved inside the root (root-path.ts). */
  host: (path: string) => string;
  /** The host path of the entry `path` itself: its directory resolved inside the root, its last component not followed. */
  entry: (path: string) => string;
  /** The device path of a host path under the root. */
  device: (host: string) => string;
  now?: Date;
  onEvent?: (e: FussyEvent) => void;
  /** Steps before this one still have work (so what they make is not there yet). */
  pending: (step: StepName) => boolean;
  /** The factory package's sha256 (computed once). */
  packageSha256: () => Promise<string>;
}

export function stepContext(config: ProvisionConfig, root: string, o: Pick<StepContext, 'now' | 'onEvent' | 'pending' | 'packageSha256'>): StepContext {
  return { config, root, host: (p) => inRoot(root, p), entry: (p) => join(inRoot(root, dirname(p)), basename(p)), device: (h) => devicePath(root, h), ...o };
}

export function plan(step: StepName): StepPlan {
  return { step, done: [], todo: [], conflicts: [] };
}

/** The file's bytes; undefined when nothing is there; a directory or other non-file is 'other'. */
export function fileAt(path: string): Buffer | 'other' | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st === undefined) return undefined;
  if (!st.isFile()) return 'other';
  try {
    return readFileSync(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/**
 * The usual check of a file provision writes whole: absent → to do; the same bytes → done;
 * anything else → a conflict (provision never overwrites what it did not make).
 */
export function wholeFile(p: StepPlan, c: StepContext, hostPath: string, want: Buffer, what: string, write: (path: string) => void, writes: (() => void)[]): void {
  const have = fileAt(hostPath);
  const shown = c.device(hostPath);
  if (have === undefined) {
    p.todo.push(`write ${what} ${shown}`);
    writes.push(() => write(hostPath));
  } else if (have !== 'other' && have.equals(want)) {
    p.done.push(`${what} ${shown}`);
  } else {
    p.conflicts.push({ path: shown, why: `${have === 'other' ? 'is not a regular file' : 'holds something else'} than the ${what} this config asks for`, fix: `move ${shown} away (provision never overwrites), or make the config say what it holds` });
  }
}

/** Create `path` (never over anything: O_EXCL|O_NOFOLLOW) with its parent directories, synced. */
export function writeNew(path: string, data: string | Buffer, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeNewFile(path, data, mode, { sync: true });
}
