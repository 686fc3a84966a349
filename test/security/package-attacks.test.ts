import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { pack } from '../../src/pack/pack.js';
import { keygen } from '../../src/keyring/keygen.js';
import { installInto, makeDevice, rawTar, signPayload, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';
import { assertRefused } from './helpers.js';

/** OpenPGP-layer attacks: every one refused before anything is installed (exit 20). */
describe('security: package-level attacks on install', function () {
  let dev: Device;
  let good: string;
  let tar: Buffer;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    const src = await writeTree(join(dev.dir, 'build', 'fw-1'), sampleFirmware());
    good = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'good.gpg') })).path;
    tar = rawTar([{ path: 'fw-1/', type: 'Directory' }, { path: 'fw-1/a', data: 'a' }]);
    await installInto(dev, good); // a release is current: the attacks must leave it alone
  });

  it('unsigned-plain-targz: a .tar.gz that was never signed', async function () {
    const f = join(dev.dir, 'plain.tar.gz');
    await writeFile(f, gzipSync(tar));
    await assertRefused(dev, f, 'BAD_SIGNATURE', /plain gzip file .* not a signed package/);
  });

  it('unsigned-literal: an OpenPGP literal message without signature', async function () {
    const f = await signPayload(join(dev.dir, 'literal.gpg'), tar, { signingKeys: [] });
    await assertRefused(dev, f, 'BAD_SIGNATURE', /is not signed/);
  });

  it('unsigned-encrypted-package: encrypted for the device but signed by nobody (the original Fussy accepted it)', async function () {
    const deviceKey = await openpgp.readKey({ armoredKey: await readFile(dev.devicePublicKeyFile, 'utf8') });
    const f = await signPayload(join(dev.dir, 'enc-unsigned.gpg'), tar, { signingKeys: [], encryptionKeys: [deviceKey] });
    await assertRefused(dev, f, 'BAD_SIGNATURE', /is not signed/);
  });

  it('foreign-signer: signed by a key outside the keyring, refused before any data is read', async function () {
    const other = await keygen({ role: 'signing', name: 'Mallory', email: 'mallory@example.com', secretKeyFile: join(dev.dir, 'mallory.key'), publicKeyFile: join(dev.dir, 'mallory.pub.asc') });
    const key = await openpgp.readPrivateKey({ armoredKey: await readFile(other.secretKeyFile, 'utf8') });
    const f = await signPayload(join(dev.dir, 'foreign.gpg'), tar, { signingKeys: [key] });
    await assertRefused(dev, f, 'BAD_SIGNATURE', new RegExp(`signed by ${other.fingerprint.slice(-16)}, which is not in keyring`));
  });

  it('tampered-byte: one byte of the signed payload flipped', async function () {
    const bytes = Buffer.from(await readFile(good));
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0x01;
    const f = join(dev.dir, 'tampered.gpg');
    await writeFile(f, bytes);
    await assertRefused(dev, f, 'BAD_SIGNATURE', /failed verification|signature check failed|cannot be read|not valid gzip/);
  });

  it('truncated-package: the last part of the file is missing', async function () {
    const bytes = await readFile(good);
    const f = join(dev.dir, 'truncated.gpg');
    await writeFile(f, bytes.subarray(0, bytes.length - 200));
    await assertRefused(dev, f, 'BAD_SIGNATURE', /failed verification|signature check failed|cannot be read|truncated/);
  });

  it('wrong-device-key: encrypted for another device', async function () {
    const other = await keygen({ role: 'device', name: 'Other', email: 'other@example.com', keyringDir: join(dev.dir, 'other-keys'), publicKeyFile: join(dev.dir, 'other.pub.asc') });
    const src = await writeTree(join(dev.dir, 'build2', 'fw-2'), sampleFirmware());
    const f = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: [other.fingerprint], recipientKeyFiles: [other.publicKeyFile], output: join(dev.dir, 'other.gpg') })).path;
    await assertRefused(dev, f, 'DECRYPT_FAILED', /is encrypted for key .* has no matching secret key/);
  });

  it('garbage: random bytes', async function () {
    const f = join(dev.dir, 'garbage.gpg');
    await writeFile(f, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)));
    await assertRefused(dev, f, 'BAD_SIGNATURE', /not an OpenPGP message|cannot be read|not signed/);
  });

  it('future-signature: a device clock in 1970 does not reject a valid signature', async function () {
    const r = await installInto(dev, good, { now: new Date(0) });
    if (!r.release.startsWith('fw-1')) throw new Error(r.release);
  });

  it('expired-signing-key: a signature by a key that has expired is refused', async function () {
    const created = new Date(Date.now() - 10 * 86400_000);
    const { privateKey, publicKey } = await openpgp.generateKey({ userIDs: [{ name: 'Short', email: 'short@example.com' }], date: created, keyExpirationTime: 86400, format: 'armored' });
    const dev2 = await makeDevice(await makeTmp());
    await writeFile(join(dev2.keyring, 'short.asc'), publicKey);
    const key = await openpgp.readPrivateKey({ armoredKey: privateKey });
    const message = await openpgp.createMessage({ binary: gzipSync(tar), format: 'binary' });
    const signed = await openpgp.sign({ message, signingKeys: key, format: 'binary', date: new Date(created.getTime() + 3600_000) });
    const f = join(dev2.dir, 'expired.gpg');
    await writeFile(f, signed as Uint8Array);
    await assertRefused(dev2, f, 'BAD_SIGNATURE', /signature check failed/);
  });

  it('revoked-signing-key: a signature by a key whose revocation is in the keyring is refused', async function () {
    const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'Gone', email: 'gone@example.com' }], format: 'object' });
    const { publicKey: revoked } = await openpgp.revokeKey({ key: privateKey, format: 'armored' });
    const dev2 = await makeDevice(await makeTmp());
    await writeFile(join(dev2.keyring, 'gone.asc'), revoked);
    const f = await signPayload(join(dev2.dir, 'revoked.gpg'), tar, { signingKeys: [privateKey] });
    await assertRefused(dev2, f, 'BAD_SIGNATURE', /signature check failed|revoked/i);
  });

  it('threshold-not-met: with "threshold = 2" one signature is not enough, two distinct keys are', async function () {
    const dev2 = await makeDevice(await makeTmp());
    const second = await keygen({ role: 'signing', name: 'Second', email: 'second@example.com', secretKeyFile: join(dev2.dir, 'second.key'), publicKeyFile: join(dev2.dir, 'second.pub.asc'), keyringDir: dev2.keyring });
    await writeFile(join(dev2.keyring, 'policy'), '# m-of-n\nthreshold = 2\n');
    const src = await writeTree(join(dev2.dir, 'build', 'fw-mofn'), sampleFirmware());
    const one = (await pack({ source: src, tmpDir: dev2.dir, signingKeyFiles: [dev2.signingKeyFile], output: join(dev2.dir, 'one.gpg') })).path;
    await assertRefused(dev2, one, 'BAD_SIGNATURE', /need 2 valid signatures by distinct keyring keys, got 1/);
    const two = (await pack({ source: src, tmpDir: dev2.dir, signingKeyFiles: [dev2.signingKeyFile, second.secretKeyFile], output: join(dev2.dir, 'two.gpg') })).path;
    const r = await installInto(dev2, two);
    if (r.signers.length !== 2) throw new Error(`signers ${r.signers.join(',')}`);
  });
});

/** The same attacks on encrypted packages, which are decrypted on a worker thread (seipd.ts). */
describe('security: attacks on encrypted packages', function () {
  let dev: Device;
  let enc: string;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    // Random data (stored gzip members): the package spans several of the thread's 1 MiB pieces.
    const tree = [...sampleFirmware(), { path: 'opt/blob.bin', content: randomBytes(3 * 1024 * 1024) }];
    const src = await writeTree(join(dev.dir, 'build', 'fw-1'), tree);
    enc = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: [dev.deviceFingerprint], recipientKeyFiles: [dev.devicePublicKeyFile], output: join(dev.dir, 'enc.gpg') })).path;
    await installInto(dev, enc); // it installs as made; then a release is current for the attacks to leave alone
  });

  const altered = async (name: string, change: (b: Buffer) => Buffer): Promise<string> => {
    const f = join(dev.dir, name);
    await writeFile(f, change(Buffer.from(await readFile(enc))));
    return f;
  };

  it('tampered-ciphertext: one byte in the middle of an encrypted package flipped', async function () {
    const f = await altered('tampered-enc.gpg', (b) => {
      const at = Math.floor(b.length / 2);
      b[at] = (b[at] as number) ^ 0x01;
      return b;
    });
    await assertRefused(dev, f, 'BAD_SIGNATURE', /modification detected|failed verification|signature check failed|not valid gzip/);
  });

  it('forged-mdc: only the integrity check at the end changed, the signed data intact: still refused', async function () {
    const f = await altered('forged-mdc.gpg', (b) => {
      b[b.length - 1] = (b[b.length - 1] as number) ^ 0x01;
      return b;
    });
    await assertRefused(dev, f, 'BAD_SIGNATURE', /modification detected/);
  });

  it('trailing-data: bytes appended after the encrypted data are refused, not ignored', async function () {
    const f = await altered('appended-enc.gpg', (b) => Buffer.concat([b, Buffer.from('\xcb\x0bb\x00\x00\x00\x00\x00evil!', 'latin1')]));
    await assertRefused(dev, f, 'BAD_SIGNATURE', /bytes follow the encrypted data/);
  });

  it('truncated-encrypted-package: the last part of an encrypted package missing', async function () {
    const f = await altered('truncated-enc.gpg', (b) => b.subarray(0, b.length - 1000));
    await assertRefused(dev, f, 'BAD_SIGNATURE', /truncated|too short|failed verification|signature check failed/);
  });
});
