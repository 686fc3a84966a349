import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { makeTmp } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** npm run package:<kind>'s script (the build is npm test's), into `out`; the package's path. */
async function build(kind: 'deb' | 'rpm', out: string): Promise<string> {
  const r = await execa(process.execPath, [join(ROOT, `scripts/package-${kind}.mjs`), '--out', out], { cwd: ROOT, reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout.trim();
}

const rpmq = async (pkg: string, ...args: string[]): Promise<string[]> => (await execa('rpm', ['-qp', ...args, pkg])).stdout.split('\n');

describe('the .rpm: npm run package:rpm', function () {
  let rpm: string;
  let tmp: string;
  before(async function () {
    tmp = await makeTmp('fussy-rpm-');
    rpm = await build('rpm', join(tmp, 'a'));
  });

  it('is fussy-<version>-1.noarch.rpm: its name, version, license, requirements, scriptlets and a config file, sane in rpm -qpi and -qpl', async function () {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(rpm, join(tmp, 'a', `fussy-${version}-1.noarch.rpm`));
    assert.deepEqual(await rpmq(rpm, '--queryformat', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}\n'), [`fussy ${version} 1 noarch`]);
    const info = (await rpmq(rpm, '-i')).join('\n');
    assert.match(info, /^License +: MIT AND ISC AND BlueOak-1\.0\.0 AND Apache-2\.0 AND LGPL-3\.0-or-later$/m);
    assert.match(info, /^Build Host +: fussy-build$/m);
    assert.ok((await rpmq(rpm, '-R')).includes('nodejs(engine) >= 20.19'), 'nodejs(engine): the distributions\' nodejs has an epoch');
    assert.deepEqual(await rpmq(rpm, '--configfiles'), ['/etc/fussy/fussyd.conf']);
    assert.match((await rpmq(rpm, '--scripts')).join('\n'), /postinstall scriptlet[\s\S]*install -d -m 0750 \/var\/lib\/fussy/);
    assert.match((await rpmq(rpm, '--changelog')).join('\n'), new RegExp(`^\\* \\w{3} \\w{3} \\d\\d \\d{4} .* - ${version.replaceAll('.', '\\.')}-1$`, 'm'));
  });

  it('installs the same files as the .deb', async function () {
    const deb = await build('deb', join(tmp, 'deb'));
    const debFiles = (await execa('dpkg-deb', ['-c', deb])).stdout.split('\n').map((l) => l.slice(l.indexOf('./') + 1).replace(/ -> .*$/, '').replace(/\/$/, '')).filter((f) => f !== '');
    // zsh's completion is where each family looks for it.
    const rpmFiles = (await rpmq(rpm, '-l')).map((f) => f.replace('/usr/share/zsh/site-functions', '/usr/share/zsh/vendor-completions'));
    assert.ok(rpmFiles.includes('/usr/share/zsh/vendor-completions/_fussy'));
    // The .deb also lists the shared directories (/usr, /usr/bin, ...); every file the .rpm has, the .deb has, and the other way round for everything that is not such a directory.
    for (const f of rpmFiles) assert.ok(debFiles.includes(f), `${f} in the .deb`);
    const shared = new Set(['/etc', '/usr', '/usr/bin', '/usr/lib', '/usr/lib/systemd', '/usr/lib/systemd/system', '/usr/share', '/usr/share/bash-completion', '/usr/share/bash-completion/completions', '/usr/share/doc', '/usr/share/man', '/usr/share/man/man1', '/usr/share/man/man5', '/usr/share/man/man8', '/usr/share/zsh', '/usr/share/zsh/vendor-completions']);
    assert.deepEqual(debFiles.filter((f) => !shared.has(f) && !rpmFiles.includes(f)), []);
  });

  it('is reproducible, and its payload runs as unpacked with nothing from this checkout', async function () {
    assert.equal(createHash('sha256').update(readFileSync(await build('rpm', join(tmp, 'b')))).digest('hex'), createHash('sha256').update(readFileSync(rpm)).digest('hex'));
    const root = join(tmp, 'root');
    mkdirSync(root);
    await execa('sh', ['-c', `rpm2cpio '${rpm}' | cpio -idm --quiet`], { cwd: root });
    const v = await execa(join(root, 'usr/bin/fussy'), ['--version'], { cwd: tmp, env: { PATH: '/usr/bin:/bin' }, extendEnv: false });
    assert.equal(v.stdout, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    assert.match((await execa(join(root, 'usr/bin/fussyd'), ['--help'], { cwd: tmp, env: { PATH: '/usr/bin:/bin' }, extendEnv: false })).stdout, /--schedule-notify/);
  });
});
