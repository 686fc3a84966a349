/**
 * npm run package:rpm: fussy-<version>-1.noarch.rpm from a built checkout (npm run build first;
 * the npm script does it), with rpmbuild (Debian's `rpm` package has it): the tree of stage.mjs,
 * the same the .deb installs (docs/packaging.md), and rpm/fussy.spec.in. Reproducible: the
 * changelog's date is the build time and every file's time, the build host is fixed.
 *
 *   npm run package:rpm [-- --out DIR]
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { root, stageTree, touchTree } from './stage.mjs';

const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'dist') } } });
// A build tree of its own (two builds at once do not meet), removed afterwards.
const top = mkdtempSync(join(tmpdir(), 'fussy-rpm-'));
const stage = join(top, 'tree');
const { version, epoch, changelog } = await stageTree(stage, 'rpm');
touchTree(stage, epoch);

// rpm's %changelog, from debian/changelog's top entry: "* Thu Dec 03 2026 NAME <MAIL> - VERSION-1", then its lines.
const who = /^ -- (.+?>) {2}/m.exec(changelog)?.[1] ?? 'fussy maintainers';
const day = new Date(epoch * 1000).toUTCString().replace(/^(\w+), (\d+) (\w+) (\d+).*$/, '$1 $3 $2 $4');
const items = changelog.split('\n\n')[1]?.split('\n').map((l) => l.replace(/^ {2}\* /, '- ').replace(/^ {4}/, '  ')) ?? [];
const spec = join(top, 'fussy.spec');
writeFileSync(spec, readFileSync(join(root, 'rpm/fussy.spec.in'), 'utf8').replace('@VERSION@', version).replace('@CHANGELOG@', [`* ${day} ${who} - ${version}-1`, ...items].join('\n')));

const defines = {
  _topdir: top,
  stage,
  _buildhost: 'fussy-build',
  use_source_date_epoch_as_buildtime: '1',
  clamp_mtime_to_source_date_epoch: '1',
  // The tree is final: no brp step may recompress, strip or byte-compile it.
  __os_install_post: '%{nil}',
  _binary_payload: 'w9.gzdio',
};
execFileSync('rpmbuild', ['--quiet', '-bb', ...Object.entries(defines).flatMap(([k, v]) => ['--define', `${k} ${v}`]), spec], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
const name = `fussy-${version}-1.noarch.rpm`;
mkdirSync(values.out, { recursive: true });
copyFileSync(join(top, 'RPMS', 'noarch', name), resolve(values.out, name));
rmSync(top, { recursive: true, force: true });
console.log(resolve(values.out, name));
