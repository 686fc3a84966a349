import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { gpgHeldKeys } from '../../src/keyring/gpg-held-keys.js';
import { readGnupgHome } from '../../src/keyring/load-keys.js';
import { fingerprintOf, gpgGenKey, gpgHome, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';

/** What gpg itself says: primary fingerprints (lower-case) of `gpg --list-secret-keys`. */
async function gpgSaysHeld(g: GpgHome): Promise<string[]> {
  const r = await g.gpg(['--with-colons', '--list-secret-keys']);
  const lines = r.stdout.toString().split('\n');
  return lines.flatMap((l, i) => (l.startsWith('sec:') ? [(lines[i + 1] ?? '').split(':')[9]?.toLowerCase() ?? ''] : [])).sort();
}

/**
 * A GnuPG home as old and new Fussy devices have them: the device key (Ed25519 + Cv25519, gpg's
 * defaults since 2.3), an RSA key behind a passphrase, a NIST P-256 key, and a build key whose
 * public half only was imported. `agentConf`: lines for gpg-agent.conf before any key is made.
 */
async function home(agentConf: string): Promise<{ g: GpgHome; keys: openpgp.Key[] }> {
  const dir = await makeTmp();
  const g = await gpgHome(dir);
  await writeFile(join(g.home, 'gpg-agent.conf'), agentConf);
  await gpgGenKey(g, 'Device <device@example.com>');
  for (const [uid, algo, pass] of [['Rsa <rsa@example.com>', 'rsa2048', 'secret'], ['Nist <nist@example.com>', 'nistp256', '']] as const) {
    const r = await g.gpg(['--passphrase', pass, '--quick-gen-key', uid, algo, 'default', 'never']);
    assert.equal(r.exitCode, 0, r.stderr);
  }
  const build = await gpgHome(dir, join(dir, 'build'));
  await gpgGenKey(build, 'Build <build@example.com>');
  await g.gpg(['--import'], (await build.gpg(['--export', await fingerprintOf(build, 'build@example.com')])).stdout);
  return { g, keys: (await readGnupgHome(g.home)).keys.map((k) => k.key) };
}

describe('gpgHeldKeys: the keys of a GnuPG home whose secret gpg holds', function () {
  for (const [format, conf] of [['extended key format (gpg 2.2.20+)', 'enable-extended-key-format\n'], ['canonical S-expressions (gpg 2.1, older 2.2)', 'disable-extended-key-format\n']] as const) {
    it(`agrees with gpg --list-secret-keys, key files in ${format}`, async function () {
      const { g, keys } = await home(conf);
      const files = await readdir(join(g.home, 'private-keys-v1.d'));
      assert.equal(files.length, 4);
      const held = await gpgHeldKeys(g.home);
      assert.equal(keys.length, 4);
      assert.deepEqual(keys.filter(held).map((k) => k.getFingerprint()).sort(), await gpgSaysHeld(g));
      assert.equal(keys.filter(held).length, 3);
    });
  }

  it('asks gpg when a key file is one it cannot read, and still gets the same answer', async function () {
    const { g, keys } = await home('');
    await writeFile(join(g.home, 'private-keys-v1.d', '0000000000000000000000000000000000000000.key'), 'Key: (private-key (unknown-algo))\n');
    const held = await gpgHeldKeys(g.home);
    assert.deepEqual(keys.filter(held).map((k) => k.getFingerprint()).sort(), await gpgSaysHeld(g));
  });
});
