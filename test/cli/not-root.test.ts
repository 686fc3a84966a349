import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { pack } from '../../src/pack/pack.js';
import { deviceBeside, makeDevice, targetState, type Device } from '../helpers/device.js';
import { canSwitchUser, fussyAs, type UserResult } from '../helpers/other-user.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';

/** Issue 11: a new user runs fussy without sudo against the root-owned /opt/firmware. */
describe('fussy as a non-root user against a root-owned target', function () {
  let d: Device;
  let pkg: string;

  before(async function () {
    if (!canSwitchUser()) this.skip();
    const tmp = await makeTmp();
    const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const pkgs: string[] = [];
    for (const n of ['fw-a', 'fw-b', 'fw-c']) {
      const source = await writeTree(join(tmp, 'build', n), [{ path: 'etc/version', content: `${n}\n` }]);
      pkgs.push((await pack({ source, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path);
    }
    d = await deviceBeside(dev, 'dev', pkgs.slice(0, 2));
    pkg = pkgs[2] ?? '';
    // Everything readable by the other user, so the refusal is the target, not the way to it.
    await execa('chmod', ['-R', 'a+rX', tmp]);
    await chmod(tmp, 0o755);
  });

  function refusedAsSetup(r: UserResult): void {
    assert.equal(r.exitCode, 40, r.stderr);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.ok(r.stderr.includes(` ${d.target}/`), r.stderr);
    assert.match(r.stderr, /hint: run fussy as (root|a user who may write)/);
  }

  it('permission-denied-install: exits 40 naming the target path and the hint, not "internal error"', async function () {
    const before = await targetState(d.target);
    refusedAsSetup(await fussyAs(['install', '-k', d.keyring, '-t', d.target, pkg]));
    assert.deepEqual(await targetState(d.target), before);
  });

  it('permission-denied-install on a fresh target (no .fussy yet): exits 40, not "internal error"', async function () {
    const fresh = join(d.dir, '..', 'fresh');
    await mkdir(join(fresh, 'current'), { recursive: true });
    await chmod(join(fresh, '..'), 0o755);
    const r = await fussyAs(['install', '-k', d.keyring, '-t', fresh, pkg]);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.ok(r.stderr.includes(fresh), r.stderr);
  });

  it('permission-denied-rollback: exits 40 naming the target path and the hint', async function () {
    const before = await targetState(d.target);
    refusedAsSetup(await fussyAs(['rollback', '-t', d.target]));
    assert.deepEqual(await targetState(d.target), before);
  });

  it('permission-denied-clean: exits 40 naming the target path and the hint', async function () {
    const before = await targetState(d.target);
    refusedAsSetup(await fussyAs(['clean', '-t', d.target, '--keep', '0']));
    assert.deepEqual(await targetState(d.target), before);
  });

  it('permission-denied --json: the error is PERMISSION_DENIED with the path and errno in its details', async function () {
    const r = await fussyAs(['clean', '-t', d.target, '--keep', '0', '--json']);
    assert.equal(r.exitCode, 40, r.stderr);
    const out = JSON.parse(r.stdout) as JsonError;
    assert.equal(out.error.code, 'PERMISSION_DENIED');
    assert.equal(out.error.errno, 'EACCES');
    assert.ok(out.error.path.startsWith(d.target), out.error.path);
  });

  it('permission-denied-verify-repair: verify --repair of a damaged release is PERMISSION_DENIED naming .fussy, and repairs nothing', async function () {
    const version = join(d.target, 'fw-b', 'etc', 'version');
    await writeFile(version, 'damaged\n');
    try {
      const before = await targetState(d.target);
      const r = await fussyAs(['verify', '--repair', '-t', d.target, '--json']);
      const e = deniedJson(r);
      assert.equal(e.path, join(d.target, '.fussy'));
      assert.match(e.hint, /run fussy as root/);
      assert.deepEqual(await targetState(d.target), before);
      assert.equal(await readFile(version, 'utf8'), 'damaged\n');
    } finally {
      await writeFile(version, 'fw-b\n');
    }
  });

  it('permission-denied-keyring-unreadable: a keyring directory the user may not read is PERMISSION_DENIED naming it, not SETUP', async function () {
    await chmod(d.keyring, 0o700);
    try {
      const before = await targetState(d.target);
      const e = deniedJson(await fussyAs(['install', '-k', d.keyring, '-t', d.target, pkg, '--json']));
      assert.equal(e.path, d.keyring);
      assert.match(e.message, new RegExp(`cannot read keyring directory ${d.keyring}: EACCES`));
      assert.match(e.hint, /run fussy as root/);
      assert.deepEqual(await targetState(d.target), before);
    } finally {
      await chmod(d.keyring, 0o755);
    }
  });

  it('permission-denied-path-check: a directory on the way to the keyring or the target that the user may not search is PERMISSION_DENIED, not KEYRING_UNTRUSTED or TARGET_UNTRUSTED', async function () {
    const closed = join(d.dir, '..', 'closed');
    await mkdir(join(closed, 'keys'), { recursive: true, mode: 0o700 });
    await mkdir(join(closed, 'firmware', 'current'), { recursive: true });
    await chmod(closed, 0o700);
    const viaKeyring = deniedJson(await fussyAs(['install', '-k', join(closed, 'keys'), '-t', d.target, pkg, '--json']));
    assert.equal(viaKeyring.path, join(closed, 'keys'));
    assert.match(viaKeyring.message, /^keyring .* cannot be checked/);
    const viaTarget = deniedJson(await fussyAs(['clean', '-t', join(closed, 'firmware'), '--json']));
    assert.equal(viaTarget.path, join(closed, 'firmware'));
    assert.match(viaTarget.hint, /run fussy as root/);
  });

  it('permission-denied-history: a history log the user may not read is PERMISSION_DENIED (exit 40), not HISTORY_DAMAGED (exit 2)', async function () {
    const log = join(d.target, '.fussy', 'history.log');
    await chmod(log, 0o600);
    try {
      const e = deniedJson(await fussyAs(['history', '-t', d.target, '--json']));
      assert.equal(e.path, log);
    } finally {
      await chmod(log, 0o644);
    }
  });

  it('permission-denied-package: a package the user may not read is PERMISSION_DENIED (exit 40), not PACKAGE_UNREADABLE (exit 2)', async function () {
    await chmod(pkg, 0o600);
    try {
      const before = await targetState(d.target);
      const e = deniedJson(await fussyAs(['install', '-k', d.keyring, '-t', d.target, pkg, '--json']));
      assert.equal(e.path, pkg);
      assert.deepEqual(await targetState(d.target), before);
    } finally {
      await chmod(pkg, 0o644);
    }
  });

  it('permission-denied-keygen: keygen into a directory the user may not write is PERMISSION_DENIED naming the key file, and leaves nothing', async function () {
    const dir = join(d.dir, '..', 'root-only');
    await mkdir(dir, { mode: 0o755 });
    const pub = join(dir, 'build.pub.asc');
    const signing = deniedJson(await fussyAs(['keygen', 'signing', '--name', 'Build', '--email', 'build@example.com', '--no-passphrase', '--secret-key', join(dir, 'build.key'), '--public-key', pub, '--json']));
    assert.match(signing.message, new RegExp(`cannot write key file ${dir}/build\\.key: EACCES`));
    assert.equal(signing.path, dir);
    assert.match(signing.hint, new RegExp(`may write ${dir}`));
    const device = deniedJson(await fussyAs(['keygen', 'device', '--name', 'Device', '--email', 'device@example.com', '-k', join(dir, 'keys'), '--public-key', pub, '--json']));
    assert.match(device.message, new RegExp(`cannot create keyring ${dir}/keys: EACCES`));
    assert.match(device.hint, /run fussy as root/);
    assert.deepEqual(await readdir(dir), []);
  });
});

interface JsonError {
  ok: boolean;
  error: { code: string; message: string; hint: string; path: string; errno: string };
}

/** A --json refusal as PERMISSION_DENIED (exit 40) for EACCES, with a hint: its error. */
function deniedJson(r: UserResult): JsonError['error'] {
  assert.equal(r.exitCode, 40, r.stderr);
  const out = JSON.parse(r.stdout) as JsonError;
  assert.equal(out.ok, false);
  assert.equal(out.error.code, 'PERMISSION_DENIED', r.stdout);
  assert.equal(out.error.errno, 'EACCES', r.stdout);
  assert.ok(out.error.hint.length > 0, r.stdout);
  return out.error;
}
