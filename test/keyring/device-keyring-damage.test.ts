import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { loadDeviceKeyring } from '../../src/keyring/device-keyring.js';
import { keyboxKeyblocks } from '../../src/keyring/keybox.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { deviceBeside, makeDevice, targetState, type Device } from '../helpers/device.js';
import { gpgGenKey, gpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';

/**
 * A keyring file fussy cannot read is a keyring problem (issue 11): KEY_UNREADABLE, exit 40, naming the
 * file and saying what to do, before anything changes; never an internal error, never skipped.
 */
describe('device keyring: a damaged key file is a setup error naming it', function () {
  let dev: Device;
  let pkg: string;
  let kbx: Buffer;
  let n = 0;

  before(async function () {
    const tmp = await makeTmp();
    dev = await makeDevice(join(tmp, 'dev'), { factory: false });
    pkg = (await pack({ source: await writeTree(join(tmp, 'build', 'fw-1'), [{ path: 'etc/version', content: '1\n' }]), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'fw-1.gpg') })).path;
    const g = await gpgHome(tmp);
    await gpgGenKey(g, 'Other <other@example.com>');
    kbx = await readFile(join(g.home, 'pubring.kbx'));
  });

  /** A device (factory `current`) whose keyring is a copy of the good one plus `name` holding `bytes`. */
  async function deviceWith(name: string, bytes: Buffer | string): Promise<{ d: Device; file: string }> {
    const d = await deviceBeside(dev, `d${n++}`);
    const keyring = join(d.dir, 'keys');
    await execa('cp', ['-a', dev.keyring, keyring]);
    const file = join(keyring, name);
    await writeFile(file, bytes, { mode: 0o644 });
    return { d: { ...d, keyring }, file };
  }

  async function refused(name: string, bytes: Buffer | string, why: RegExp): Promise<void> {
    const { d, file } = await deviceWith(name, bytes);
    await assert.rejects(loadDeviceKeyring(d.keyring), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'KEY_UNREADABLE', err.stack);
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, why);
      return true;
    });
    const before = await targetState(d.target);
    const r = await cli('fussy', ['install', pkg, '-k', d.keyring, '-t', d.target]);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.ok(r.stderr.includes(file), r.stderr);
    assert.doesNotMatch(r.stderr, /internal error/);
    assert.deepEqual(await targetState(d.target), before);
  }

  it('keyring-kbx-truncated: a pubring.kbx cut inside a blob exits 40 naming it (was exit 1)', async function () {
    await refused('pubring.kbx', kbx.subarray(0, kbx.length - 10), /bad length .*truncated or damaged/);
  });

  it('keyring-kbx-truncated-at-blob-header: a pubring.kbx cut a few bytes into its last blob exits 40 (was read as if whole)', async function () {
    assert.equal(kbx.readUInt32BE(0), 32); // the header blob alone is a valid, empty keybox
    const whole = kbx.subarray(0, 32);
    await refused('pubring.kbx', Buffer.concat([whole, kbx.subarray(32, 40)]), /8 bytes that are not a whole blob/);
  });

  it('keyring-kbx-garbage: a pubring.kbx of garbage exits 40 naming it (was silently skipped)', async function () {
    await refused('pubring.kbx', Buffer.from('this is not a keybox, nor any key\n'.repeat(20)), /holds no readable OpenPGP key/);
  });

  it('keyring-key-file-garbage: an .asc that holds no key exits 40 naming it', async function () {
    await refused('extra.asc', '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64 at all\n-----END PGP PUBLIC KEY BLOCK-----\n', /holds no readable OpenPGP key/);
  });

  it('keyring-kbx-bad-keyblock: a keyblock OpenPGP.js cannot parse in a well-formed keybox is not trusted, and install says so every time', async function () {
    const bad = Buffer.from(kbx);
    const block = keyboxKeyblocks(bad, 'pubring.kbx')[0] as Buffer;
    block.fill(0xff); // a view into `bad`: the keyblock's bytes are garbage, the blob lengths intact
    const { d } = await deviceWith('pubring.kbx', bad);
    const ring = await loadDeviceKeyring(d.keyring);
    assert.equal(ring.unreadable.length, 1);
    assert.match(ring.unreadable[0] as string, /pubring\.kbx \(keyblock 1\)/);
    // Not a refusal of every install (a Fussy device's GnuPG home may hold v3 keys): said on stderr.
    const r = await cli('fussy', ['install', pkg, '-k', d.keyring, '-t', d.target]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /pubring\.kbx \(keyblock 1\).*that key is not trusted/);
  });

  it('an empty pubring.gpg (as gpg leaves a new one) holds no keys and is no error', async function () {
    const { d } = await deviceWith('pubring.gpg', '');
    const ring = await loadDeviceKeyring(d.keyring);
    assert.equal(ring.signers.length, 1);
    const r = await cli('fussy', ['install', pkg, '-k', d.keyring, '-t', d.target]);
    assert.equal(r.exitCode, 0, r.stderr);
  });
});
