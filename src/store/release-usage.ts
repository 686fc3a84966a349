import { join } from 'node:path';
import { MAX_DEPTH } from '../archive/entry-path.js';
import { walkBeneath } from '../util/dir-fd.js';

/**
 * Disk use of releases by inode: releases share unchanged files as hard links, so a file's
 * blocks belong to a release alone only when every link to it is inside that release (or set of
 * releases). One walk serves `fussy status` (own vs shared bytes) and `fussy clean` (bytes freed).
 */
export interface ReleaseUsage {
  /** dev:ino -> its link count, its blocks, and how many of its links each release holds. */
  inodes: Map<string, { nlink: number; bytes: number; in: Map<string, number> }>;
  /** Blocks of each release's directories (its own, never shared). */
  dirBytes: Map<string, number>;
}

/**
 * Walks by descriptor (dir-fd.ts walkBeneath): a user who owns a directory of a release may swap
 * entries for symlinks or remove them during the walk; nothing is followed, vanished entries are
 * skipped, and nothing deeper than an archive may be is entered.
 */
export async function releaseUsage(target: string, releases: string[]): Promise<ReleaseUsage> {
  const u: ReleaseUsage = { inodes: new Map(), dirBytes: new Map() };
  for (const r of releases) {
    let dirs = 0;
    const top = walkBeneath(join(target, r), (_rel, st) => {
      if (st.isDirectory()) {
        dirs += st.blocks * 512;
        return;
      }
      const key = `${st.dev}:${st.ino}`;
      const l = u.inodes.get(key) ?? { nlink: st.nlink, bytes: st.blocks * 512, in: new Map<string, number>() };
      l.in.set(r, (l.in.get(r) ?? 0) + 1);
      u.inodes.set(key, l);
    }, { maxDepth: MAX_DEPTH });
    if (top !== undefined) u.dirBytes.set(r, dirs + top.blocks * 512);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return u;
}

/** Bytes that deleting all of `releases` gives back: their directories and the files no other release links. */
export function bytesFreed(u: ReleaseUsage, releases: string[]): number {
  let bytes = releases.reduce((n, r) => n + (u.dirBytes.get(r) ?? 0), 0);
  for (const l of u.inodes.values()) {
    const links = releases.reduce((n, r) => n + (l.in.get(r) ?? 0), 0);
    if (links > 0 && links >= l.nlink) bytes += l.bytes;
  }
  return bytes;
}

/** File bytes only `release` holds, and those it shares with other releases (directories not counted). */
export function ownAndShared(u: ReleaseUsage, release: string): { own: number; shared: number } {
  let own = 0;
  let shared = 0;
  for (const l of u.inodes.values()) {
    const here = l.in.get(release);
    if (here === undefined) continue;
    if (here >= l.nlink) own += l.bytes;
    else shared += l.bytes;
  }
  return { own, shared };
}
