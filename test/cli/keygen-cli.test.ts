import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { cli } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';

describe('fussy keygen signing: never an unprotected key unasked', function () {
  it('without a terminal and without a passphrase source it refuses (exit 2) and writes no key', async function () {
    const dir = await makeTmp();
    const r = await cli('fussy', ['keygen', 'signing', '--name', 'CI Signer', '--secret-key', 'ci.key'], { cwd: dir, env: {} });
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, /no passphrase for the new signing key: there is no terminal to ask on/);
    assert.match(r.stderr, /hint: pass --passphrase-file FILE or set \$FUSSY_PASSPHRASE, or --no-passphrase/);
    assert.deepEqual(await readdir(dir), []);
  });

  it('an empty passphrase from $FUSSY_PASSPHRASE or --passphrase-file is refused too (exit 2)', async function () {
    const dir = await makeTmp();
    const e = await cli('fussy', ['keygen', 'signing', '--name', 'CI Signer', '--secret-key', 'ci.key'], { cwd: dir, env: { FUSSY_PASSPHRASE: '' } });
    assert.equal(e.exitCode, 2, e.stderr);
    assert.match(e.stderr, /the passphrase from \$FUSSY_PASSPHRASE is empty/);
    await writeFile(`${dir}/pass`, '\n');
    const f = await cli('fussy', ['keygen', 'signing', '--name', 'CI Signer', '--secret-key', 'ci.key', '--passphrase-file', 'pass'], { cwd: dir, env: {} });
    assert.equal(f.exitCode, 2, f.stderr);
    assert.match(f.stderr, /the passphrase from pass is empty/);
    assert.deepEqual(await readdir(dir), ['pass']);
  });

  it('--no-passphrase writes an unprotected key and says so; a passphrase source protects it', async function () {
    const dir = await makeTmp();
    const r = await cli('fussy', ['keygen', 'signing', '--name', 'CI Signer', '--secret-key', 'open.key', '--no-passphrase'], { cwd: dir, env: {} });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /secret key: .*open\.key \(NOT passphrase-protected\)/);
    assert.equal((await openpgp.readPrivateKey({ armoredKey: await readFile(`${dir}/open.key`, 'utf8') })).isDecrypted(), true);
    const p = await cli('fussy', ['keygen', 'signing', '--name', 'CI Signer', '--secret-key', 'locked.key', '--public-key', 'locked.pub.asc'], { cwd: dir, env: { FUSSY_PASSPHRASE: 'correct horse' } });
    assert.equal(p.exitCode, 0, p.stderr);
    assert.match(p.stderr, /locked\.key \(passphrase-protected\)/);
    assert.equal((await openpgp.readPrivateKey({ armoredKey: await readFile(`${dir}/locked.key`, 'utf8') })).isDecrypted(), false);
  });
});
