/**
 * bench/installed-manifest: what reading an installed manifest costs (store/installed-manifest.ts).
 * The dedup index reads the manifest of every retained release on every install, and holds it to
 * the package schema; this prints the time of each step for a make-firmware tree of --files
 * entries, against the bare JSON.parse that was all dedup did before.
 *
 *   node dist/bench/installed-manifest.js [--files 10000] [--repeat 30]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MANIFEST_NAME, parseManifest, serializeManifest, validateManifest } from '../src/archive/manifest.js';
import { buildManifest } from '../src/pack/build-manifest.js';
import { digestFiles } from '../src/pack/digest-files.js';
import { walkTree } from '../src/pack/walk.js';
import { INSTALLED_MANIFEST_MAX, readInstalledManifest } from '../src/store/installed-manifest.js';
import { readSmallFile } from '../src/util/read-small-file.js';
import { makeFirmware } from './make-firmware.js';
import { median } from './measure.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, repeat: { type: 'string', default: '30' } } });
const files = Number(values.files);
const repeat = Number(values.repeat);

const work = await mkdtemp(join(tmpdir(), 'fussy-bench-manifest-'));
try {
  const tree = join(work, 'tree');
  makeFirmware(tree, { files, mb: Math.max(1, Math.ceil(files / 500)), seed: 1 });
  const walked = await walkTree(tree);
  const manifest = buildManifest({ release: 'fw-bench', walk: walked, digests: digestFiles(walked), date: new Date(0) });
  const bytes = serializeManifest(manifest);
  await writeFile(join(tree, MANIFEST_NAME), bytes); // the tree stands in for the release directory
  const parsed: unknown = JSON.parse(bytes.toString('utf8'));
  const file = join(tree, MANIFEST_NAME);
  const steps: Array<[string, () => unknown]> = [
    ['read + JSON.parse (what dedup did before)', () => JSON.parse((readSmallFile(file, INSTALLED_MANIFEST_MAX) as { data: Buffer }).data.toString('utf8'))],
    ['readInstalledManifest (read + parseManifest + ownership)', () => readInstalledManifest(tree)],
    ['  of which JSON.parse', () => JSON.parse(bytes.toString('utf8'))],
    ['  of which validateManifest', () => validateManifest(parsed, undefined)],
    ['  parseManifest (shape scan + JSON.parse + validate)', () => parseManifest(bytes, undefined)],
  ];
  process.stdout.write(`${manifest.entries.length} entries, ${bytes.length} bytes; median of ${repeat} runs\n`);
  for (const [name, step] of steps) {
    const ms: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t = process.hrtime.bigint();
      step();
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    process.stdout.write(`${median(ms).toFixed(1).padStart(7)} ms median, ${Math.min(...ms).toFixed(1).padStart(6)} ms min  ${name}\n`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
