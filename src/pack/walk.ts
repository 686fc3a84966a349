import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { Minimatch } from 'minimatch';
import { FussyError, isErrno } from '../errors.js';
import { permissionDenied } from '../util/system-error.js';
import type { EntryType } from '../archive/manifest.js';
import { MANIFEST_NAME } from '../archive/manifest.js';
import { resolveLink, type NodeKind } from '../archive/resolve-link.js';

/** Version-control metadata never belongs in firmware (Fussy's DEFAULT_EXCLUDES). */
export const DEFAULT_EXCLUDES = ['.git', '.svn', '.bzr'];

/** The part of lstat(2) a package records; kept instead of Stats so big trees stay small in memory. */
export interface FileMeta {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
}

const meta = (s: Stats): FileMeta => ({ mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, mtimeMs: s.mtimeMs });

export interface WalkEntry {
  /** Release-relative POSIX path; "." for the root. */
  path: string;
  abs: string;
  type: EntryType;
  stat: FileMeta;
  /** Symlink target, or the earlier release path a hard link shares its inode with. */
  target?: string;
}

/**
 * Compile --exclude patterns with GNU tar's meaning: a pattern without "/" matches a name at any
 * depth, one with "/" matches the release-relative path. A match excludes the whole subtree.
 */
export function excluder(patterns: string[]): (rel: string, name: string) => boolean {
  const all = [...patterns, ...DEFAULT_EXCLUDES];
  const opts = { dot: true, nocomment: true, nonegate: true };
  const byName = all.filter((p) => !p.includes('/')).map((p) => new Minimatch(p, opts));
  const byPath = all
    .filter((p) => p.includes('/'))
    .map((p) => new Minimatch(p.replace(/^\.?\/+/, '').replace(/\/+$/, ''), opts));
  return (rel, name) => byName.some((m) => m.match(name)) || byPath.some((m) => m.match(rel));
}

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * Walk `root` depth-first with each directory's names in byte order (GNU tar --sort=name),
 * refusing anything a release may not contain. Hard links inside the tree become `hardlink`
 * entries pointing at the first path of their inode.
 */
export async function walkTree(root: string, excludes: string[] = []): Promise<WalkEntry[]> {
  const isExcluded = excluder(excludes);
  const entries: WalkEntry[] = [];
  const inodes = new Map<string, { first: string; seen: number; nlink: number }>();

  const visit = async (rel: string, abs: string): Promise<void> => {
    const stat = await lstatInTree(abs);
    if (stat.isDirectory()) {
      entries.push({ path: rel, abs, type: 'directory', stat: meta(stat) });
      const names = (await readdir(abs)).sort(byBytes);
      for (const name of names) {
        if (rel === '.' && name === MANIFEST_NAME) continue; // fussy writes its own
        const childRel = rel === '.' ? name : `${rel}/${name}`;
        if (isExcluded(childRel, name)) continue;
        await visit(childRel, join(abs, name));
      }
    } else if (stat.isFile()) {
      const key = `${stat.dev}:${stat.ino}`;
      const group = inodes.get(key);
      if (group !== undefined) {
        group.seen += 1;
        entries.push({ path: rel, abs, type: 'hardlink', stat: meta(stat), target: group.first });
      } else {
        if (stat.nlink > 1) inodes.set(key, { first: rel, seen: 1, nlink: stat.nlink });
        entries.push({ path: rel, abs, type: 'file', stat: meta(stat) });
      }
    } else if (stat.isSymbolicLink()) {
      entries.push({ path: rel, abs, type: 'symlink', stat: meta(stat), target: await readlink(abs) });
    } else {
      throw new FussyError('UNSAFE_PATH', `${abs} is a ${kindOf(stat)}; firmware may only hold files, directories and links`, {
        hint: 'remove it from the tree or exclude it with --exclude; device nodes are created by the device at boot',
      });
    }
  };
  await visit('.', root);

  for (const group of inodes.values()) {
    if (group.seen < group.nlink) {
      throw new FussyError('UNSAFE_PATH', `${join(root, group.first)} is hard-linked to a file outside ${root} (${group.nlink} links, ${group.seen} inside)`, {
        hint: 'give it its own copy (cp --remove-destination) or pack the other link too',
      });
    }
  }
  checkSymlinks(root, entries);
  return entries;
}

function checkSymlinks(root: string, entries: WalkEntry[]): void {
  const nodes = new Map<string, NodeKind>();
  for (const e of entries) {
    if (e.path === '.') continue;
    nodes.set(e.path, e.type === 'symlink' ? { type: 'symlink', target: e.target as string } : { type: e.type === 'directory' ? 'directory' : 'file' });
  }
  // All of them in one error: a real library tree holds dozens, and one per run took 20 runs (issue 11).
  const bad: Array<{ path: string; target: string; problem: string }> = [];
  for (const e of entries) {
    if (e.type !== 'symlink') continue;
    const r = resolveLink(e.path, e.target as string, (p) => nodes.get(p));
    if (!r.inside || r.loop) bad.push({ path: e.path, target: e.target as string, problem: r.loop ? 'is part of a symlink loop' : 'points outside the release' });
  }
  const [first] = bad;
  if (first === undefined) return;
  const message = bad.length === 1
    ? `symlink ${join(root, first.path)} -> ${first.target} ${first.problem}`
    : `${bad.length} symlinks in ${root} point outside the release or form a loop:\n${bad.map((b) => `  ${b.path} -> ${b.target} (${b.problem.replace(/^is /, '')})`).join('\n')}`;
  throw new FussyError('UNSAFE_PATH', message, {
    hint: 'make each a relative link to a path inside the firmware tree (the device resolves absolute links against its own root, not the release), or leave them out with --exclude PATTERN (repeatable)',
    details: { symlinks: bad },
  });
}

async function lstatInTree(abs: string): Promise<Stats> {
  try {
    return await lstat(abs);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) {
      throw new FussyError('BAD_SOURCE', `${abs} disappeared while it was being packed`, { cause: err, hint: 'do not change the tree while packing it' });
    }
    if (isErrno(err, 'EACCES', 'EPERM')) throw permissionDenied(err, `cannot read ${abs}: ${err.code}`, { path: abs, hint: 'run fussy pack as a user who may read the whole tree, fix its permissions, or exclude it' });
    if (isErrno(err, 'EIO')) {
      throw new FussyError('BAD_SOURCE', `cannot read ${abs}: ${err.code}`, { cause: err, hint: 'check the disk it is on, or exclude it' });
    }
    throw err;
  }
}

function kindOf(s: Stats): string {
  if (s.isFIFO()) return 'FIFO';
  if (s.isSocket()) return 'socket';
  if (s.isCharacterDevice()) return 'character device';
  if (s.isBlockDevice()) return 'block device';
  return 'special file';
}
