import type { Manifest, ManifestEntry } from '../archive/manifest.js';
import { FussyError } from '../errors.js';
import type { DedupIndex, Found } from '../store/dedup-index.js';

/**
 * A delta package (docs/format.md, "Delta packages"): before any file data is written, every file
 * it leaves out must be found on the device by its content, verified now (hashed, or vouched for
 * by the hash cache as dedup does): a damaged copy is passed over for a healthy one. If any is
 * missing the package is refused (DELTA_BASE_MISSING, exit 21) naming the bases it needs and what
 * the device has, and nothing was written.
 */
export function planFromBases(m: Manifest, index: DedupIndex, device: () => string): Array<[ManifestEntry, Found]> {
  const plan: Array<[ManifestEntry, Found]> = [];
  const missing: ManifestEntry[] = [];
  for (const e of m.entries) {
    if (e.from === undefined) continue;
    // from "base": the file's own content; from "chunks": the base file its patch applies to.
    const found = e.from === 'base' ? index.findContent(e.sha256 as string, e.size as number) : index.findContent(e.base as string, e.baseSize as number);
    if (found === undefined) missing.push(e);
    else plan.push([e, found]);
  }
  if (missing.length > 0) {
    const bases = (m.bases ?? []).map((b) => (b.manifest === undefined ? b.release : `${b.release} (manifest ${b.manifest.slice(0, 12)})`)).join(', ');
    throw new FussyError('DELTA_BASE_MISSING', `${m.release} is a delta package against ${bases}, and this device lacks ${missing.length} of the ${missing.length + plan.length} files it leaves out (${missing.slice(0, 3).map((e) => e.path).join(', ')}${missing.length > 3 ? ', ...' : ''}); the device has ${device()}`, {
      hint: 'install the full package, or a delta made against a release this device has (fussy status --json lists them with their manifest sha256)',
      details: { bases: m.bases, missing: missing.slice(0, 100).map((e) => e.path) },
    });
  }
  return plan;
}

