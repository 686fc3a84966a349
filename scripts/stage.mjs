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

/**
 * Stage the installed tree under `stage`; its version, date (s since the epoch) and changelog
 * text. `flavor` places what the two families put apart: zsh's completion (Debian's
 * vendor-completions, the rpm distributions' site-functions).
 */
export async function stageTree(stage, flavor) {
  process.umask(0o022); // modes do not depend on the builder's umask (normalizeModes sets them anyway)
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const version = pkg.version;
  const changelog = readFileSync(join(root, 'debian/changelog'), 'utf8');
  const top = /^fussy \(([^)]+)\)/.exec(changelog);
  if (top?.[1] !== version) throw new Error(`debian/changelog's top entry is ${top?.[1]}, package.json says ${version}: add a changelog entry`);
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Date.parse(/^ -- .*> {2}(.+)$/m.exec(changelog)?.[1] ?? '') / 1000);
  if (!Number.isFinite(epoch)) throw new Error('no date in debian/changelog');
  for (const need of ['dist/bundle/cli.cjs', 'dist/bundle/cli.cjs.cache', 'dist/bundle/launch.cjs', 'dist/src/cli/man-pages.js']) if (!existsSync(join(root, need))) throw new Error(`${need} is missing: npm run build first`);

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
  file(`${lib}/bin/package.json`, readFileSync(join(root, 'bin/package.json'))); // the .js launchers are CommonJS
  dir('usr/bin');
  for (const name of Object.keys(pkg.bin)) {
    for (const f of [name, `${name}.js`]) cpSync(join(root, 'bin', f), at(`${lib}/bin/${f}`));
    chmodSync(at(`${lib}/bin/${name}`), 0o755);
    symlinkSync(`../lib/fussy/bin/${name}`, at(`usr/bin/${name}`));
  }

  // The daemon's unit and configuration.
  file('usr/lib/systemd/system/fussyd.service', readFileSync(join(root, 'debian/fussyd.service')));
  file('etc/fussy/fussyd.conf', readFileSync(join(root, 'debian/fussyd.conf')));

  // Man pages (rendered again here, dated like the package: dist/man carries the build's day),
  // completion, documentation.
  const { manPages } = await import(join(root, 'dist/src/cli/man-pages.js'));
  for (const page of manPages(new Date(epoch * 1000).toISOString().slice(0, 10))) file(`usr/share/man/man${page.file.slice(-1)}/${page.file}.gz`, gzipSync(Buffer.from(page.text), { level: 9 }));
  const completion = (shell) => execFileSync(process.execPath, [join(root, 'bin/fussy.js'), 'completion', shell], { encoding: 'utf8' });
  file('usr/share/bash-completion/completions/fussy', completion('bash'));
  // bash-completion loads a command's file by the command's name: the others' are the same file.
  const others = Object.keys(pkg.bin).filter((n) => n !== 'fussy');
  for (const name of others) symlinkSync('fussy', at(`usr/share/bash-completion/completions/${name}`));
  // Autoloaded by compinit at the first Tab: the definitions, then this Tab's completion through
  // bashcompinit's wrapper (calling _fussy_complete directly completed nothing until the second).
  const zshDir = flavor === 'rpm' ? 'usr/share/zsh/site-functions' : 'usr/share/zsh/vendor-completions';
  file(`${zshDir}/_fussy`, `#compdef fussy ${others.join(' ')}\n${completion('zsh')}\n_bash_complete -o filenames -F "_\${service//-/_}_complete" "$@"\n`);
  file('usr/share/doc/fussy/changelog.gz', gzipSync(Buffer.from(changelog), { level: 9 }));
  file('usr/share/doc/fussy/copyright', copyright(file));
  normalizeModes(stage);
  return { version, epoch, changelog, at, file };
}

/** Directories 0755, files 0644, or 0755 where the source had an execute bit: nothing of the builder's umask or checkout. */
function normalizeModes(d) {
  for (const e of readdirSync(d, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) continue;
    chmodSync(p, st.isDirectory() || (st.mode & 0o111) !== 0 ? 0o755 : 0o644);
  }
  chmodSync(d, 0o755);
}

export function touchTree(d, t) {
  for (const e of readdirSync(d, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    (lstatSync(p).isSymbolicLink() ? lutimesSync : utimesSync)(p, t, t);
  }
  utimesSync(d, t, t);
}

/**
 * debian/copyright (DEP-5): fussy's, then the bundled packages with their licenses, then the
 * license texts; each bundled package's own license file (its copyright notice) is installed
 * under /usr/share/doc/fussy/licenses/NAME/ by `file`.
 */
function copyright(file) {
  const deps = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8' }).trim().split('\n').slice(1);
  // SPDX names as DEP-5 spells them.
  const dep5 = (spdx) => ({ 'LGPL-3.0+': 'LGPL-3+', 'LGPL-3.0-or-later': 'LGPL-3+' })[spdx] ?? spdx;
  const bundled = deps.map((d) => ({ dir: d, ...JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')) })).map((p) => ({ dir: p.dir, name: p.name, version: p.version, license: dep5(p.license) }));
  for (const b of bundled) {
    const lic = readdirSync(b.dir).find((f) => /^licen[cs]e/i.test(f));
    if (lic === undefined) throw new Error(`${b.name} ships no license file`);
    file(`usr/share/doc/fussy/licenses/${b.name}/${lic}`, readFileSync(join(b.dir, lic)));
  }
  const licenses = [...new Set(bundled.map((b) => b.license))].sort();
  const text = (name) => {
    if (name === 'Apache-2.0') return ' On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.';
    if (name === 'LGPL-3+') return ' On Debian systems the full text is in /usr/share/common-licenses/LGPL-3\n (and the GPL it builds on in /usr/share/common-licenses/GPL-3).';
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
    'Copyright: the authors of the npm packages bundled into it: each package\'s own license file, with its copyright notice, is in /usr/share/doc/fussy/licenses/NAME/',
    `License: ${licenses.join(' and ')}`,
    `Comment: bundled: ${bundled.map((b) => `${b.name} ${b.version} (${b.license})`).join(', ')}`,
    '',
    ...licenses.flatMap((l) => [`License: ${l}`, text(l), '']),
  ].join('\n');
}
