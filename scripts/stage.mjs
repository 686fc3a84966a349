/**
 * The tree both packages install (docs/packaging.md), staged under `stage` from a built checkout
 * (npm run build): /usr/lib/fussy/{package.json, bin/, dist/bundle/, hooks/} (the bundle holds
 * the production dependencies: esbuild bundled them, so no node_modules, no dev dependencies, no
 * tests), /usr/bin symlinks, the systemd unit, /etc/fussy/fussyd.conf, man pages, bash and zsh
 * completion, /usr/share/doc/fussy (a copyright made from the bundled packages' own package.json
 * and license files, so it names what is in the bundle). package-deb.mjs and package-rpm.mjs
 * wrap it. Reproducible: the version and the date come from debian/changelog's top entry (or
 * SOURCE_DATE_EPOCH), and touchTree() sets every file's time to it.
 */
import { execFileSync } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { chmodSync, cpSync, existsSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const MIT = ` Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 and associated documentation files (the "Software"), to deal in the Software without
 restriction, including without limitation the rights to use, copy, modify, merge, publish,
 distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.`;


export const root = new URL('../', import.meta.url).pathname;

/** Stage the installed tree under `stage`; its version, date (s since the epoch) and changelog text. */
export function stageTree(stage) {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const version = pkg.version;
  const changelog = readFileSync(join(root, 'debian/changelog'), 'utf8');
  const top = /^fussy \(([^)]+)\)/.exec(changelog);
  if (top?.[1] !== version) throw new Error(`debian/changelog's top entry is ${top?.[1]}, package.json says ${version}: add a changelog entry`);
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Date.parse(/^ -- .*> {2}(.+)$/m.exec(changelog)?.[1] ?? '') / 1000);
  if (!Number.isFinite(epoch)) throw new Error('no date in debian/changelog');
  for (const need of ['dist/bundle/main.js', 'dist/man/fussy.1']) if (!existsSync(join(root, need))) throw new Error(`${need} is missing: npm run build first`);

  rmSync(stage, { recursive: true, force: true });
  const at = (p) => join(stage, p);
  const dir = (p) => mkdirSync(at(p), { recursive: true, mode: 0o755 });
  const file = (p, data, mode = 0o644) => {
    dir(p.slice(0, p.lastIndexOf('/')));
    writeFileSync(at(p), data, { mode });
    chmodSync(at(p), mode);
  };

  // The program: launchers, the bundle (with its production dependencies), the hook helpers.
  const lib = 'usr/lib/fussy';
  dir(lib);
  file(`${lib}/package.json`, `${JSON.stringify({ name: pkg.name, version, type: 'module', license: pkg.license }, null, 2)}\n`);
  cpSync(join(root, 'dist/bundle'), at(`${lib}/dist/bundle`), { recursive: true, filter: (src) => !src.endsWith('.map') });
  cpSync(join(root, 'hooks'), at(`${lib}/hooks`), { recursive: true });
  dir(`${lib}/bin`);
  dir('usr/bin');
  for (const name of Object.keys(pkg.bin)) {
    for (const f of [name, `${name}.js`]) cpSync(join(root, 'bin', f), at(`${lib}/bin/${f}`));
    chmodSync(at(`${lib}/bin/${name}`), 0o755);
    symlinkSync(`../lib/fussy/bin/${name}`, at(`usr/bin/${name}`));
  }

  // The daemon's unit and configuration.
  file('usr/lib/systemd/system/fussyd.service', readFileSync(join(root, 'debian/fussyd.service')));
  file('etc/fussy/fussyd.conf', readFileSync(join(root, 'debian/fussyd.conf')));

  // Man pages, completion, documentation.
  for (const page of readdirSync(join(root, 'dist/man'))) file(`usr/share/man/man${page.slice(-1)}/${page}.gz`, gzipSync(readFileSync(join(root, 'dist/man', page)), { level: 9 }));
  const completion = (shell) => execFileSync(process.execPath, [join(root, 'bin/fussy.js'), 'completion', shell], { encoding: 'utf8' });
  file('usr/share/bash-completion/completions/fussy', completion('bash'));
  file('usr/share/zsh/vendor-completions/_fussy', `#compdef fussy\n${completion('zsh')}\n_fussy_complete "$@"\n`);
  file('usr/share/doc/fussy/changelog.gz', gzipSync(Buffer.from(changelog), { level: 9 }));
  file('usr/share/doc/fussy/copyright', copyright());
  return { version, epoch, changelog, at, file };
}

export function touchTree(d, t) {
  for (const e of readdirSync(d, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    (lstatSync(p).isSymbolicLink() ? lutimesSync : utimesSync)(p, t, t);
  }
  utimesSync(d, t, t);
}

/** debian/copyright (DEP-5): fussy's, then each bundled package with its license, then the license texts. */
function copyright() {
  const deps = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8' }).trim().split('\n').slice(1);
  const bundled = deps.map((d) => JSON.parse(readFileSync(join(d, 'package.json'), 'utf8'))).map((p) => ({ name: p.name, version: p.version, license: p.license }));
  const licenses = [...new Set(bundled.map((b) => b.license))].sort();
  const text = (name) => {
    if (name === 'Apache-2.0') return ' On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.';
    if (name === 'LGPL-3.0+') return ' On Debian systems the full text is in /usr/share/common-licenses/LGPL-3.';
    if (name === 'MIT') return MIT;
    const from = { ISC: 'isexe', 'BlueOak-1.0.0': 'tar' }[name];
    const dirOf = deps.find((d) => d.endsWith(`/node_modules/${from}`));
    const lic = readdirSync(dirOf).find((f) => /^licen[cs]e/i.test(f));
    return readFileSync(join(dirOf, lic), 'utf8').trim().split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l}`)).join('\n');
  };
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: fussy',
    '',
    'Files: *',
    'Copyright: 2026 fussy maintainers',
    'License: MIT',
    '',
    'Files: usr/lib/fussy/dist/bundle/*',
    'Copyright: the authors of the npm packages bundled into it; their license comments are kept in the bundle',
    `License: ${licenses.join(' and ')}`,
    `Comment: bundled: ${bundled.map((b) => `${b.name} ${b.version} (${b.license})`).join(', ')}`,
    '',
    ...licenses.flatMap((l) => [`License: ${l}`, text(l), '']),
  ].join('\n');
}
