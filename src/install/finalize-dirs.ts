import { chmodSync, chownSync, utimesSync } from 'node:fs';

export interface DirMeta {
  abs: string;
  mode: number;
  uid: number;
  gid: number;
  mtime?: Date;
}

/**
 * Give directories their archive metadata once everything inside them exists: deepest first,
 * so a read-only directory (0555) does not block its own children and creating children does
 * not bump a parent's mtime afterwards. Directories the archive did not list get 0755.
 */
export function finalizeDirectories(dirs: DirMeta[], allDirs: string[], asRoot: boolean): void {
  const listed = new Set(dirs.map((d) => d.abs));
  for (const abs of allDirs) if (!listed.has(abs)) chmodSync(abs, 0o755);
  const ordered = [...dirs].sort((a, b) => b.abs.length - a.abs.length);
  for (const d of ordered) {
    if (asRoot) chownSync(d.abs, d.uid, d.gid);
    chmodSync(d.abs, d.mode);
    if (d.mtime !== undefined) utimesSync(d.abs, d.mtime, d.mtime);
  }
}
