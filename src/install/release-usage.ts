import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

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

export async function releaseUsage(target: string, releases: string[]): Promise<ReleaseUsage> {
  const u: ReleaseUsage = { inodes: new Map(), dirBytes: new Map() };
  const walk = async (dir: string, release: string): Promise<void> => {
    u.dirBytes.set(release, (u.dirBytes.get(release) ?? 0) + (await lstat(dir)).blocks * 512);
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        await walk(p, release);
        continue;
      }
      const st = await lstat(p);
      const key = `${st.dev}:${st.ino}`;
      const l = u.inodes.get(key) ?? { nlink: st.nlink, bytes: st.blocks * 512, in: new Map<string, number>() };
      l.in.set(release, (l.in.get(release) ?? 0) + 1);
      u.inodes.set(key, l);
    }
  };
  for (const r of releases) await walk(join(target, r), r);
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
