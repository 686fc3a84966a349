import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DELTA_MANIFEST_VERSION, validateManifest, type Manifest, type ManifestEntry } from '../archive/manifest.js';
import { tempName } from '../util/fs-atomic.js';
import { extractFiles, type BaseContent, type BaseFile } from './delta-bases.js';
import { PATCH_MAX_SHARE, PATCH_MIN_FILE, writePatch } from './delta-patch.js';
import type { WalkEntry } from './walk.js';

/** What the archive carries for a patched file instead of its data. */
export interface PatchFile {
  file: string;
  size: number;
}

export interface Delta {
  manifest: Manifest;
  /** Release-relative path -> its patch (temp files: the caller removes them). */
  patches: Map<string, PatchFile>;
}

/**
 * The delta of `full` against what the bases hold (docs/format.md, "Delta packages"): every file
 * whose content a base has is `from: "base"` (no data in the archive); a large file that a base
 * has at the same path, changed, is `from: "chunks"` with the base file's sha256 and size when
 * its patch (delta-patch.ts) is at most half its size and the base's bytes are what its manifest
 * says; the rest is carried whole. A base package's files are read out of it first (the package
 * verified). Format version 2, the bases named, checked as install will check it.
 */
export async function deltaOf(full: Manifest, walk: WalkEntry[], have: BaseContent, tmpDir: string, now: Date): Promise<Delta> {
  const patches = new Map<string, PatchFile>();
  const candidate = (e: ManifestEntry): BaseFile | undefined => {
    if (e.type !== 'file' || have.shas.has(e.sha256 as string)) return undefined;
    const base = have.files.get(e.path);
    return base === undefined || (e.size as number) < PATCH_MIN_FILE || base.size < PATCH_MIN_FILE ? undefined : base;
  };
  // The base files that are in packages: read out, one pass through each package.
  const extracted = new Map<string, string>();
  const byPackage = new Map<string, { pkg: Extract<BaseFile, { pkg: unknown }>['pkg']; wanted: Map<string, string> }>();
  for (const e of full.entries) {
    const base = candidate(e);
    if (base === undefined || !('pkg' in base)) continue;
    const file = join(tmpDir, tempName('base'));
    extracted.set(e.path, file);
    const group = byPackage.get(base.pkg.file) ?? { pkg: base.pkg, wanted: new Map<string, string>() };
    group.wanted.set(e.path, file);
    byPackage.set(base.pkg.file, group);
  }
  try {
    for (const { pkg, wanted } of byPackage.values()) await extractFiles(pkg, wanted, now);
    const entries = full.entries.map((e, i): ManifestEntry => {
      if (e.type !== 'file') return e;
      if (have.shas.has(e.sha256 as string)) return { ...e, from: 'base' };
      const base = candidate(e);
      const from = base === undefined ? undefined : 'abs' in base ? base.abs : extracted.get(e.path);
      if (base === undefined || from === undefined || !existsSync(from)) return e;
      const file = join(tmpDir, tempName('patch'));
      const patch = writePatch((walk[i] as WalkEntry).abs, from, file, { baseSha256: base.sha256, maxSize: Math.floor((e.size as number) * PATCH_MAX_SHARE), size: e.size as number });
      if (patch === undefined) return e;
      patches.set(e.path, { file, size: patch.size });
      return { ...e, from: 'chunks', base: base.sha256, baseSize: base.size };
    });
    // Nothing left out: a full package, which every fussy installs.
    if (!entries.some((e) => e.from !== undefined)) return { manifest: full, patches };
    const { entries: _all, totalBytes, fileCount, ...head } = full;
    const manifest: Manifest = { ...head, version: DELTA_MANIFEST_VERSION, bases: have.bases, totalBytes, fileCount, entries };
    validateManifest(manifest, full.release);
    return { manifest, patches };
  } catch (err) {
    for (const p of patches.values()) rmSync(p.file, { force: true });
    throw err;
  } finally {
    for (const f of extracted.values()) rmSync(f, { force: true });
  }
}
