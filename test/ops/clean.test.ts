import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readlink, statfs, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { acquireLock } from '../../src/lock/pid-lock.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { deviceWithPackages, installedBeside, installInto, type Device } from '../helpers/device.js';
import { snapshotTree, writeTree, type SampleFile } from '../helpers/tree.js';

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));
const MB = 1024 * 1024;

/** A release of `shared` (the same in every release) plus a unique 1 MiB file. */
function release(name: string): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: 'lib/shared.bin', content: Buffer.alloc(2 * MB, 7) },
    { path: `data/${name}.bin`, content: Buffer.alloc(MB, name.charCodeAt(name.length - 1)) },
  ];
}

interface CleanJson {
  removed: string[];
  kept: string[];
  current: string;
  freedBytes: number;
  foreign: string[];
  dryRun: boolean;
}

describe('fussy clean: old releases go, current, failsafe and the newest --keep stay', function () {
  let dev: Device;
  let pkgs: Record<string, string>;

  before(async function () {
    ({ dev, pkgs } = await deviceWithPackages(['fw-a', 'fw-b', 'fw-c', 'fw-d'], release));
  });

  const freshDevice = (name: string, installs: string[]): Promise<Device> => installedBeside({ dev, pkgs }, name, installs);

  it('keeps the newest --keep previous releases, removes the rest, and reports the bytes really freed', async function () {
    // A file system of its own: statfs must see this clean's frees, not what else runs on the machine.
    const own = join(dev.dir, '..', 'dev-keep');
    await mkdir(own, { recursive: true });
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'tmpfs', own], { reject: false });
    if (mounted.exitCode !== 0) this.skip(); // needs root (CI runs as root)
    try {
      const d = await freshDevice('dev-keep', ['fw-a', 'fw-b', 'fw-c', 'fw-d']);
      const failsafe = await snapshotTree(join(d.target, 'failsafe'));
      const current = await snapshotTree(join(d.target, 'fw-d'));
      const before = await statfs(d.target);
      const r = await cli('fussy', ['clean', '-t', d.target, '--json']);
      assert.equal(r.exitCode, 0, r.stderr);
      const out = JSON.parse(r.stdout) as CleanJson;
      assert.deepEqual([out.removed, out.kept, out.current], [['fw-a', 'fw-b'], ['fw-c'], 'fw-d']);
      assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-c', 'fw-d']);
      assert.deepEqual(await snapshotTree(join(d.target, 'failsafe')), failsafe);
      assert.deepEqual(await snapshotTree(join(d.target, 'fw-d')), current);
      // lib/shared.bin (2 MiB) is a hard link shared with the kept releases: it frees nothing.
      // Each removed release gives back its own 1 MiB file, its manifest and its directories.
      assert.ok(out.freedBytes >= 2 * MB && out.freedBytes < 2 * MB + 256 * 1024, `freed ${out.freedBytes}`);
      const measured = ((await statfs(d.target)).bfree - before.bfree) * before.bsize;
      assert.ok(Math.abs(measured - out.freedBytes) <= 128 * 1024, `statfs says ${measured} bytes were freed, clean said ${out.freedBytes}`);
      assert.match((await cli('fussy', ['history', '-t', d.target])).stdout, /clean ok removed fw-a, fw-b \(2\.\d MiB freed\) [\d.]+ s$/);
    } finally {
      await execa('umount', ['-l', own]);
    }
  });

  it('--dry-run shows the same plan and removes nothing; --keep 0 keeps only current and failsafe', async function () {
    const d = await freshDevice('dev-dry', ['fw-a', 'fw-b', 'fw-c']);
    const r = await cli('fussy', ['clean', '-t', d.target, '--keep', '0', '--dry-run', '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as CleanJson;
    assert.deepEqual([out.removed, out.kept, out.dryRun], [['fw-a', 'fw-b'], [], true]);
    assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-a', 'fw-b', 'fw-c']);
    const human = await cli('fussy-clean', ['-t', d.target, '--keep', '0']);
    assert.equal(human.exitCode, 0, human.stderr);
    assert.match(human.stderr, /removed fw-a, fw-b: .* freed\nkept: current -> fw-c, failsafe$/);
    assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-c']);
  });

  it('reports plain files and foreign symlinks in the target and leaves them; never touches dot-entries', async function () {
    const d = await freshDevice('dev-foreign', ['fw-a']);
    await writeFile(join(d.target, 'notes.txt'), 'operator notes\n');
    await symlink('/etc', join(d.target, 'etc-link'));
    await mkdir(join(d.target, '.keep-me'));
    const r = await cli('fussy', ['clean', '-t', d.target]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /left alone \(not a release\): etc-link -> \/etc\nleft alone \(not a release\): notes.txt/);
    assert.equal(await readlink(join(d.target, 'etc-link')), '/etc');
    assert.ok((await lstat(join(d.target, '.keep-me'))).isDirectory());
    assert.ok((await lstat(join(d.target, 'notes.txt'))).isFile());
  });

  it('exits 75 while an install holds the lock, changing nothing', async function () {
    const d = await freshDevice('dev-locked', ['fw-a', 'fw-b', 'fw-c']);
    const held = await acquireLock(join(d.target, '.fussy', 'lock'), 'install slow.tar.gz.gpg');
    try {
      const r = await cli('fussy', ['clean', '-t', d.target, '--keep', '0']);
      assert.equal(r.exitCode, 75);
      assert.match(r.stderr, /held by pid \d+ \(install slow.tar.gz.gpg/);
      assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-a', 'fw-b', 'fw-c']);
    } finally {
      await held.release();
    }
  });

  it('first recovers an install a crash interrupted (its staging dir goes, under the lock)', async function () {
    const d = await freshDevice('dev-crashed', ['fw-a']);
    const killed = await execa(process.execPath, [FUSSY, 'install', pkgs['fw-b'] as string, '-k', d.keyring, '-t', d.target], { env: { FUSSY_FAILPOINT: 'after-unpack' }, reject: false });
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok((await readdir(join(d.target, '.fussy'))).some((n) => n.startsWith('staging-')), 'the crash left a staging dir');
    const r = await cli('fussy', ['clean', '-t', d.target]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /removed .*staging-.* left by an interrupted install/);
    assert.ok(!(await readdir(join(d.target, '.fussy'))).some((n) => n.startsWith('staging-')));
  });

  it('a release kept after its post-install failed goes before working ones', async function () {
    const d = await freshDevice('dev-failed', ['fw-a', 'fw-b']);
    const tmp = join(d.dir, 'build');
    const broken = release('fw-x').concat([{ path: '.post-install', mode: 0o755, content: '#!/bin/sh\nexit 1\n' }]);
    const pkg = (await pack({ source: await writeTree(join(tmp, 'fw-x'), broken), tmpDir: d.dir, signingKeyFiles: [d.signingKeyFile], output: join(d.dir, 'fw-x.gpg') })).path;
    await assert.rejects(installInto(d, pkg), { code: 'INSTALL_FAILED_RECOVERED' });
    const r = await cli('fussy', ['clean', '-t', d.target, '--json']);
    const out = JSON.parse(r.stdout) as CleanJson;
    assert.deepEqual([out.current, out.removed, out.kept], ['fw-b', ['fw-x'], ['fw-a']]);
  });

  it('killed after removing the first of its releases: recovery finishes the list (and never touches current, failsafe or the kept one)', async function () {
    const d = await freshDevice('dev-clean-crash', ['fw-a', 'fw-b', 'fw-c', 'fw-d']);
    const kept = await snapshotTree(join(d.target, 'fw-c'));
    const killed = await execa(process.execPath, [FUSSY, 'clean', '-t', d.target], { env: { FUSSY_FAILPOINT: 'clean-after-first' }, reject: false });
    assert.equal(killed.signal, 'SIGKILL');
    assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-b', 'fw-c', 'fw-d'], 'fw-a went first');
    const r = await cli('fussy', ['recover', '-t', d.target, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match((JSON.parse(r.stdout) as { message: string }).message, /finished the interrupted clean: fw-a, fw-b removed/);
    assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe', 'fw-c', 'fw-d']);
    assert.deepEqual(await snapshotTree(join(d.target, 'fw-c')), kept);
    assert.equal(await readlink(join(d.target, 'current')), 'fw-d');
  });
});
