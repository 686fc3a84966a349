import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';

describe('fussy pki (the CLI)', function () {
  it('init, issue --server/--client, ls, revoke by serial and crl; the CA dir from $FUSSY_CA_DIR or --ca-dir', async function () {
    const root = await makeTmp();
    const ca = join(root, 'ca');
    const env = { FUSSY_CA_DIR: ca, PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const init = await cli('fussy', ['pki', 'init'], { cwd: root, env });
    assert.equal(init.exitCode, 0, init.stderr);
    assert.equal(init.lastLine, ca);
    const again = await cli('fussy', ['pki', 'init', ca], { cwd: root, env });
    assert.equal(again.exitCode, 2);
    assert.match(again.stderr, /already holds a CA; nothing was changed/);

    const server = await cli('fussy', ['pki', 'issue', '--server', 'unit-17.example', '--san', '192.0.2.17', '--out', 'unit17'], { cwd: root, env });
    assert.equal(server.exitCode, 0, server.stderr);
    assert.deepEqual(readdirSync(join(root, 'unit17')).sort(), ['ca.crt', 'unit-17.example.crt', 'unit-17.example.key']);
    assert.equal((statSync(join(root, 'unit17', 'unit-17.example.key')).mode & 0o777).toString(8), '600');
    const client = await cli('fussy', ['pki', 'issue', '--client', 'alice', '--json', '--ca-dir', ca], { cwd: root, env: { PATH: env.PATH } });
    assert.equal(client.exitCode, 0, client.stderr);
    const issued = JSON.parse(client.stdout) as { ok: boolean; serial: string; key: string };
    assert.equal(issued.key, join(ca, 'issued', 'alice', 'alice.key'));

    const ls = await cli('fussy', ['pki', 'ls', '--json'], { cwd: root, env });
    const list = JSON.parse(ls.stdout) as { certificates: Array<{ name: string; kind: string; status: string; sans: string[] }> };
    assert.deepEqual(list.certificates.map((c) => [c.name, c.kind, c.status, c.sans]), [['unit-17.example', 'server', 'valid', ['unit-17.example', '192.0.2.17']], ['alice', 'client', 'valid', []]]);
    const human = await cli('fussy', ['pki', 'ls'], { cwd: root, env });
    assert.match(human.stdout, new RegExp(`${issued.serial} +client +valid +\\d{4}-\\d\\d-\\d\\d +alice`));

    const revoke = await cli('fussy', ['pki', 'revoke', issued.serial.toLowerCase()], { cwd: root, env });
    assert.equal(revoke.exitCode, 0, revoke.stderr);
    assert.match(revoke.stderr, new RegExp(`revoked alice \\(serial ${issued.serial}\\)`));
    const twice = await cli('fussy', ['pki', 'revoke', 'alice'], { cwd: root, env });
    assert.equal(twice.exitCode, 2);
    assert.match(twice.stderr, /no valid certificate has the CN "alice" \(it is revoked already\)/);
    const crl = await cli('fussy', ['pki', 'crl', '--days', '7', '--json'], { cwd: root, env });
    assert.equal(crl.exitCode, 0, crl.stderr);
    assert.equal((JSON.parse(crl.stdout) as { crl: string }).crl, join(ca, 'ca.crl'));
  });

  it('usage errors exit 2; a missing CA exits 40', async function () {
    const root = await makeTmp();
    const env = { FUSSY_CA_DIR: join(root, 'none'), PATH: process.env.PATH ?? '/usr/bin:/bin' };
    assert.equal((await cli('fussy', ['pki', 'issue', '--client', 'a', '--server', 'b'], { cwd: root, env })).exitCode, 2);
    const bad = await cli('fussy', ['pki', 'issue', '--client', '../x'], { cwd: root, env });
    assert.equal(bad.exitCode, 2);
    const missing = await cli('fussy', ['pki', 'ls'], { cwd: root, env });
    assert.equal(missing.exitCode, 40);
    assert.match(missing.stderr, /is not a CA made by fussy pki init/);
    assert.deepEqual(readdirSync(root), []);
  });
});
