import assert from 'node:assert/strict';
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isKeybox, keyboxKeyblocks } from '../../src/keyring/keybox.js';
import { readGnupgHome } from '../../src/keyring/load-keys.js';
import { gpgGenKey, gpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';

describe('keyring: reading GnuPG homes', function () {
  it('reads every key of a pubring.kbx made by gpg, with the fingerprints gpg lists', async function () {
    const dir = await makeTmp();
    const g = await gpgHome(dir);
    const fprs = [await gpgGenKey(g, 'One <one@example.com>'), await gpgGenKey(g, 'Two <two@example.com>')];
    const kbx = await readFile(join(g.home, 'pubring.kbx'));
    assert.ok(isKeybox(kbx));
    assert.equal(keyboxKeyblocks(kbx, 'pubring.kbx').length, 2);
    const load = await readGnupgHome(g.home);
    assert.deepEqual(load.keys.map((k) => k.key.getFingerprint().toUpperCase()).sort(), fprs.sort());
    assert.deepEqual(load.skipped, []);
  });

  it('rejects a truncated keybox with a message naming the file', async function () {
    const dir = await makeTmp();
    const g = await gpgHome(dir);
    await gpgGenKey(g, 'One <one@example.com>');
    const kbx = await readFile(join(g.home, 'pubring.kbx'));
    assert.throws(() => keyboxKeyblocks(kbx.subarray(0, kbx.length - 10), '/x/pubring.kbx'), /\/x\/pubring.kbx: keybox blob at offset \d+ has a bad length/);
    assert.throws(() => keyboxKeyblocks(kbx.subarray(0, kbx.length - 10), '/x/pubring.kbx'), { code: 'KEY_UNREADABLE' });
  });

  it('reads a legacy pubring.gpg (concatenated transferable keys)', async function () {
    const dir = await makeTmp();
    const g = await gpgHome(dir);
    const fpr = await gpgGenKey(g, 'Legacy <legacy@example.com>');
    const exported = await g.gpg(['--export', fpr]);
    assert.equal(exported.exitCode, 0, exported.stderr);
    assert.ok(exported.stdout.length > 0, `gpg --export printed nothing: ${exported.stderr}`);
    const home2 = join(dir, 'legacy-home');
    await mkdir(home2);
    await writeFile(join(home2, 'pubring.gpg'), exported.stdout);
    const load = await readGnupgHome(home2);
    assert.deepEqual(load.keys.map((k) => k.key.getFingerprint().toUpperCase()), [fpr]);
  });

  it('asks gpg --export when the home keeps keys where fussy cannot read them (keyboxd homes)', async function () {
    // gpg 2.4's keyboxd stores keys in public-keys.d/pubring.db (SQLite). gpg 2.2 is what CI has,
    // so the same situation is built with a home whose keyring lives elsewhere (gpg.conf).
    const dir = await makeTmp();
    const g = await gpgHome(dir);
    const fpr = await gpgGenKey(g, 'Boxed <boxed@example.com>');
    await rename(join(g.home, 'pubring.kbx'), join(g.home, 'elsewhere.kbx'));
    await writeFile(join(g.home, 'gpg.conf'), `no-default-keyring\nkeyring ${join(g.home, 'elsewhere.kbx')}\n`);
    await mkdir(join(g.home, 'public-keys.d'));
    const load = await readGnupgHome(g.home);
    assert.deepEqual(load.keys.map((k) => k.key.getFingerprint().toUpperCase()), [fpr]);
    assert.match(load.keys[0]?.source ?? '', /gpg --export/);
  });
});
