/**
 * npm run package:deb: fussy_<version>_all.deb from a built checkout (npm run build first; the
 * npm script does it), with dpkg-deb: the tree of stage.mjs (docs/packaging.md), and debian/'s
 * control file, conffiles and maintainer scripts. Reproducible: the tree's times are the
 * changelog's date, dpkg-deb --root-owner-group, SOURCE_DATE_EPOCH for the archive's own times.
 *
 *   npm run package:deb [-- --out DIR] [--version-suffix +SUFFIX]
 *
 * --version-suffix makes the package's version VERSION+SUFFIX (the program's own stays VERSION):
 * the system test upgrades a device to it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root, stageTree, touchTree } from './stage.mjs';

const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'dist') }, 'version-suffix': { type: 'string', default: '' } } });
if (!/^(\+[A-Za-z0-9.]+)?$/.test(values['version-suffix'])) throw new Error(`--version-suffix ${values['version-suffix']}: a + and letters, digits and dots`);
// A stage of its own (two builds at once, as the tests run them, do not meet), removed afterwards.
const work = mkdtempSync(join(tmpdir(), 'fussy-deb-'));
const stage = join(work, 'fussy');
const staged = await stageTree(stage, 'deb');
const { epoch, file } = staged;
const version = staged.version + values['version-suffix'];

// Control files.
const size = Math.ceil(du(stage) / 1024);
file('DEBIAN/control', readFileSync(join(root, 'debian/control.in'), 'utf8').replace('@VERSION@', version).replace('@SIZE@', String(size)));
file('DEBIAN/conffiles', readFileSync(join(root, 'debian/conffiles')));
for (const s of ['postinst', 'prerm', 'postrm']) file(`DEBIAN/${s}`, readFileSync(join(root, 'debian', s)), 0o755);
file('DEBIAN/md5sums', md5sums(stage));

touchTree(stage, epoch);
mkdirSync(values.out, { recursive: true });
const deb = resolve(values.out, `fussy_${version}_all.deb`);
execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
rmSync(work, { recursive: true, force: true });
console.log(deb);

/** Bytes under `d` (regular files), for Installed-Size. */
function du(d) {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true, recursive: true })) if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

function md5sums(d) {
  const lines = [];
  for (const e of readdirSync(d, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    const rel = p.slice(d.length + 1);
    if (!e.isFile() || rel.startsWith('DEBIAN/') || rel.startsWith('etc/')) continue;
    lines.push(`${execFileSync('md5sum', [p], { encoding: 'utf8' }).split(' ')[0]}  ${rel}`);
  }
  return `${lines.sort((a, b) => (a.slice(34) < b.slice(34) ? -1 : 1)).join('\n')}\n`;
}
