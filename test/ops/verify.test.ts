import assert from 'node:assert/strict';
import { appendFile, chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { deviceBeside, makeDevice, type Device } from '../helpers/device.js';
import { canSwitchUser, fussyAs } from '../helpers/other-user.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

function release(name: string): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: 'etc/app.conf', content: 'shared=1\n' },
    { path: 'bin/tool', mode: 0o755, content: '#!/bin/sh\necho tool\n' },
    { path: 'lib/libx.so', symlink: 'libx.so.1' },
    { path: 'lib/libx.so.1', content: 'lib\n' },
  ];
}

describe('fussy verify: installed releases against their manifests', function () {
  it('finds a shared file a hook edited in place, in every release sharing it, plus missing, extra and mode changes', async function () {
    const tmp = await makeTmp();
    const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const pkgs = [];
    for (const n of ['fw-a', 'fw-b']) pkgs.push((await pack({ source: await writeTree(join(tmp, 'build', n), release(n)), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path);
    const d = await deviceBeside(dev, 'dev', pkgs);
    const ok = await cli('fussy', ['verify', '-t', d.target]);
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.match(ok.stdout, /^fw-b: ok \(\d+ entries match the manifest\)$/);
    assert.equal(ok.stderr, '');

    await appendFile(join(d.target, 'fw-b', 'etc', 'app.conf'), 'appended by a hook\n'); // shared with fw-a
    await rm(join(d.target, 'fw-b', 'lib', 'libx.so.1'));
    await writeFile(join(d.target, 'fw-b', 'etc', 'local.conf'), 'added\n');
    await chmod(join(d.target, 'fw-b', 'bin', 'tool'), 0o777);
    const r = await cli('fussy', ['verify', '-t', d.target, '--all']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stdout, /failsafe: no manifest \(installed without one\), not checked/);
    // bin/tool and etc/app.conf are hard links shared by both releases: fw-a shows the damage too.
    assert.match(r.stdout, /fw-a: 2 problems\n {2}mode bin\/tool: mode 777, the manifest says 755\n {2}changed etc\/app.conf: content differs \(size 28, manifest 9\); it has 1 other hard link/);
    assert.match(r.stdout, /fw-b: 4 problems/);
    assert.match(r.stdout, /missing lib\/libx.so.1/);
    assert.match(r.stdout, /extra etc\/local.conf/);
    assert.match(r.stdout, /mode bin\/tool: mode 777, the manifest says 755/);
    // The findings are the result (stdout); stderr holds only the error and its hint.
    assert.equal(r.stderr.split('\n')[0], 'fussy verify: fw-a, fw-b differ from their manifests');
    assert.doesNotMatch(r.stderr, /: \d+ problems?\n|mode bin/);
    // The shared app.conf has no healthy copy (both releases share the damaged inode), and the extra file is never deleted.
    assert.match(r.stderr, /hint: fussy verify --repair fixes 3 of the 6 problems; for the rest, reinstall the release/);
    const json = await cli('fussy', ['verify', '-t', d.target, 'fw-a', '--json']);
    const out = JSON.parse(json.stdout) as { ok: boolean; error: { code: string; releases: Array<{ release: string; findings: Array<{ path: string; problem: string }> }> } };
    assert.equal(out.error.code, 'VERIFY_FAILED');
    assert.deepEqual(out.error.releases[0]?.findings.map((f) => [f.problem, f.path]), [['mode', 'bin/tool'], ['changed', 'etc/app.conf']]);
  });

  it('--repair puts back content from a healthy copy (not the shared damaged inode), modes and files, then verifies clean', async function () {
    const tmp = await makeTmp();
    const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const pkgs = [];
    // fw-c holds the same app.conf content with another mode: a separate inode, so a healthy copy.
    const trees: Array<[string, SampleFile[]]> = [
      ['fw-c', release('fw-c').map((f) => (f.path === 'etc/app.conf' ? { ...f, mode: 0o600 } : f))],
      ['fw-a', release('fw-a')],
      ['fw-b', release('fw-b')],
    ];
    for (const [n, files] of trees) pkgs.push((await pack({ source: await writeTree(join(tmp, 'build', n), files), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path);
    const d = await deviceBeside(dev, 'dev', pkgs);
    await appendFile(join(d.target, 'fw-b', 'etc', 'app.conf'), 'appended by a hook\n'); // shared by fw-a and fw-b
    await rm(join(d.target, 'fw-b', 'lib', 'libx.so.1'));
    await chmod(join(d.target, 'fw-b', 'bin', 'tool'), 0o777);
    const found = await cli('fussy', ['verify', '-t', d.target, '--all']);
    assert.equal(found.exitCode, 2);
    assert.match(found.stderr, /hint: run fussy verify --repair/);
    assert.doesNotMatch(found.stderr, /reinstall/);
    const r = await cli('fussy', ['verify', '-t', d.target, '--all', '--repair']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /fw-b: repaired etc\/app.conf/);
    assert.match(r.stdout, /fw-a: repaired etc\/app.conf/);
    assert.match(r.stdout, /fw-b: repaired lib\/libx.so.1/);
    assert.match(r.stdout, /fw-b: ok/);
    assert.equal(await readFile(join(d.target, 'fw-a', 'etc', 'app.conf'), 'utf8'), 'shared=1\n');
    assert.equal((await cli('fussy', ['verify', '-t', d.target, '--all'])).exitCode, 0);
  });

  it('-q prints nothing for healthy releases, and only the findings of damaged ones, on stdout', async function () {
    const { d } = await deviceWith(['fw-a', 'fw-b']);
    const ok = await cli('fussy', ['verify', '-t', d.target, '--all', '-q']);
    assert.deepEqual([ok.exitCode, ok.stdout, ok.stderr], [0, '', '']);
    await writeFile(join(d.target, 'fw-b', 'etc', 'version'), 'edited\n');
    const r = await cli('fussy', ['verify', '-t', d.target, '--all', '-q']);
    assert.equal(r.exitCode, 2);
    assert.equal(r.stdout, 'fw-b: 1 problem\n  changed etc/version: content differs (size 7, manifest 5)');
    assert.match(r.stderr, /^fussy verify: fw-b differs from its manifest\n {2}hint: reinstall the release/);
  });

  it('--json keeps one JSON object on stdout, with whether each finding is repairable', async function () {
    const { d } = await deviceWith(['fw-a', 'fw-b']);
    const ok = await cli('fussy', ['verify', '-t', d.target, '--all', '--json']);
    assert.equal(ok.exitCode, 0);
    assert.deepEqual((JSON.parse(ok.stdout) as { ok: boolean; releases: unknown[] }).releases.length, 3);
    await chmod(join(d.target, 'fw-b', 'bin', 'tool'), 0o700);
    await writeFile(join(d.target, 'fw-b', 'etc', 'version'), 'edited\n');
    const r = await cli('fussy', ['verify', '-t', d.target, 'fw-b', '--json']);
    assert.equal(r.exitCode, 2);
    const out = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; hint: string; releases: Array<{ findings: Array<{ path: string; problem: string; repairable: boolean }> }> } };
    assert.equal(out.ok, false);
    assert.deepEqual(out.error.releases[0]?.findings.map((f) => [f.problem, f.path, f.repairable]), [['mode', 'bin/tool', true], ['changed', 'etc/version', false]]);
    assert.match(out.error.hint, /fussy verify --repair fixes 1 of the 2 problems/);
  });

  it('--repair removes a temp file an interrupted repair left, and never a firmware file or an added file named alike', async function () {
    const own = '.fussy-repair-0123456789abcdef01234567'; // shipped by the firmware: in the manifest
    const { d } = await deviceWith(['fw-a'], [{ path: `etc/${own}`, content: 'firmware data\n' }]);
    const etc = join(d.target, 'fw-a', 'etc');
    // As a crash between open(O_EXCL) and rename(2) leaves it: root's, 0600, part of a copy.
    const leftover = '.fussy-repair-a1b2c3d4e5f60718293a4b5c';
    await writeFile(join(etc, leftover), 'shar', { mode: 0o600 });
    await writeFile(join(etc, '.fussy-repair-notes'), 'added by a person\n');
    await writeFile(join(etc, 'app.conf.fussy-repair-a1b2c3d4e5f60718293a4b5c'), 'added\n');
    await mkdir(join(etc, '.fussy-repair-ffffffffffffffffffffffff'));
    const seen = await cli('fussy', ['verify', '-t', d.target]);
    assert.equal(seen.exitCode, 2);
    assert.match(seen.stdout, new RegExp(`leftover etc/${leftover}: a temp file of an interrupted verify --repair`));
    assert.equal((await readdir(etc)).length, 7, 'a plain verify removed something');
    const r = await cli('fussy', ['verify', '-t', d.target, '--repair']);
    assert.equal(r.exitCode, 2, r.stderr); // the added files are still extra: reported, never deleted
    assert.match(r.stdout, new RegExp(`fw-a: removed etc/${leftover} \\(a temp file of an interrupted repair\\)`));
    assert.deepEqual((await readdir(etc)).sort(), ['.fussy-repair-0123456789abcdef01234567', '.fussy-repair-ffffffffffffffffffffffff', '.fussy-repair-notes', 'app.conf', 'app.conf.fussy-repair-a1b2c3d4e5f60718293a4b5c', 'version'].sort());
    assert.equal(await readFile(join(etc, own), 'utf8'), 'firmware data\n');
    assert.doesNotMatch(r.stdout, /leftover/);
    assert.equal((r.stdout.match(/ {2}extra /g) ?? []).length, 3);
    assert.match(r.stderr, /hint: verify --repair could not fix these: reinstall/);
  });

  describe('as a user who cannot read the release', function () {
    before(function () {
      if (!canSwitchUser()) this.skip();
    });

    it('a release directory the caller cannot read is a permission error (exit 40) naming it, not a finding', async function () {
      const { tmp, d } = await deviceWith(['fw-a']);
      await chmod(tmp, 0o755); // the chain to the target is nobody's to traverse; fw-a is root's 0700
      await chmod(join(d.target, 'fw-a'), 0o700);
      const r = await fussyAs(['verify', '-t', d.target, 'fw-a']);
      assert.equal(r.exitCode, 40, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /cannot read .*fw-a\/\.fussy-manifest\.json: EACCES\n {2}hint: permission denied: run fussy as root/);
    });

    it('a directory inside the release the caller cannot read is a permission error, not missing files', async function () {
      const { tmp, d } = await deviceWith(['fw-a']);
      await chmod(tmp, 0o755);
      await chmod(join(d.target, 'fw-a', 'etc'), 0o700);
      const r = await fussyAs(['verify', '-t', d.target, 'fw-a']);
      assert.equal(r.exitCode, 40, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /missing|no longer a hard link|problem/);
      assert.match(r.stderr, /cannot read .*fw-a\/etc\/[a-z.]+: EACCES\n {2}hint: permission denied: run fussy as root/);
      const json = await fussyAs(['verify', '-t', d.target, 'fw-a', '--json']);
      assert.equal(json.exitCode, 40);
      assert.deepEqual((JSON.parse(json.stdout) as { error: { code: string; errno: string } }).error, { ...(JSON.parse(json.stdout) as { error: object }).error, code: 'PERMISSION_DENIED', errno: 'EACCES' });
    });

    it('as a user other than root, a missing file whose healthy copy that user cannot read is still reported, and the hint says to repair as root', async function () {
      const { tmp, d } = await deviceWith(['fw-a', 'fw-b']);
      await chmod(tmp, 0o755);
      await chmod(join(d.target, 'fw-a', 'lib'), 0o700); // fw-a's libx.so.1 is the healthy copy
      await rm(join(d.target, 'fw-b', 'lib', 'libx.so.1'));
      const r = await fussyAs(['verify', '-t', d.target, 'fw-b']);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stdout, /^fw-b: 1 problem\n {2}missing lib\/libx.so.1/);
      assert.match(r.stderr, /hint: run fussy verify --repair as root/);
      const root = await cli('fussy', ['verify', '-t', d.target, 'fw-b']);
      assert.match(root.stderr, /hint: run fussy verify --repair to put back/);
    });
  });
});

async function deviceWith(names: string[], more: SampleFile[] = []): Promise<{ tmp: string; d: Device }> {
  const tmp = await makeTmp();
  const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
  const pkgs = [];
  for (const n of names) pkgs.push((await pack({ source: await writeTree(join(tmp, 'build', n), [...release(n), ...more]), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path);
  return { tmp, d: await deviceBeside(dev, 'dev', pkgs) };
}
