import assert from 'node:assert/strict';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { clean, FussyError, install, pack, type FussyEvent } from '../../src/index.js';
import { makeDevice, targetState, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

/**
 * Cancelling an operation with an AbortSignal (issue 11: an upload the daemon cuts, a shutdown):
 * before the switch it ends like a refusal, with nothing changed; after the switch it completes.
 */
describe('API: cancelling with an AbortSignal', function () {
  let dev: Device;
  const pkgs: string[] = [];

  before(async function () {
    dev = await makeDevice(await makeTmp('fussy-cancel-'));
    for (const n of [1, 2, 3]) {
      // The post-install takes a moment and leaves a mark: it must run to its end after the switch.
      const files = [...sampleFirmware().filter((f) => f.path !== '.post-install'), { path: '.post-install', content: `#!/bin/sh\nsleep 0.3\necho done > "$FUSSY_MARK"\n`, mode: 0o755 }, { path: 'etc/n', content: `${n}\n` }];
      const src = await writeTree(join(dev.dir, 'build', `fw-${n}`), files);
      pkgs.push((await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, `fw-${n}.gpg`) })).path);
    }
  });

  const opts = (mark: string) => ({ target: dev.target, keyring: dev.keyring, env: { PATH: process.env.PATH, FUSSY_MARK: join(dev.dir, mark) }, cwd: dev.dir });

  it('aborted while the package unpacks: INTERRUPTED, the target exactly as it was, no staging left', async function () {
    await install({ ...opts('m1'), package: pkgs[0] as string });
    const before = await targetState(dev.target);
    const ac = new AbortController();
    await assert.rejects(
      install({ ...opts('m2'), package: pkgs[1] as string, signal: ac.signal, onEvent: (e: FussyEvent) => e.type === 'progress' && ac.abort() }),
      (e: unknown) => e instanceof FussyError && e.code === 'INTERRUPTED',
    );
    assert.deepEqual(await targetState(dev.target), before);
    assert.deepEqual((await readdir(join(dev.target, '.fussy'))).filter((n) => n.startsWith('staging-')), []);
  });

  it('aborted right after the switch: the install completes, its post-install runs to its end', async function () {
    const ac = new AbortController();
    const r = await install({ ...opts('m3'), package: pkgs[2] as string, signal: ac.signal, onEvent: (e: FussyEvent) => e.type === 'switch' && ac.abort() });
    assert.ok(ac.signal.aborted);
    assert.equal(await readlink(join(dev.target, 'current')), r.release);
    assert.equal(await readFile(join(dev.dir, 'm3'), 'utf8'), 'done\n', 'the post-install was not cut short');
  });

  it('clean aborted before it removes anything: INTERRUPTED, every release still there', async function () {
    const before = (await readdir(dev.target)).sort();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(clean({ target: dev.target, keep: 0, signal: ac.signal }), (e: unknown) => e instanceof FussyError && e.code === 'INTERRUPTED');
    assert.deepEqual((await readdir(dev.target)).sort(), before);
  });
});
