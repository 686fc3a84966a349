import { createReadStream, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FussyError } from '../errors.js';
import { history, install, status, STATE_DIR, verify } from '../index.js';
import { linkedCopy } from './linked-copy.js';
import { plan, type StepContext, type StepPlan } from './step.js';

const FAILSAFE = 'failsafe';
const STAGE = '.fussy-provision-failsafe';

/**
 * The release the factory package became: the newest successful install recorded in the target's
 * history whose package has the same sha256. undefined when the target has none (or no history).
 */
async function factoryRelease(c: StepContext, target: string): Promise<string | undefined> {
  if (lstatSync(join(target, STATE_DIR), { throwIfNoEntry: false }) === undefined) return undefined;
  const sha = await c.packageSha256();
  const rec = (await history({ target })).records.filter((r) => r.action === 'install' && r.result === 'ok' && r.package?.sha256 === sha).pop();
  return rec?.release;
}

/**
 * The factory firmware: installed by fussy install (verified against the keyring the keyring
 * step made, hooks chrooted into the root), so the device's first release has its manifest,
 * history record and dedup index like any later one. Done when the target's history records an
 * install of this very package (by sha256) and `current` exists. A target that already holds
 * other firmware is a conflict: provision makes a device's first firmware, it does not update.
 */
export async function firmwareStep(c: StepContext): Promise<StepPlan> {
  const p = plan('firmware');
  const target = c.host(c.config.firmware.target);
  const pkg = c.config.firmware.package;
  // fussy's state must be the target's own directory: install and history act on what is there.
  const state = lstatSync(join(target, STATE_DIR), { throwIfNoEntry: false });
  const link = state === undefined ? undefined : !state.isDirectory() ? '' : linkIn(join(target, STATE_DIR), 2);
  if (link !== undefined) {
    const at = `${c.config.firmware.target}/${STATE_DIR}${link === '' ? '' : `/${link}`}`;
    p.conflicts.push({ path: at, why: link === '' ? 'is not a directory (a link?): fussy keeps its journal and history there' : 'is a link: fussy\'s state holds only its own files', fix: `remove ${at}` });
    return p;
  }
  const release = await factoryRelease(c, target);
  const st = lstatSync(join(target, STATE_DIR), { throwIfNoEntry: false }) === undefined ? undefined : await status({ target });
  if (release !== undefined && st?.current !== undefined) {
    p.done.push(`factory release ${release} from ${basename(pkg)} (current -> ${st.current})`);
    return p;
  }
  // A first install goes into an empty target (fussy's state of a refused try may be there).
  // A fresh file system's empty lost+found may be there too.
  const others = (lstatSync(target, { throwIfNoEntry: false }) === undefined ? [] : readdirSync(target)).filter((n) => n !== STATE_DIR && !(n === 'lost+found' && emptyDir(join(target, n))));
  if (others.length > 0) {
    p.conflicts.push({ path: c.config.firmware.target, why: `already holds ${others.slice(0, 3).join(', ')}${others.length > 3 ? ', ...' : ''}, not installed from ${pkg}${st?.current === undefined ? '' : ` (current -> ${st.current})`}`, fix: 'provision makes a device\'s first firmware: give an empty target, or the package it was provisioned with' });
    return p;
  }
  p.todo.push(`install ${basename(pkg)} into ${c.config.firmware.target}`);
  p.apply = async () => {
    mkdirSync(target, { recursive: true, mode: 0o755 });
    await install({
      package: pkg,
      keyring: c.host(c.config.keyring.dir),
      target,
      hookRoot: c.root === '/' ? undefined : c.root,
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
      cwd: c.root,
      now: c.now,
      onEvent: c.onEvent,
    });
  };
  return p;
}

/**
 * `failsafe`: a copy of the factory release whose files are hard links to it (linked-copy.ts),
 * with its manifest, so `fussy verify failsafe` checks it. Done when `failsafe` exists.
 */
export async function failsafeStep(c: StepContext): Promise<StepPlan> {
  const p = plan('failsafe');
  const target = c.host(c.config.firmware.target);
  const have = lstatSync(join(target, FAILSAFE), { throwIfNoEntry: false });
  if (have?.isDirectory() === true) {
    p.done.push(`${c.config.firmware.target}/${FAILSAFE}`);
    return p;
  }
  if (have !== undefined) {
    p.conflicts.push({ path: `${c.config.firmware.target}/${FAILSAFE}`, why: 'is not a directory', fix: `remove it; provision makes ${FAILSAFE} from the factory release` });
    return p;
  }
  p.todo.push(`make ${c.config.firmware.target}/${FAILSAFE} from the factory release (hard links)`);
  p.apply = async () => {
    const release = await factoryRelease(c, target);
    if (release === undefined) throw new FussyError('SETUP', `${c.config.firmware.target} holds no release installed from ${pkg(c)}`, { hint: 'run fussy provision again: the firmware step installs it' });
    // failsafe shares the release's files: they must still be what the package holds. A release
    // installed without a manifest (a legacy package) cannot be checked: failsafe is a copy of it.
    const [report] = (await verify({ target, names: [release] })).reports;
    if (report?.manifest !== true) return linkedCopy(join(target, release), join(target, FAILSAFE), join(target, STAGE), { copy: true });
    // New files a hook wrote are fine (docs/hooks.md); files changed in place are shared by failsafe.
    const changed = (report?.findings ?? []).filter((x) => x.problem !== 'extra' && x.problem !== 'leftover').map((x) => x.path);
    if (changed.length > 0) {
      throw new FussyError('SETUP', `the factory release ${release} no longer matches its package (${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ', ...' : ''}): failsafe would share the changed files`, {
        hint: 'a hook changed files of its release in place (docs/hooks.md: write new files instead); fix the firmware, or provision from an empty target again',
        details: { changed },
      });
    }
    await linkedCopy(join(target, release), join(target, FAILSAFE), join(target, STAGE));
  };
  return p;
}

const pkg = (c: StepContext): string => c.config.firmware.package;

/** The first symlink within `depth` levels below `dir` (its relative path), if any. */
function linkIn(dir: string, depth: number, rel = ''): string | undefined {
  for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isSymbolicLink()) return r;
    if (e.isDirectory() && depth > 1) {
      const found = linkIn(dir, depth - 1, r);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function emptyDir(path: string): boolean {
  const st = lstatSync(path);
  return st.isDirectory() && readdirSync(path).length === 0;
}

/** The package's sha256, as install records it in the history. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  try {
    await pipeline(createReadStream(file), h);
  } catch (err) {
    throw new FussyError('CONFIG_INVALID', `cannot read the factory package ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err, hint: 'check [firmware] package (relative to the config file)' });
  }
  return h.digest('hex');
}
