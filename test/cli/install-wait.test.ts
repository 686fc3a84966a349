import assert from 'node:assert/strict';
import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock } from '../../src/lock/pid-lock.js';
import { pack } from '../../src/pack/pack.js';
import { makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';
import { watchFussy } from '../helpers/watch.js';

/** Issue 11: `--wait` said nothing while it waited, so it looked hung. */
describe('--wait says once, on stderr, whose lock it waits for', function () {
  let dev: Device;
  let pkg: string;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    const source = await writeTree(join(dev.dir, 'build', 'fw-w'), [{ path: 'etc/version', content: 'fw-w\n' }]);
    pkg = (await pack({ source, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'fw-w.tar.gz.gpg') })).path;
  });

  for (const args of [['install', 'PKG', '-k', 'KEYS'], ['clean']]) {
    it(`wait-silent: fussy ${args[0]} --wait behind a held lock names the holder once, then goes on when it is released`, async function () {
      const held = await acquireLock(join(dev.target, '.fussy', 'lock'), 'install other.tar.gz.gpg');
      let released = false;
      try {
        const argv = [...args.map((a) => (a === 'PKG' ? pkg : a === 'KEYS' ? dev.keyring : a)), '-t', dev.target, '--wait'];
        const p = watchFussy('fussy', argv, { cwd: dev.dir });
        await p.stderrMatches(new RegExp(`waiting for the lock: ${join(dev.target, '.fussy', 'lock')} is held by pid ${process.pid} \\(install other\\.tar\\.gz\\.gpg, since `));
        await held.release();
        released = true;
        const r = await p.done();
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.stderr.split('\n').filter((l) => l.includes('waiting for the lock')).length, 1, r.stderr);
      } finally {
        if (!released) await held.release();
      }
    });
  }

  it('wait-silent: no waiting event when the lock is free', async function () {
    const { install } = await import('../../src/index.js');
    const events: Array<{ type: string; message?: string }> = [];
    await install({ package: pkg, keyring: dev.keyring, target: dev.target, wait: true, env: {}, cwd: dev.dir, onEvent: (e) => events.push(e) });
    assert.equal(await readlink(join(dev.target, 'current')), 'fw-w-1');
    assert.deepEqual(events.filter((e) => e.message?.startsWith('waiting') === true), []);
  });
});
