import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { pack, type PackOptions } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { deviceBeside, installInto, makeDevice, signPayload, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';
import { assertRefused } from './helpers.js';

/** Policy attacks (TUF's rollback and mix-and-match; docs/format.md): refused with exit 21, nothing changed. */
describe('security: install policy (downgrade, device type, legacy packages)', function () {
  let dev: Device;
  let tmp: string;
  let n = 0;

  before(async function () {
    tmp = await makeTmp();
    dev = await makeDevice(join(tmp, 'keys'), { factory: false });
  });

  async function pkg(release: string, o: Partial<PackOptions> = {}): Promise<string> {
    const src = await writeTree(join(tmp, 'build', `${release}-${n++}`, release), [{ path: 'etc/version', content: `${release}\n` }]);
    return (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${release}-${n}.gpg`), ...o })).path;
  }

  it('downgrade-attack: a validly signed older release is refused once a newer one ran; --allow-downgrade or a signed rollback mark lets it in', async function () {
    const d = await deviceBeside(dev, 'dev-downgrade', [await pkg('fw-new', { sequence: 200 })]);
    const old = await pkg('fw-old', { sequence: 100 });
    await assertRefused(d, old, 'DOWNGRADE', /fw-old has sequence 100, older than 200 which this device already ran/);
    const r = await cli('fussy', ['install', old, '-k', d.keyring, '-t', d.target]);
    assert.equal(r.exitCode, 21);
    assert.match(r.stderr, /hint: pass --allow-downgrade/);
    assert.equal((await installInto(d, old, { allowDowngrade: true })).release, 'fw-old');
    // The highest sequence stays recorded: going back does not lower the bar.
    await assertRefused(d, await pkg('fw-older', { sequence: 50 }), 'DOWNGRADE', /older than 200/);
    assert.equal((await installInto(d, await pkg('fw-planned-rollback', { sequence: 60, rollback: true }))).release, 'fw-planned-rollback');
    assert.equal(JSON.parse(await readFile(join(d.target, '.fussy', 'state.json'), 'utf8')).highestSequence, 200);
  });

  it('min-sequence: a release that needs a newer base is refused until the intermediate one is installed', async function () {
    const d = await deviceBeside(dev, 'dev-minseq', [await pkg('fw-1', { sequence: 10 })]);
    const jump = await pkg('fw-3', { sequence: 30, minSequence: 20 });
    await assertRefused(d, jump, 'INCOMPATIBLE', /upgrades only from sequence 20 or later; this device has 10/);
    await installInto(d, await pkg('fw-2', { sequence: 20 }));
    assert.equal((await installInto(d, jump)).release, 'fw-3');
  });

  it('incompatible-device: firmware for other device types is refused; the type comes from KEYRING/device-type or --device-type', async function () {
    const d = await deviceBeside(dev, 'dev-type');
    const camera = await pkg('fw-camera', { compatible: ['camera-a', 'camera-b'] });
    await assertRefused(d, camera, 'INCOMPATIBLE', /only for device types camera-a, camera-b, and this device's type is not set/);
    await assertRefused(d, camera, 'INCOMPATIBLE', /for device types camera-a, camera-b, not router-x/, { deviceType: 'router-x' });
    const keyring = join(tmp, 'keyring-camera');
    await execa('cp', ['-r', d.keyring, keyring]);
    await writeFile(join(keyring, 'device-type'), 'router-x\n');
    await assertRefused({ ...d, keyring }, camera, 'INCOMPATIBLE', /for device types camera-a, camera-b, not router-x/);
    await writeFile(join(keyring, 'device-type'), 'camera-b\n');
    assert.equal((await installInto({ ...d, keyring }, camera)).release, 'fw-camera');
    assert.equal((await installInto(d, await pkg('fw-any'))).release, 'fw-any', 'a package without a compatible list installs anywhere');
  });

  it('legacy-refused: with "legacy = refuse" a package made by the original pipeline (no manifest) is refused; by default it installs', async function () {
    await writeTree(join(tmp, 'build', 'legacy', 'fw-legacy'), [{ path: 'etc/version', content: 'legacy\n' }]);
    const file = join(tmp, 'legacy.tar.gz.gpg');
    const tar = (await execa('tar', ['czf', '-', '-C', join(tmp, 'build', 'legacy'), 'fw-legacy'], { encoding: 'buffer' })).stdout as Uint8Array;
    await signPayload(file, Buffer.from(tar), { signingKeys: [dev.signingKey] });
    const keyring = join(tmp, 'keyring-strict');
    await execa('cp', ['-r', dev.keyring, keyring]);
    await writeFile(join(keyring, 'policy'), 'threshold = 1\nlegacy = refuse\n');
    const strict = { ...(await deviceBeside(dev, 'dev-legacy-strict')), keyring };
    await assertRefused(strict, file, 'BAD_ARCHIVE', /no fussy manifest .* legacy = refuse/);
    const relaxed = await deviceBeside(dev, 'dev-legacy-default');
    assert.equal((await installInto(relaxed, file)).release, 'fw-legacy');
  });
});
