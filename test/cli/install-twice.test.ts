import assert from 'node:assert/strict';
import { join } from 'node:path';
import { install } from '../../src/index.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';

/** Issue 11: the same package installed twice quietly made a second full release. */
describe('installing the same package twice', function () {
  let dev: Device;
  const pkgs: Record<string, string> = {};

  before(async function () {
    dev = await makeDevice(await makeTmp());
    for (const [n, v] of [['fw-1', 'one'], ['fw-2', 'two']] as const) {
      const source = await writeTree(join(dev.dir, 'build', n), [{ path: 'etc/version', content: `${v}\n` }]);
      pkgs[n] = (await pack({ source, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, `${n}.tar.gz.gpg`) })).path;
    }
  });

  it('same-package-twice: the second install is allowed, says which release it repeats on stderr, and reports sameAs in --json', async function () {
    const first = await cli('fussy', ['install', pkgs['fw-1'] ?? '', '-k', dev.keyring, '-t', dev.target, '--json']);
    assert.equal(first.exitCode, 0, first.stderr);
    assert.equal((JSON.parse(first.stdout) as { sameAs?: string }).sameAs, undefined);
    const again = await cli('fussy', ['install', pkgs['fw-1'] ?? '', '-k', dev.keyring, '-t', dev.target]);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.equal(again.lastLine, join(dev.target, 'fw-1-1'));
    assert.match(again.stderr, /^fw-1-1 is the same release as fw-1 \(identical manifest\): installed again as a separate copy$/m);
    const json = await cli('fussy', ['install', pkgs['fw-1'] ?? '', '-k', dev.keyring, '-t', dev.target, '--json']);
    const r = JSON.parse(json.stdout) as { release: string; sameAs?: string };
    assert.equal(r.release, 'fw-1-2');
    assert.equal(r.sameAs, 'fw-1');
  });

  it('same-package-twice: another package gets no sameAs and no such line', async function () {
    const events: Array<{ type: string; message?: string }> = [];
    const r = await install({ package: pkgs['fw-2'] ?? '', keyring: dev.keyring, target: dev.target, env: {}, cwd: dev.dir, onEvent: (e) => events.push(e) });
    assert.equal(r.release, 'fw-2');
    assert.equal(r.sameAs, undefined);
    assert.deepEqual(events.filter((e) => e.message?.includes('same release') === true), []);
  });
});
