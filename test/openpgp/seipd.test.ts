import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as openpgp from 'openpgp';
import { FussyError } from '../../src/errors.js';
import { inflateOuterLayer } from '../../src/openpgp/outer-compression.js';
import { decryptSeipd, findSeipdV1 } from '../../src/openpgp/seipd.js';
import { webStreamOf } from '../../src/util/web-stream.js';
import { pack } from '../../src/pack/pack.js';
import { makeDevice, type Device } from '../helpers/device.js';
import { gpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

const FROZEN = fileURLToPath(new URL('../../../fixtures/gnupg-2.2/', import.meta.url));

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

for (const thread of [true, false]) describe(`decryptSeipd: encrypted packages decrypted ${thread ? 'on a worker thread (large packages)' : 'on the main thread (small packages)'}`, function () {
  let dev: Device;
  let pkg: string;
  let deviceKey: openpgp.PrivateKey;
  let sessionKey: openpgp.SessionKey;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    // Random data: stored gzip members, so the package is ~3 MiB and spans several 1 MiB pieces.
    const tree = [...sampleFirmware(), { path: 'opt/blob.bin', content: randomBytes(3 * 1024 * 1024 + 17) }];
    const src = await writeTree(join(dev.dir, 'build', 'fw-1'), tree);
    pkg = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: [dev.deviceFingerprint], recipientKeyFiles: [dev.devicePublicKeyFile], output: join(dev.dir, 'fw.gpg') })).path;
    const keyFile = (await readdir(dev.keyring)).find((n) => n.startsWith('device-') && n.endsWith('.key')) as string;
    deviceKey = await openpgp.readPrivateKey({ armoredKey: await readFile(join(dev.keyring, keyFile), 'utf8') });
    const message = await openpgp.readMessage({ binaryMessage: await readFile(pkg) });
    const [found] = await openpgp.decryptSessionKeys({ message, decryptionKeys: deviceKey });
    sessionKey = { data: found!.data, algorithm: found!.algorithm as openpgp.enums.symmetricNames };
  });

  it('yields exactly the signed message OpenPGP.js decrypts from the same package, and its MDC holds', async function () {
    const at = findSeipdV1(await readFile(pkg));
    assert.ok(at !== undefined && at > 0, 'fussy pack -e writes PKESK + SEIPDv1');
    const d = decryptSeipd(pkg, at, sessionKey, undefined, { thread });
    const plain = await collect(d.data);
    await d.integrity;
    const signer = (await openpgp.readPrivateKey({ armoredKey: await readFile(dev.signingKeyFile, 'utf8') })).toPublic();
    const ours = await openpgp.verify({ message: await openpgp.readMessage({ binaryMessage: plain }), verificationKeys: signer, expectSigned: true, format: 'binary' });
    const theirs = await openpgp.decrypt({ message: await openpgp.readMessage({ binaryMessage: await readFile(pkg) }), decryptionKeys: deviceKey, verificationKeys: signer, expectSigned: true, format: 'binary' });
    assert.ok(Buffer.from(ours.data as Uint8Array).equals(Buffer.from(theirs.data as Uint8Array)));
    assert.ok((ours.data as Uint8Array).length > 3 * 1024 * 1024);
  });

  it('finds the encrypted data behind the old-format session-key packet GnuPG 2.2 writes, so its packages take this path too', async function () {
    assert.ok(findSeipdV1(await readFile(join(FROZEN, 'signed-encrypted.tar.gz.gpg'))) !== undefined);
    assert.equal(findSeipdV1(await readFile(join(FROZEN, 'signed-zip.tar.gz.gpg'))), undefined, 'a signed-only package has no encrypted data');
    assert.equal(findSeipdV1(await readFile(join(FROZEN, 'signed-armored.tar.gz.asc'))), undefined, 'armor stays with OpenPGP.js');
  });

  it("decrypts what gpg -se writes (8 KiB partial parts, ZIP inside) to the literal data gpg signed", async function () {
    const g = await gpgHome(dev.dir);
    for (const f of [dev.signingKeyFile, dev.devicePublicKeyFile]) assert.equal((await g.gpg(['--import', f])).exitCode, 0);
    const payload = randomBytes(300 * 1024 + 5);
    const made = await g.gpg(['--trust-model', 'always', '--sign', '-e', '-r', dev.deviceFingerprint, '--local-user', 'build@example.com'], payload);
    assert.equal(made.exitCode, 0, made.stderr);
    const file = join(dev.dir, 'gpg-se.gpg');
    await writeFile(file, made.stdout);
    const at = findSeipdV1(made.stdout);
    assert.ok(at !== undefined);
    const [found] = await openpgp.decryptSessionKeys({ message: await openpgp.readMessage({ binaryMessage: made.stdout }), decryptionKeys: deviceKey });
    const d = decryptSeipd(file, at, { data: found!.data, algorithm: found!.algorithm as openpgp.enums.symmetricNames }, undefined, { thread });
    const inner = await openpgp.readMessage({ binaryMessage: webStreamOf(inflateOuterLayer(d.data, 1 << 30, file)) });
    const signer = (await openpgp.readPrivateKey({ armoredKey: await readFile(dev.signingKeyFile, 'utf8') })).toPublic();
    const r = await openpgp.verify({ message: inner, verificationKeys: signer, expectSigned: true, format: 'binary' });
    assert.ok((await collect(r.data as unknown as AsyncIterable<Uint8Array>)).equals(payload));
    await d.integrity;
  });

  it('wrong-session-key: refused at the first block by the prefix check, as DECRYPT_FAILED', async function () {
    const at = findSeipdV1(await readFile(pkg))!;
    const d = decryptSeipd(pkg, at, { data: randomBytes(32), algorithm: 'aes256' }, undefined, { thread });
    await assert.rejects(collect(d.data), (err: unknown) => err instanceof FussyError && err.code === 'DECRYPT_FAILED' && /session key does not decrypt/.test(err.message));
    await assert.rejects(d.integrity);
  });

  it('modified-ciphertext: a flipped byte in the middle is refused by the MDC as BAD_SIGNATURE, after the data it spoiled', async function () {
    const bytes = await readFile(pkg);
    const at = findSeipdV1(bytes)!;
    bytes[Math.floor((at + bytes.length) / 2)]! ^= 0x20;
    const file = join(dev.dir, `flipped-${thread}.gpg`);
    await writeFile(file, bytes);
    const d = decryptSeipd(file, at, sessionKey, undefined, { thread });
    await assert.rejects(collect(d.data), (err: unknown) => err instanceof FussyError && err.code === 'BAD_SIGNATURE' && /modification detected/.test(err.message));
    await assert.rejects(d.integrity, /modification detected/);
  });

  it('appended-bytes: data after the encrypted packet is refused, not ignored', async function () {
    const bytes = Buffer.concat([await readFile(pkg), Buffer.from('trailing')]);
    const file = join(dev.dir, `appended-${thread}.gpg`);
    await writeFile(file, bytes);
    const d = decryptSeipd(file, findSeipdV1(bytes)!, sessionKey, undefined, { thread });
    await assert.rejects(collect(d.data), /8 bytes follow the encrypted data/);
  });

  it('a reader that stops early stops the thread, and the integrity check then fails instead of hanging', async function () {
    const at = findSeipdV1(await readFile(pkg))!;
    const d = decryptSeipd(pkg, at, sessionKey, undefined, { thread });
    for await (const c of d.data) {
      assert.ok(c.length > 0);
      break;
    }
    await assert.rejects(d.integrity, /stopped before the integrity check/);
    const again = decryptSeipd(pkg, at, sessionKey, undefined, { thread });
    again.stop();
    await assert.rejects(again.integrity, /stopped before the integrity check/);
  });
});
