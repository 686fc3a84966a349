import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { acquireLock } from '../../src/lock/pid-lock.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { deviceBeside, makeDevice } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));

interface StatusJson {
  lockedBy?: string;
  staleLock?: string;
}

describe('fussy status: a dead lock holder is told from a live one', function () {
  it('an install killed mid-way leaves a stale lock of a dead pid, shown as such; a live holder is shown as the holder', async function () {
    const tmp = await makeTmp();
    const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const src = await writeTree(join(tmp, 'build', 'fw-a'), [{ path: 'etc/version', content: 'a\n' }]);
    const pkg = (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'fw-a.gpg') })).path;
    const d = await deviceBeside(dev, 'dev');

    const proc = execa(process.execPath, [FUSSY, 'install', pkg, '-k', d.keyring, '-t', d.target], { env: { FUSSY_FAILPOINT: 'after-unpack' }, reject: false });
    const killed = { pid: proc.pid, signal: (await proc).signal };
    assert.equal(killed.signal, 'SIGKILL');
    const json = JSON.parse((await cli('fussy', ['status', '-t', d.target, '--json'])).stdout) as StatusJson;
    assert.equal(json.lockedBy, undefined, 'a dead process is not named as the holder');
    assert.match(json.staleLock ?? '', new RegExp(`^dead pid ${killed.pid} \\(install fw-a\\.gpg, since `));
    const human = await cli('fussy', ['status', '-t', d.target]);
    assert.match(human.stdout, new RegExp(`stale lock of dead pid ${killed.pid} \\(install fw-a\\.gpg, since [^)]*\\), cleared by the next command that takes it`));
    assert.doesNotMatch(human.stdout, /locked by/);

    const child = execa('sleep', ['30'], { reject: false });
    try {
      const held = await acquireLock(join(d.target, '.fussy', 'lock'), 'install slow.tar.gz.gpg', { pid: child.pid });
      const live = JSON.parse((await cli('fussy', ['status', '-t', d.target, '--json'])).stdout) as StatusJson;
      assert.match(live.lockedBy ?? '', new RegExp(`^pid ${child.pid} \\(install slow\\.tar\\.gz\\.gpg, since `));
      assert.equal(live.staleLock, undefined);
      child.kill('SIGKILL');
      await child;
      const dead = JSON.parse((await cli('fussy', ['status', '-t', d.target, '--json'])).stdout) as StatusJson;
      assert.deepEqual([dead.lockedBy, dead.staleLock?.startsWith(`dead pid ${child.pid} `)], [undefined, true]);
      void held; // left behind like a killed holder's
    } finally {
      child.kill();
    }
    // The next command that takes the lock clears it.
    assert.equal((await cli('fussy', ['recover', '-t', d.target])).exitCode, 0);
    const after = JSON.parse((await cli('fussy', ['status', '-t', d.target, '--json'])).stdout) as StatusJson;
    assert.deepEqual([after.lockedBy, after.staleLock], [undefined, undefined]);
  });
});
