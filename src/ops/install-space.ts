import { statfs } from 'node:fs/promises';
import type { Manifest } from '../archive/manifest.js';
import { FussyError } from '../errors.js';
import type { DedupIndex } from '../store/dedup-index.js';
import { installedMeta, type Owner } from '../store/ownership.js';
import { formatBytes } from '../util/format.js';

const BLOCK = 4096;

export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Enough disk space, from the manifest net of dedup, is checked before writing (docs/commands.md).
 * The manifest was validated (sizes whole and >= 0, no duplicate paths); a file counts as shared
 * only when a retained release's manifest names the same content, not when a release without one
 * merely has a file of that size. It is an early answer, not the guard: unpack checks every write.
 */
export function checkSpace(m: Manifest, index: DedupIndex, owner: Owner, free: number, reserve: number, target: string): void {
  let need = 0;
  for (const e of m.entries) {
    if (e.type === 'directory' || e.type === 'symlink') need += BLOCK;
    if (e.type !== 'file' || e.size === undefined || e.sha256 === undefined) continue;
    if (!index.claims({ sha256: e.sha256, size: e.size, ...installedMeta(e, owner) })) need += Math.ceil(e.size / BLOCK) * BLOCK;
  }
  if (need + reserve > free) {
    throw new FussyError('NO_SPACE', `${m.release} needs ${formatBytes(need)} in ${target} (after sharing identical files) plus a ${formatBytes(reserve)} reserve; ${formatBytes(free)} are free`, {
      hint: 'free space with fussy clean, then install again',
      details: { needBytes: need, reserveBytes: reserve, freeBytes: free },
    });
  }
}
