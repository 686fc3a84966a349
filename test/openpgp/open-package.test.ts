import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FussyError } from '../../src/errors.js';
import { loadDeviceKeyring, type DeviceKeyring } from '../../src/keyring/device-keyring.js';
import { openPackage, type OpenedPackage } from '../../src/openpgp/open-package.js';
import { pack } from '../../src/pack/pack.js';
import { makeDevice, type Device } from '../helpers/device.js';
import { gpgGenKey, gpgHome, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

const NOW = new Date('2026-12-02T00:00:00Z');
const OPTS = { maxBytes: 64 * 1024 * 1024, now: NOW };

async function readAll(p: OpenedPackage): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  try {
    for await (const c of p.data) parts.push(c);
  } finally {
    p.close();
  }
  return Buffer.concat(parts);
}

/** The packets `gpg --list-packets` shows ("literal", "onepass_sig", ...; it stops listing at the literal data). */
async function listedPackets(g: GpgHome, file: string): Promise<string[]> {
  const r = await g.gpg(['--list-packets', file]);
  return r.stdout.toString().split('\n').filter((l) => l.startsWith(':')).map((l) => (/^:([a-z_ -]+?) packet/.exec(l)?.[1] ?? l).replace(/ data$/, ''));
}

/**
 * openPackage (openpgp/open-package.ts) on real packages: made by gpg the way the original Fussy
 * made them (`tar czf - | gpg --sign [-e]`, compressed or not, armored), and by fussy pack.
 */
describe('openPackage: real packages from gpg and fussy pack, opened and verified', function () {
  let dev: Device;
  let ring: DeviceKeyring;
  let g: GpgHome;
  let buildFpr: string;
  let payload: Buffer;
  let payloadFile: string;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    ring = await loadDeviceKeyring(dev.keyring);
    buildFpr = dev.signingKey.getFingerprint().toUpperCase();
    g = await gpgHome(dev.dir);
    // gpg holds both keys too: it signs as the build server, and reads back what fussy pack -e made.
    const deviceSecret = join(dev.keyring, (await readdir(dev.keyring)).find((n) => n.startsWith('device-') && n.endsWith('.key')) as string);
    for (const key of [dev.signingKeyFile, deviceSecret]) {
      const r = await g.gpg(['--import', key]);
      assert.equal(r.exitCode, 0, r.stderr);
    }
    // A gzip payload large enough for gpg to write many 8 KiB pieces from a pipe, and to compress.
    const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i} ${(i * 2654435761) >>> 0}\n`).join(''));
    payload = gzipSync(text, { level: 1 });
    payloadFile = join(dev.dir, 'payload.tar.gz');
    await writeFile(payloadFile, payload);
  });

  /** gpg with the build key, from stdin (a pipe, as `tar czf - | gpg --sign`) into `name`. */
  async function gpgMake(name: string, args: string[]): Promise<string> {
    const out = join(dev.dir, name);
    const r = await g.gpg(['--trust-model', 'always', '--local-user', buildFpr, '--output', out, ...args], payload);
    assert.equal(r.exitCode, 0, r.stderr);
    return out;
  }

  const kinds: Array<{ name: string; args: string[]; encrypted: boolean; packets: string[] }> = [
    { name: 'gpg --sign (ZIP-compressed, the original pipeline)', args: ['--sign'], encrypted: false, packets: ['compressed'] },
    { name: 'gpg --sign --compress-algo zlib', args: ['--sign', '--compress-algo', 'zlib'], encrypted: false, packets: ['compressed'] },
    { name: 'gpg --sign -z 0 (uncompressed)', args: ['--sign', '-z', '0'], encrypted: false, packets: ['onepass_sig', 'literal'] },
    { name: 'gpg --sign --armor', args: ['--sign', '--armor'], encrypted: false, packets: ['compressed'] },
    { name: 'gpg --sign -e (compressed, then encrypted for the device)', args: ['--sign', '--encrypt', '--recipient', 'device@example.com'], encrypted: true, packets: ['pubkey enc', 'encrypted'] },
    { name: 'gpg --sign -e -z 0', args: ['--sign', '--encrypt', '--recipient', 'device@example.com', '-z', '0'], encrypted: true, packets: ['pubkey enc', 'encrypted'] },
    { name: 'gpg --sign -e --armor', args: ['--sign', '--encrypt', '--recipient', 'device@example.com', '--armor'], encrypted: true, packets: ['pubkey enc', 'encrypted'] },
  ];
  for (const k of kinds) {
    it(`${k.name}: the payload comes out byte for byte, signed by the build key${k.encrypted ? ', decrypted' : ''}`, async function () {
      const file = await gpgMake(`${k.name.replace(/\W+/g, '-')}.gpg`, k.args);
      if (!k.args.includes('--armor')) {
        const listed = await listedPackets(g, file);
        assert.deepEqual(listed.filter((p) => !/^(pubkey enc|encrypted|compressed|onepass_sig|literal|signature)/.test(p)), [], `only known packets: ${listed.join(', ')}`);
        assert.ok(k.packets.every((p) => listed.some((l) => l.startsWith(p))), `${file}: ${listed.join(', ')}`);
      }
      const p = await openPackage(file, ring, OPTS);
      assert.equal(p.encrypted, k.encrypted);
      assert.ok((await readAll(p)).equals(payload));
      assert.deepEqual(await p.verdict(), { signers: [buildFpr] });
    });
  }

  for (const encrypted of [false, true]) {
    it(`fussy pack${encrypted ? ' -e' : ''}: the tar.gz it signed comes out, and the verdict names the signer`, async function () {
      const src = await writeTree(join(dev.dir, `tree-${encrypted}`, 'firmware-1'), sampleFirmware());
      const out = join(dev.dir, `fussy-pack-${encrypted}.tar.gz.gpg`);
      const r = await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: out, ...(encrypted ? { recipients: [dev.deviceFingerprint], recipientKeyFiles: [dev.devicePublicKeyFile] } : {}) });
      const listed = await listedPackets(g, r.path);
      assert.deepEqual(listed.slice(0, 2), encrypted ? ['pubkey enc', 'encrypted'] : ['onepass_sig', 'literal']);
      const p = await openPackage(r.path, ring, OPTS);
      assert.equal(p.encrypted, encrypted);
      const data = await readAll(p);
      assert.deepEqual([data[0], data[1]], [0x1f, 0x8b], 'gzip');
      const decrypted = await g.gpg(['--trust-model', 'always', '--decrypt', r.path]);
      assert.equal(decrypted.exitCode, 0, decrypted.stderr);
      assert.ok(data.equals(decrypted.stdout), 'the same bytes gpg reads out of it');
      assert.deepEqual(await p.verdict(), { signers: [buildFpr] });
    });
  }

  it('the `read` path is what is read, the package name what messages say (a spooled pipe)', async function () {
    const file = await gpgMake('read-path.gpg', ['--sign', '-z', '0']);
    const p = await openPackage('/named/in/messages.gpg', ring, { ...OPTS, read: file });
    assert.ok((await readAll(p)).equals(payload));
    assert.deepEqual(await p.verdict(), { signers: [buildFpr] });
    await assert.rejects(openPackage(join(dev.dir, 'missing.gpg'), ring, OPTS), { code: 'PACKAGE_UNREADABLE', message: /cannot read package .*missing\.gpg: ENOENT/ });
  });

  describe('refusals, named after the package an attacker or a mistake would hand over', function () {
    const refused = async (file: string, code: string, message: RegExp): Promise<void> => {
      const err = await (async () => {
        const p = await openPackage(file, ring, OPTS);
        await readAll(p);
        await p.verdict();
      })().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof FussyError, `refused: ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.match(err.message, message);
    };

    it('unsigned-encrypted-package: gpg -e for the device without --sign (anyone can: the device key is public)', async function () {
      await refused(await gpgMake('encrypt-only.gpg', ['--encrypt', '--recipient', 'device@example.com']), 'BAD_SIGNATURE', /encrypt-only\.gpg is not signed/);
    });

    it('unsigned-literal-package: gpg --store (literal data, no signature)', async function () {
      await refused(await gpgMake('store.gpg', ['--store', '-z', '0']), 'BAD_SIGNATURE', /store\.gpg is not signed/);
    });

    it('signed-by-foreign-key: signed by a gpg key the keyring does not hold, named by its key id', async function () {
      const other = await gpgHome(dev.dir, join(dev.dir, 'other-gnupg'));
      const fpr = await gpgGenKey(other, 'Mallory <mallory@example.com>');
      const out = join(dev.dir, 'foreign.gpg');
      const r = await other.gpg(['--sign', '-z', '0', '--output', out], payload);
      assert.equal(r.exitCode, 0, r.stderr);
      await refused(out, 'BAD_SIGNATURE', new RegExp(`foreign\\.gpg is signed by ${fpr.slice(-16)}, which is not in keyring`));
    });

    it('plain-tar-gz: a .tar.gz handed over unsigned', async function () {
      await refused(payloadFile, 'BAD_SIGNATURE', /payload\.tar\.gz is a plain gzip file \(\.tar\.gz\), not a signed package/);
    });

    it('tampered-literal-data: one byte of gpg --sign -z 0 content flipped is refused by the verdict after the stream', async function () {
      const file = await gpgMake('tampered.gpg', ['--sign', '-z', '0']);
      const b = await readFile(file);
      const at = Math.floor(b.length / 2);
      b[at] = (b[at] as number) ^ 0x01;
      await writeFile(file, b);
      await refused(file, 'BAD_SIGNATURE', /tampered\.gpg(: signature check failed| failed verification)/);
    });

    it('tampered-encrypted-data: one byte of gpg --sign -e ciphertext flipped (the MDC)', async function () {
      const file = await gpgMake('tampered-enc.gpg', ['--sign', '--encrypt', '--recipient', 'device@example.com', '-z', '0']);
      const b = await readFile(file);
      b[b.length - 100] = (b[b.length - 100] as number) ^ 0x01;
      await writeFile(file, b);
      const err = await (async () => {
        const p = await openPackage(file, ring, OPTS);
        await readAll(p);
        await p.verdict();
      })().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof FussyError && ['BAD_SIGNATURE', 'DECRYPT_FAILED'].includes(err.code), String(err));
      assert.match(err.message, /tampered-enc\.gpg/);
    });

    it('truncated-package: gpg --sign -z 0 cut short inside the literal data', async function () {
      const file = await gpgMake('cut.gpg', ['--sign', '-z', '0']);
      const b = await readFile(file);
      await writeFile(file, b.subarray(0, Math.floor(b.length * 0.6)));
      await refused(file, 'BAD_SIGNATURE', /cut\.gpg: the signed data ends in the middle of a packet \(truncated\)/);
    });

    it('encrypted-for-another-device: gpg --sign -e for a key the keyring has no secret for', async function () {
      const other = await gpgHome(dev.dir, join(dev.dir, 'other-device-gnupg'));
      const fpr = await gpgGenKey(other, 'Other Device <other@example.com>');
      const exported = await other.gpg(['--export', fpr]);
      await g.gpg(['--import'], exported.stdout);
      await refused(await gpgMake('for-other.gpg', ['--sign', '--encrypt', '--recipient', fpr]), 'DECRYPT_FAILED', /for-other\.gpg is encrypted for key [0-9A-F]{16}, and keyring .* has no matching secret key/);
    });
  });
});
