import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { readHistory } from '../../src/store/history.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, targetState, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

/**
 * The process-wide guard: an unhandled rejection or an uncaught exception during an install is a
 * bug, but it must not end the process with staging, the journal or the lock left behind. Made
 * real with test-only failpoints that leave a rejection unhandled / throw from a timer while the
 * package is being unpacked.
 */
describe('fussy install: an unhandled rejection or uncaught exception fails safe', function () {
  let dev: Device;
  let seq = 0;

  before(async function () {
    dev = await makeDevice(await makeTmp());
  });

  async function firmware(): Promise<string> {
    const files = [...sampleFirmware(), ...Array.from({ length: 4 }, (_, i) => ({ path: `data/blob${i}.bin`, content: randomBytes(1 << 20) }))];
    const src = await writeTree(join(dev.dir, 'build', `fw-${++seq}`), files);
    return (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, `fw-${seq}.tar.gz.gpg`), sequence: seq })).path;
  }

  for (const [kind, failpoint, what] of [
    ['unhandled rejection', 'reject:unpack-bytes:1', 'a promise rejection nobody handles'],
    ['uncaught exception', 'throw:unpack-bytes:1', 'an exception nobody catches'],
  ] as const) {
    it(`an ${kind} during the unpack: staging removed, lock released, history written, then exit 1 "please report"`, async function () {
      const before = await targetState(dev.target);
      const pkg = await firmware();
      const r = await cli('fussy', ['install', pkg, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir, env: { FUSSY_FAILPOINT: failpoint } });
      assert.equal(r.exitCode, 1, r.stderr);
      assert.match(r.stderr, /^fussy install: internal error, please report it with this output:\nError: failpoint /);
      assert.ok(r.stderr.includes(`failpoint ${failpoint}: ${what}`), r.stderr);
      assert.equal(r.stderr.match(/internal error, please report/g)?.length, 1, 'reported once');
      assert.deepEqual(await targetState(dev.target), before, 'the target changed');
      const left = (await readdir(join(dev.target, '.fussy'))).filter((n) => n.startsWith('staging-') || n === 'journal.json' || n.includes('.tmp-'));
      assert.deepEqual(left, []);
      const rec = (await readHistory(join(dev.target, '.fussy'))).records.at(-1);
      assert.equal(rec?.result, 'error');
      assert.equal(rec?.error?.code, 'INTERNAL');
      assert.match(rec?.error?.message ?? '', new RegExp(`internal error \\(failpoint ${failpoint}: ${what}\\): stopped safely`));
      // The lock is free and nothing is left to recover: the next install just works.
      const again = await cli('fussy', ['install', pkg, '-k', dev.keyring, '-t', dev.target], { cwd: dev.dir });
      assert.equal(again.exitCode, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /recover/);
      assert.equal(await readlink(join(dev.target, 'current')), `fw-${seq}`);
    });
  }
});
