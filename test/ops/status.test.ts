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
const MB = 1024 * 1024;

interface StatusJson {
  current: string;
  highestSequence: number;
  releases: Array<{ name: string; current: boolean; failsafe: boolean; sequence?: number; uniqueBytes: number; sharedBytes: number }>;
  lastTransaction: { action: string; result: string; release: string };
  pendingRecovery?: { action: string; release: string; step: string };
  lockedBy?: string;
}

describe('fussy status: what is installed, how much is shared, what happened last', function () {
  it('lists releases with sequence and own vs shared bytes, the last transaction, a pending recovery and the lock holder', async function () {
    const tmp = await makeTmp();
    const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const pkgs: string[] = [];
    for (const [n, seq] of [['fw-a', 10], ['fw-b', 20]] as const) {
      const files = [
        { path: 'lib/shared.bin', content: Buffer.alloc(2 * MB, 1) },
        { path: `data/${n}.bin`, content: Buffer.alloc(MB, n.charCodeAt(3)) },
      ];
      pkgs.push((await pack({ source: await writeTree(join(tmp, 'build', n), files), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], sequence: seq, output: join(tmp, `${n}.gpg`) })).path);
    }
    const d = await deviceBeside(dev, 'dev', pkgs);
    const r = await cli('fussy', ['status', '-t', d.target, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const s = JSON.parse(r.stdout) as StatusJson;
    assert.equal(s.current, 'fw-b');
    assert.equal(s.highestSequence, 20);
    const b = s.releases.find((x) => x.name === 'fw-b');
    assert.ok(b !== undefined && b.current && b.sequence === 20);
    assert.ok(b.uniqueBytes >= MB && b.uniqueBytes < MB + 256 * 1024, `fw-b owns its 1 MiB file and manifest: ${b.uniqueBytes}`);
    assert.ok(b.sharedBytes >= 2 * MB && b.sharedBytes < 2 * MB + 64 * 1024, `fw-b shares lib/shared.bin with fw-a: ${b.sharedBytes}`);
    assert.ok(s.releases.some((x) => x.failsafe));
    assert.deepEqual([s.lastTransaction.action, s.lastTransaction.result, s.lastTransaction.release], ['install', 'ok', 'fw-b']);
    assert.equal(s.pendingRecovery, undefined);

    // An install killed after the switch: status shows the pending recovery, without taking the lock.
    assert.equal((await execa(process.execPath, [FUSSY, 'rollback', '-t', d.target], { env: { FUSSY_FAILPOINT: 'after-switch' }, reject: false })).signal, 'SIGKILL');
    const held = await acquireLock(join(d.target, '.fussy', 'lock'), 'install slow.tar.gz.gpg');
    try {
      const p = JSON.parse((await cli('fussy', ['status', '-t', d.target, '--json'])).stdout) as StatusJson;
      assert.deepEqual(p.pendingRecovery && [p.pendingRecovery.action, p.pendingRecovery.release, p.pendingRecovery.step], ['rollback', 'fw-a', 'pre-install']);
      assert.match(p.lockedBy ?? '', /install slow.tar.gz.gpg/);
      const human = await cli('fussy', ['status', '-t', d.target]);
      assert.match(human.stdout, /pending recovery: the rollback of fw-a .* interrupted at "pre-install"/);
      assert.match(human.stdout, /\* fw-a /);
    } finally {
      await held.release();
    }
  });
});
