import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { cli } from '../helpers/cli.js';
import { gpgGenKey, gpgHome, statusTokens, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

describe('fussy pack / fussy-pack / fussy keygen on the command line', function () {
  let dir: string;
  let g: GpgHome;
  let source: string;
  let signingKey: string;
  let env: Record<string, string>;

  before(async function () {
    dir = await makeTmp();
    g = await gpgHome(dir);
    await gpgGenKey(g, 'Build Default <build@example.com>');
    source = await writeTree(join(dir, 'build', 'firmware-2026-11-23T10.00.00'), sampleFirmware());
    await mkdir(join(dir, 'tmp'));
    env = { GNUPGHOME: g.home, TMPDIR: join(dir, 'tmp'), FUSSY_PASSPHRASE: 'sekrit' };
    await writeFile(join(dir, 'pass'), 'sekrit\n');
    const k = await cli('fussy', ['keygen', 'signing', '--name', 'CI Signer', '--email', 'ci@example.com', '--secret-key', 'ci.key', '--passphrase-file', 'pass', '--keyring', 'device-keys'], { cwd: dir, env });
    assert.equal(k.exitCode, 0, k.stderr);
    signingKey = join(dir, 'ci.key');
    assert.match(await readFile(signingKey, 'utf8'), /BEGIN PGP PRIVATE KEY BLOCK/);
    const imp = await g.gpg(['--import', join(dir, 'ci-signer.pub.asc')]);
    assert.equal(imp.exitCode, 0, imp.stderr);
  });

  it('prints the package path as the last stdout line and a summary on stderr', async function () {
    const r = await cli('fussy', ['pack', source, '--signing-key', signingKey, '-o', 'out/'], { cwd: dir, env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.lastLine, join(dir, 'out', 'firmware-2026-11-23T10.00.00.tar.gz.gpg'));
    assert.ok(existsSync(r.lastLine));
    assert.match(r.stderr, /packed firmware-2026-11-23T10.00.00: \d+ files/);
    const v = await g.gpg(['--status-fd', '2', '--decrypt', r.lastLine]);
    assert.ok(statusTokens(v.stderr).some((t) => t.startsWith('GOODSIG')), v.stderr);
  });

  it('defaults to a fresh temp directory, as Fussy did', async function () {
    const r = await cli('fussy', ['pack', source, '--signing-key', signingKey, '-q'], { cwd: dir, env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, r.lastLine, 'nothing but the path on stdout');
    assert.ok(r.lastLine.startsWith(join(dir, 'tmp', 'fussy-pack-')));
  });

  it('--json prints one JSON object on stdout and NDJSON progress on stderr', async function () {
    const r = await cli('fussy', ['pack', source, '--signing-key', signingKey, '-o', 'json/', '--json', '-e', 'build@example.com'], { cwd: dir, env });
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(out.ok, true);
    assert.equal(out.path, join(dir, 'json', 'firmware-2026-11-23T10.00.00.tar.gz.gpg'));
    assert.equal((out.encryptedFor as string[]).length, 1);
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; phase: string });
    assert.deepEqual(events.filter((e) => e.type === 'phase').map((e) => e.phase), ['keys', 'scan', 'hash', 'write']);
  });

  it('exits 2 naming the path for a missing directory, and reports JSON errors with --json', async function () {
    const r = await cli('fussy', ['pack', 'no-such-dir', '--signing-key', signingKey], { cwd: dir, env });
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /fussy pack: .*no-such-dir does not exist\n {2}hint: /);
    const j = await cli('fussy', ['pack', 'no-such-dir', '--signing-key', signingKey, '--json'], { cwd: dir, env });
    assert.equal(j.exitCode, 2);
    assert.deepEqual((JSON.parse(j.stdout) as { ok: boolean; error: { code: string } }).error.code, 'BAD_SOURCE');
  });

  it('symlinks-outside-one-per-run: names every symlink that leaves the release in one error, with --exclude in the hint', async function () {
    const files = [
      { path: 'lib/libc.so', symlink: '/usr/lib/libc.so.6' },
      { path: 'lib/libm.so', symlink: '../../../usr/lib/libm.so.6' },
      { path: 'share/doc', symlink: '/usr/share/doc' },
      { path: 'lib/ok.so', symlink: 'libc.so.6' },
      { path: 'lib/libc.so.6', content: 'libc\n' },
    ];
    const bad = await writeTree(join(dir, 'bad3', 'fw-libs'), files);
    const r = await cli('fussy', ['pack', bad, '--signing-key', signingKey, '-o', 'bad3-out/'], { cwd: dir, env });
    assert.equal(r.exitCode, 21, r.stderr);
    assert.match(r.stderr, /fussy pack: 3 symlinks in .*fw-libs point outside the release or form a loop:\n {2}lib\/libc\.so -> \/usr\/lib\/libc\.so\.6 \(points outside the release\)\n {2}lib\/libm\.so -> \.\.\/\.\.\/\.\.\/usr\/lib\/libm\.so\.6 \(points outside the release\)\n {2}share\/doc -> \/usr\/share\/doc \(points outside the release\)\n {2}hint: .*--exclude/);
    assert.doesNotMatch(r.stderr, /ok\.so/);
    assert.equal(existsSync(join(dir, 'bad3-out')), false);
    const j = await cli('fussy', ['pack', bad, '--signing-key', signingKey, '-o', 'bad3-out/', '--json'], { cwd: dir, env });
    assert.deepEqual((JSON.parse(j.stdout) as { error: { symlinks: Array<{ path: string }> } }).error.symlinks.map((l) => l.path), ['lib/libc.so', 'lib/libm.so', 'share/doc']);
    const excluded = await cli('fussy', ['pack', bad, '--signing-key', signingKey, '-o', 'bad3-out/', '--exclude', 'lib/libc.so', '--exclude', 'lib/libm.so', '--exclude', 'share/doc'], { cwd: dir, env });
    assert.equal(excluded.exitCode, 0, excluded.stderr);
  });

  it('exits 21 for unsafe content and 40 for a wrong passphrase, leaving no package', async function () {
    const bad = await writeTree(join(dir, 'bad', 'fw-bad'), [{ path: 'x', symlink: '/etc/shadow' }]);
    const r = await cli('fussy', ['pack', bad, '--signing-key', signingKey, '-o', 'bad-out/'], { cwd: dir, env });
    assert.equal(r.exitCode, 21, r.stderr);
    assert.match(r.stderr, /symlink .*fw-bad\/x -> \/etc\/shadow points outside the release/);
    const w = await cli('fussy', ['pack', source, '--signing-key', signingKey, '-o', 'bad-out/'], { cwd: dir, env: { ...env, FUSSY_PASSPHRASE: 'nope' } });
    assert.equal(w.exitCode, 40, w.stderr);
    assert.match(w.stderr, /wrong passphrase for signing key .*ci\.key/);
    assert.equal(existsSync(join(dir, 'bad-out')), false);
  });

  it('fussy-pack -r DIR -e ID signs with gpg\'s default key, as the original did', async function () {
    const r = await cli('fussy-pack', ['-r', source, '-e', 'build@example.com', '-x', '*.bin'], { cwd: dir, env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.lastLine, /\/fussy-pack-[^/]+\/firmware-2026-11-23T10\.00\.00\.tar\.gz\.gpg$/);
    const v = await g.gpg(['--status-fd', '2', '--decrypt', r.lastLine]);
    const tokens = statusTokens(v.stderr);
    assert.ok(tokens.includes('DECRYPTION_OKAY') && tokens.some((t) => t.startsWith('GOODSIG')), v.stderr);
    const names = String((await execa('tar', ['-tzf', '-'], { input: v.stdout })).stdout);
    assert.doesNotMatch(names, /blob\.bin/);
  });

  it('fussy-pack -u -t NAME writes the unsigned .tar.gz under that name', async function () {
    const r = await cli('fussy-pack', ['-r', source, '-u', '-t', 'custom.tar.gz'], { cwd: dir, env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.lastLine, /\/custom\.tar\.gz$/);
    const names = String((await execa('tar', ['-tzf', r.lastLine])).stdout).split('\n');
    assert.equal(names[1], 'firmware-2026-11-23T10.00.00/.fussy-manifest.json');
  });

  it('fussy keygen device puts the secret key in the keyring dir and gpg decrypts what is packed for it', async function () {
    const k = await cli('fussy', ['keygen', 'device', '--name', 'Unit 7', '--keyring', 'unit7/keys', '--public-key', 'unit7.pub.asc', '--json'], { cwd: dir, env });
    assert.equal(k.exitCode, 0, k.stderr);
    const info = JSON.parse(k.stdout) as { fingerprint: string; secretKeyFile: string };
    assert.deepEqual(await readdir(join(dir, 'unit7', 'keys')), [`device-${info.fingerprint.slice(-16)}.key`]);
    const p = await cli('fussy', ['pack', source, '--signing-key', signingKey, '--recipient-key', 'unit7.pub.asc', '-e', info.fingerprint, '-o', 'unit7-out/'], { cwd: dir, env });
    assert.equal(p.exitCode, 0, p.stderr);
    const device = await gpgHome(join(dir, 'unit7-gpg'));
    assert.equal((await device.gpg(['--import', info.secretKeyFile])).exitCode, 0);
    const d = await device.gpg(['--status-fd', '2', '--decrypt', p.lastLine]);
    assert.ok(statusTokens(d.stderr).includes('DECRYPTION_OKAY'), d.stderr);
  });

  it('fussy keygen refuses to overwrite an existing key', async function () {
    const before = await readFile(signingKey, 'utf8');
    const r = await cli('fussy', ['keygen', 'signing', '--name', 'CI Signer', '--secret-key', 'ci.key', '--no-passphrase'], { cwd: dir, env });
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /ci\.key already exists/);
    assert.equal(await readFile(signingKey, 'utf8'), before, 'the existing key was overwritten');
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.fussy-tmp-')), [], 'a temp key was left beside it');
  });

  it('usage errors exit 2; --help exits 0 and lists the commands', async function () {
    assert.equal((await cli('fussy', ['pack', '--no-such-flag'], { cwd: dir, env })).exitCode, 2);
    const h = await cli('fussy', ['--help'], { cwd: dir, env });
    assert.equal(h.exitCode, 0);
    assert.match(h.stdout, /pack \[options\] <dir>/);
    for (const c of ['install', 'recover', 'history', 'clean', 'rollback', 'lock', 'link-tree', 'verify', 'status']) assert.match(h.stdout, new RegExp(`\\n  ${c} `), c);
    assert.equal((await cli('fussy', ['--version'], { cwd: dir, env })).exitCode, 0);
  });
});
