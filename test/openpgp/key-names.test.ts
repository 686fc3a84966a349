import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { FussyError } from '../../src/errors.js';
import { keygen } from '../../src/keyring/keygen.js';
import { pack } from '../../src/pack/pack.js';
import { installInto, makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

/** Issue 11: refusals named subkey ids where fussy pack had printed the primary key's fingerprint. */
describe('refusals name keys the keyring holds by the fingerprint fussy pack prints', function () {
  let dev: Device;

  before(async function () {
    dev = await makeDevice(await makeTmp());
  });

  async function refusal(pkg: string, keyring = dev.keyring): Promise<FussyError> {
    const err = await installInto({ ...dev, keyring }, pkg).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof FussyError, String(err));
    return err;
  }

  it('subkey-id-in-errors: DECRYPT_FAILED for a device whose public key is in the keyring names its fingerprint, the subkey in parentheses', async function () {
    const other = await keygen({ role: 'device', name: 'Other', email: 'other@example.com', keyringDir: join(dev.dir, 'other-keys'), publicKeyFile: join(dev.dir, 'other.pub.asc') });
    const src = await writeTree(join(dev.dir, 'build', 'fw-enc'), sampleFirmware());
    const r = await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: [other.fingerprint], recipientKeyFiles: [other.publicKeyFile], output: join(dev.dir, 'other.gpg') });
    // A keyring that knows the other device's public key (a build keyring often does), not its secret.
    const keyring = join(dev.dir, 'keys-with-other');
    await mkdir(keyring);
    for (const f of await readdir(dev.keyring)) await copyFile(join(dev.keyring, f), join(keyring, f));
    await copyFile(other.publicKeyFile, join(keyring, 'other.asc'));
    const key = await openpgp.readKey({ armoredKey: await readFile(other.publicKeyFile, 'utf8') });
    const sub = key.subkeys[0]?.getKeyID().toHex().toUpperCase() ?? '';
    const fpr = key.getFingerprint().toUpperCase();
    assert.equal(fpr, other.fingerprint.toUpperCase());
    assert.deepEqual(r.encryptedFor, [fpr]);
    const err = await refusal(r.path, keyring);
    assert.equal(err.code, 'DECRYPT_FAILED');
    assert.match(err.message, new RegExp(`is encrypted for key ${fpr} \\(subkey ${sub}\\), and keyring`));
  });

  it('subkey-id-in-errors: a package signed by the device\'s own key (in the keyring, never a signer) names its fingerprint', async function () {
    const deviceKey = (await readdir(dev.keyring)).find((f) => f.startsWith('device-') && f.endsWith('.key'));
    assert.ok(deviceKey !== undefined);
    const src = await writeTree(join(dev.dir, 'build', 'fw-self'), sampleFirmware());
    const r = await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [join(dev.keyring, deviceKey)], output: join(dev.dir, 'self.gpg') });
    const err = await refusal(r.path);
    assert.equal(err.code, 'BAD_SIGNATURE');
    assert.match(err.message, new RegExp(`is signed by ${dev.deviceFingerprint.toUpperCase()}, which is not in keyring`));
  });

  it('subkey-id-in-errors: a key the keyring does not hold is still named by its key id', async function () {
    const stranger = await keygen({ role: 'signing', name: 'Stranger', email: 's@example.com', secretKeyFile: join(dev.dir, 'stranger.key'), publicKeyFile: join(dev.dir, 'stranger.pub.asc') });
    const src = await writeTree(join(dev.dir, 'build', 'fw-stranger'), sampleFirmware());
    const r = await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [stranger.secretKeyFile], output: join(dev.dir, 'stranger.gpg') });
    const err = await refusal(r.path);
    assert.match(err.message, new RegExp(`is signed by ${stranger.fingerprint.toUpperCase().slice(-16)}, which is not in keyring`));
  });
});
