import assert from 'node:assert/strict';
import { chmod, mkdir } from 'node:fs/promises';
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

  it('permission-denied --json: the error is SETUP with the path in its details', async function () {
    const r = await fussyAs(['clean', '-t', d.target, '--keep', '0', '--json']);
    const out = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; path: string } };
    assert.equal(out.error.code, 'SETUP');
    assert.ok(out.error.path.startsWith(d.target), out.error.path);
  });
});
