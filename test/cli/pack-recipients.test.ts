import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';
import { deviceKey, signingKey } from '../helpers/keys.js';

describe('fussy pack: a recipient file is not a recipient', function () {
  it('--recipient-key FILE without -e is a usage error (exit 2) and no package is written', async function () {
    const dir = await makeTmp();
    const src = await writeTree(join(dir, 'fw-1'), sampleFirmware());
    const signer = await signingKey(dir, 'Build');
    const device = await deviceKey(dir, 'Device');
    const out = join(dir, 'out');
    for (const launcher of [['fussy', 'pack', src], ['fussy-pack', '-r', src]]) {
      const [bin, ...args] = launcher as [string, ...string[]];
      const r = await cli(bin, [...args, '--signing-key', signer.secretKeyFile, '--recipient-key', device.publicKeyFile, '-o', `${out}/`], { cwd: dir });
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, /--recipient-key .*\.pub\.asc given without -e\/--encrypt-for: the package would not be encrypted/);
      assert.deepEqual(await readdir(out).catch(() => []), [], 'a package was written');
    }
    // With -e it encrypts, as before.
    const ok = await cli('fussy', ['pack', src, '--signing-key', signer.secretKeyFile, '--recipient-key', device.publicKeyFile, '-e', device.fingerprint, '-o', `${out}/`, '--json'], { cwd: dir });
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.deepEqual((JSON.parse(ok.stdout) as { encryptedFor: string[] }).encryptedFor, [device.fingerprint]);
  });
});
