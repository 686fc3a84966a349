import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { makeTmp } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LAUNCHERS = ['fussy', 'fussy-clean', 'fussy-install', 'fussy-link-tree', 'fussy-pack', 'fussyd'];

/** npm run package:deb's script (the build is npm test's), into `out`; the .deb's path. */
async function buildDeb(out: string): Promise<string> {
  const r = await execa(process.execPath, [join(ROOT, 'scripts/package-deb.mjs'), '--out', out], { cwd: ROOT, reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  return r.stdout.trim();
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('the .deb: npm run package:deb', function () {
  let deb: string;
  let tmp: string;
  before(async function () {
    tmp = await makeTmp('fussy-deb-');
    deb = await buildDeb(join(tmp, 'a'));
  });

  it('is fussy_<version>_all.deb: architecture all, nodejs (>= 20.19), the launchers, the unit, a conffile, man pages, completion; no tests, no sources, no dev dependencies', async function () {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(deb, join(tmp, 'a', `fussy_${version}_all.deb`));
    const field = async (f: string): Promise<string> => (await execa('dpkg-deb', ['-f', deb, f])).stdout;
    assert.deepEqual([await field('Package'), await field('Version'), await field('Architecture'), await field('Depends')], ['fussy', version, 'all', 'nodejs (>= 20.19)']);
    assert.equal((await execa('dpkg-deb', ['--ctrl-tarfile', deb], { encoding: 'buffer' })).exitCode, 0);
    const conffiles = (await execa('sh', ['-c', `dpkg-deb --ctrl-tarfile '${deb}' | tar -xO ./conffiles`])).stdout;
    assert.equal(conffiles, '/etc/fussy/fussyd.conf');
    const files = (await execa('dpkg-deb', ['-c', deb])).stdout.split('\n').map((l) => l.slice(l.indexOf('./') + 1));
    for (const name of LAUNCHERS) assert.ok(files.includes(`/usr/bin/${name} -> ../lib/fussy/bin/${name}`), name);
    for (const f of ['/usr/lib/systemd/system/fussyd.service', '/etc/fussy/fussyd.conf', '/usr/share/man/man1/fussy.1.gz', '/usr/share/man/man8/fussyd.8.gz', '/usr/share/man/man5/fussyd.conf.5.gz', '/usr/share/bash-completion/completions/fussy', '/usr/share/zsh/vendor-completions/_fussy', '/usr/share/doc/fussy/copyright', '/usr/share/doc/fussy/changelog.gz', '/usr/lib/fussy/dist/bundle/cli.cjs', '/usr/lib/fussy/dist/bundle/cli.cjs.cache', '/usr/lib/fussy/dist/bundle/launch.cjs', '/usr/lib/fussy/bin/package.json']) {
      assert.ok(files.includes(f), f);
    }
    const unwanted = files.filter((f) => /node_modules|\/test\/|\.ts$|\.map$|\/src\//.test(f));
    assert.deepEqual(unwanted, []);
  });

  it('is lintian clean', async function () {
    const r = await execa('lintian', ['--fail-on', 'error,warning', deb], { reject: false });
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(r.stdout.split('\n').filter((l) => /^[EW]: /.test(l)), []);
  });

  it('is reproducible: built again, it is the same bytes', async function () {
    assert.equal(sha256(await buildDeb(join(tmp, 'b'))), sha256(deb));
  });

  it('runs as unpacked, with nothing from this checkout: keygen, pack, install twice, rollback, status, man, completion', async function () {
    const root = join(tmp, 'root');
    mkdirSync(root);
    await execa('dpkg-deb', ['-x', deb, root]);
    assert.equal(readlinkSync(join(root, 'usr/bin/fussy')), '../lib/fussy/bin/fussy');
    const work = join(tmp, 'work');
    mkdirSync(join(work, 'build', 'rel-1', 'etc'), { recursive: true });
    mkdirSync(join(work, 'build', 'rel-2', 'etc'), { recursive: true });
    mkdirSync(join(work, 'target'));
    writeFileSync(join(work, 'build', 'rel-1', 'etc', 'version'), '1\n');
    writeFileSync(join(work, 'build', 'rel-2', 'etc', 'version'), '2\n');
    // No NODE_PATH, no node_modules above the unpacked tree or the working directory: the bundle must hold everything.
    const fussy = async (...args: string[]): Promise<string> => {
      const r = await execa(join(root, 'usr/bin/fussy'), args, { cwd: work, reject: false, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: work }, extendEnv: false });
      assert.equal(r.exitCode, 0, `fussy ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await fussy('keygen', 'signing', '--name', 'Build', '--email', 'b@example.com', '--secret-key', 'signing.key', '--no-passphrase', '--keyring', 'keys');
    await fussy('keygen', 'device', '--name', 'Dev', '--email', 'd@example.com', '--keyring', 'keys');
    for (const rel of ['rel-1', 'rel-2']) {
      const pkg = (await fussy('pack', join('build', rel), '--signing-key', 'signing.key', '-o', 'out/', '-q')).trim();
      assert.match(await fussy('install', pkg, '-k', 'keys', '-t', 'target'), new RegExp(`target/${rel}$`));
    }
    assert.equal(readlinkSync(join(work, 'target', 'current')), 'rel-2');
    await fussy('rollback', '-t', 'target');
    assert.equal(readlinkSync(join(work, 'target', 'current')), 'rel-1');
    assert.match(await fussy('status', '-t', 'target'), /rel-1/);
    const fussyd = await execa(join(root, 'usr/bin/fussyd'), ['--version'], { env: { PATH: '/usr/bin:/bin' }, extendEnv: false });
    assert.equal(fussyd.stdout, (await fussy('--version')).trim());
    const man = await execa('sh', ['-c', `zcat '${join(root, 'usr/share/man/man1/fussy.1.gz')}' | groff -man -Tutf8 -ww -P-cbou`]);
    assert.equal(man.stderr, '');
    assert.match(man.stdout, /remote cron add/);
    assert.equal((await execa('bash', ['-n', join(root, 'usr/share/bash-completion/completions/fussy')])).exitCode, 0);
  });

  it("zsh completes from the installed file at the first completion: fussy, the Fussy-compatible launchers and fussyd (zpty drives a real interactive zsh; mapfile, bash's alone, broke it)", async function () {
    const root = join(tmp, 'zroot');
    mkdirSync(root);
    await execa('dpkg-deb', ['-x', deb, root]);
    const fpath = join(root, 'usr/share/zsh/vendor-completions');
    // A widget that completes (as Tab does) and then prints the line: one key, so nothing typed
    // after it can be lost, and each read waits for what it expects (no sleeps).
    const drive = [
      'zmodload zsh/zpty',
      "zpty -b z 'zsh -f -i'",
      `zpty -w z "PS1='RE''ADY> '; fpath=($FP \\$fpath); autoload -U compinit; compinit -u -D; PATH=$BINDIR:\\$PATH; tab-then-show() { zle complete-word; print -r -- \\"BUF[\\$BUFFER]\\"; }; zle -N tab-then-show; bindkey '^T' tab-then-show"`,
      "zpty -r z out '*READY> *'",
      "zpty -w -n z \"$LINE\"$'\\x14'",
      "zpty -r z out '*BUF\\[*\\]*'",
      "print -r -- \"$out\" | tr -d '\\r' | grep -ao 'BUF\\[.*\\]' | tail -1",
    ].join('\n');
    const tab = async (line: string): Promise<string> => {
      const r = await execa('zsh', ['-f', '-c', drive], { env: { FP: fpath, BINDIR: join(root, 'usr/bin'), LINE: line, HOME: tmp, PATH: '/usr/bin:/bin' }, extendEnv: false, timeout: 30_000, reject: false });
      assert.equal(r.exitCode, 0, `${line}: ${r.stderr}`);
      return r.stdout.trim();
    };
    assert.equal(await tab('fussy provis'), 'BUF[fussy provision]');
    assert.equal(await tab('fussy remote cron ad'), 'BUF[fussy remote cron add]');
    assert.equal(await tab('fussy-install --keyr'), 'BUF[fussy-install --keyring]');
    assert.equal(await tab('fussyd --sched'), 'BUF[fussyd --schedule-notify]');
  });
});
