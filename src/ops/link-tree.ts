import { closeSync, linkSync, lstatSync, mkdirSync, renameSync, symlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { at, openDirBeneath, withDirBeneath } from '../util/dir-fd.js';

export interface LinkTreeOptions {
  source: string;
  dest: string;
  /** Hard links instead of symbolic ones (same file system only). */
  hard?: boolean;
  /** Move a different existing entry aside to NAME.fussy-orig instead of failing. */
  force?: boolean;
  dryRun?: boolean;
  /**
   * Symbolic links spell the source as this path instead (absolute): the tree is read at
   * `source`, a root file system mounted elsewhere, and the links are made for the device that
   * will boot it (fussy provision). Not with `hard`.
   */
  linkTo?: string;
}

export type LinkAction = 'mkdir' | 'link' | 'unchanged' | 'replace';

export interface LinkStep {
  action: LinkAction;
  /** Path under dest. */
  path: string;
  /** What it points at (link, replace). */
  target?: string;
  /** Where the previous entry went (replace). */
  aside?: string;
}

export interface LinkTreeResult {
  steps: LinkStep[];
  dryRun: boolean;
}

/** Suffix of entries moved aside by --force. */
export const ORIG_SUFFIX = '.fussy-orig';

/**
 * `fussy link-tree SOURCE DEST` (docs/commands.md, Fussy's link-tree): every file under SOURCE gets a link
 * at the same relative path under DEST; directories are created. Decision: symbolic links are
 * absolute and spell SOURCE as given, without resolving its symlinks, so that
 * `fussy link-tree /opt/firmware/current/etc /etc` makes `/etc/x -> /opt/firmware/current/etc/x`,
 * which follows `current` to each new release. A symlink inside SOURCE is linked to like a file.
 * Idempotent: a link that is already right is left alone. The whole plan is made first; an
 * existing different entry stops it before anything changes (LINK_CONFLICT, all of them named),
 * unless `force`, which renames it to NAME.fussy-orig (never over an existing one) first.
 */
export async function linkTree(o: LinkTreeOptions): Promise<LinkTreeResult> {
  const source = resolve(o.source);
  const dest = resolve(o.dest);
  const st = await lstat(source).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new FussyError('BAD_SOURCE', `source ${source} does not exist`, { hint: 'give the directory whose files should be linked' });
    throw err;
  });
  if (!st.isDirectory()) throw new FussyError('BAD_SOURCE', `source ${source} is not a directory`, { hint: 'fussy link-tree links the files under a directory' });
  if (o.linkTo !== undefined && (o.hard === true || !isAbsolute(o.linkTo))) throw new Error('linkTo is an absolute path, and only for symbolic links');
  const spelled = o.linkTo ?? source;
  if (dest === source || dest.startsWith(`${source}/`)) throw new FussyError('USAGE', `destination ${dest} is inside the source ${source}`, { hint: 'link into a directory outside the source' });

  const steps: LinkStep[] = [];
  const conflicts: string[] = [];
  const plan = async (rel: string): Promise<void> => {
    for (const e of (await readdir(join(source, rel), { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      const from = join(spelled, r);
      const at = join(dest, r);
      const have = await lstat(at).catch((err: unknown) => {
        if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined; // ENOTDIR: a parent is being replaced
        throw err;
      });
      if (e.isDirectory()) {
        if (have === undefined) steps.push({ action: 'mkdir', path: r });
        else if (!have.isDirectory()) await conflict(r, at, 'mkdir');
        await plan(r);
        continue;
      }
      if (have === undefined) {
        steps.push({ action: 'link', path: r, target: from });
      } else if (o.hard === true ? await sameInode(at, join(source, r)) : have.isSymbolicLink() && (await readlink(at)) === from) {
        steps.push({ action: 'unchanged', path: r, target: from });
      } else {
        await conflict(r, at, 'link', from);
      }
    }
  };
  const conflict = async (r: string, at: string, then: 'mkdir' | 'link', target?: string): Promise<void> => {
    const aside = `${at}${ORIG_SUFFIX}`;
    if (o.force !== true) {
      conflicts.push(at);
      return;
    }
    if (await lstat(aside).then(() => true, (err: unknown) => (isErrno(err, 'ENOENT') ? false : Promise.reject(err)))) {
      throw new FussyError('LINK_CONFLICT', `${at} differs and ${aside} already exists: fussy will not overwrite a saved original`, { hint: `move ${aside} somewhere safe, then run again` });
    }
    steps.push({ action: 'replace', path: r, target, aside });
    if (then === 'mkdir') steps.push({ action: 'mkdir', path: r });
  };
  if (!(await lstat(dest).then((s) => s.isDirectory(), () => false))) steps.unshift({ action: 'mkdir', path: '.' });
  await plan('');
  if (conflicts.length > 0) {
    const what = conflicts.length === 1 ? '1 destination already exists and differs' : `${conflicts.length} destinations already exist and differ`;
    throw new FussyError('LINK_CONFLICT', `${what}: ${conflicts.slice(0, 10).join(', ')}${conflicts.length > 10 ? ', ...' : ''}`, {
      hint: 'nothing was changed; --force moves them aside to NAME.fussy-orig, --dry-run shows the plan',
      details: { conflicts },
    });
  }
  if (o.dryRun !== true) await apply(source, dest, steps, o.hard === true);
  return { steps, dryRun: o.dryRun === true };
}

/**
 * Carry out the plan. As root, DEST is usually a system directory whose subdirectories a service
 * user may own: every change is made through a descriptor of its parent opened component by
 * component with O_NOFOLLOW from DEST (dir-fd.ts), so a directory swapped for a symlink after the
 * plan was made stops the run instead of leading root elsewhere. DEST itself is the path the
 * caller gave (symlinks in it resolved, as before).
 */
async function apply(source: string, destPath: string, steps: LinkStep[], hard: boolean): Promise<void> {
  if (steps[0]?.action === 'mkdir' && steps[0].path === '.') await mkdir(destPath, { recursive: true });
  const dest = await realpath(destPath);
  const src = hard ? await realpath(source) : source;
  let open: { rel: string; fd: number } | undefined;
  const parent = (rel: string): number => {
    if (open?.rel === rel) return open.fd;
    if (open !== undefined) closeSync(open.fd);
    open = undefined;
    open = { rel, fd: openDirBeneath(dest, rel) };
    return open.fd;
  };
  try {
    for (const s of steps) {
      if (s.path === '.') continue;
      const at0 = join(destPath, s.path);
      try {
        const dir = parent(s.path.includes('/') ? dirname(s.path) : '');
        const here = at(dir, basename(s.path));
        if (s.action === 'mkdir') mkdirExisting(here);
        else if (s.action === 'replace') renameSync(here, at(dir, basename(s.aside as string)));
        if (s.action === 'link' || (s.action === 'replace' && s.target !== undefined)) makeLink(src, s, here, at0, hard);
      } catch (err) {
        if (!isErrno(err, 'ELOOP', 'ENOTDIR', 'EEXIST', 'ENOENT')) throw err;
        throw new FussyError('LINK_CONFLICT', `${at0} changed while linking (${(err as NodeJS.ErrnoException).code}): a directory on its path was replaced, or an entry appeared`, { cause: err, hint: 'run again to see the new plan' });
      }
    }
  } finally {
    if (open !== undefined) closeSync(open.fd);
  }
}

function mkdirExisting(path: string): void {
  try {
    mkdirSync(path, 0o777); // less the umask, as mkdir -p
  } catch (err) {
    if (!isErrno(err, 'EEXIST') || !lstatSync(path).isDirectory()) throw err;
  }
}

/**
 * A symlink to the source path as given, or a hard link to the source file named through its
 * parent's O_NOFOLLOW descriptor (link(2) does not follow the last component either).
 */
function makeLink(source: string, s: LinkStep, here: string, shown: string, hard: boolean): void {
  const from = s.target as string;
  if (!hard) {
    symlinkSync(from, here);
    return;
  }
  try {
    withDirBeneath(source, s.path.includes('/') ? dirname(s.path) : '', (dir) => linkSync(at(dir, basename(s.path)), here));
  } catch (err) {
    if (isErrno(err, 'EXDEV')) throw new FussyError('CROSS_DEVICE', `cannot hard-link ${shown} to ${from}: they are on different file systems`, { cause: err, hint: 'use symbolic links (drop --hard)' });
    throw err;
  }
}

async function sameInode(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([lstat(a), lstat(b)]);
  return x.dev === y.dev && x.ino === y.ino;
}
