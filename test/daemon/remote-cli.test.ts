import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { tlsFixtures, type Creds } from '../helpers/tls-fixtures.js';
import { useChild } from '../helpers/fussyd.js';

describe('fussy remote against a real bin/fussyd: data files, status, whoami and the exit statuses', function () {
  const c = useChild('fussyd-remote-');
  const remote = (creds: Creds, args: string[], env: Record<string, string> = {}) => c.remote(creds, args, env);

  it('put, ls, cat, get -o, mv, rm: the file goes there and back byte for byte', async function () {
    const f = await tlsFixtures();
    const op = f.clients['operator-cn'];
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    writeFileSync(join(c.work, 'blob.bin'), bytes);
    const put = await remote(op, ['put', '--data', 'blob.bin', '--json']);
    assert.equal(put.exitCode, 0, put.stderr);
    assert.deepEqual(JSON.parse(put.stdout), { ok: true, host: '127.0.0.1', name: 'blob.bin', size: bytes.length });
    assert.deepEqual(readFileSync(join(c.s.dataDir, 'blob.bin')), bytes);
    const ls = await remote(op, ['ls', '--data']);
    assert.match(ls.stdout, /300000 .* blob\.bin$/);
    const got = await remote(op, ['get', 'blob.bin', '--data', '-o', 'back.bin']);
    assert.equal(got.exitCode, 0, got.stderr);
    assert.deepEqual(readFileSync(join(c.work, 'back.bin')), bytes);
    writeFileSync(join(c.work, 'small.txt'), 'hello\n');
    assert.equal((await remote(op, ['put', '--data', 'small.txt', '--name', 'greeting'])).exitCode, 0);
    assert.equal((await remote(op, ['cat', 'greeting'])).stdout, 'hello', 'cli() strips the last newline');
    assert.equal((await remote(op, ['mv', 'greeting', 'blob.bin'])).exitCode, 2, 'no overwrite unless asked');
    assert.equal((await remote(op, ['mv', 'greeting', 'blob.bin', '--overwrite'])).exitCode, 0);
    assert.equal((await remote(op, ['cat', 'blob.bin'])).stdout, 'hello');
    assert.equal((await remote(op, ['rm', 'blob.bin', '--data'])).exitCode, 0);
    assert.deepEqual(readdirSync(c.s.dataDir), []);
  });

  it('put-without-overwrite exits 2 with ALREADY_EXISTS and leaves the device file as it was', async function () {
    const f = await tlsFixtures();
    const op = f.clients['operator-cn'];
    writeFileSync(join(c.s.dataDir, 'keep'), 'device\n');
    writeFileSync(join(c.work, 'keep'), 'client\n');
    const r = await remote(op, ['put', '--data', 'keep', '--json']);
    assert.equal(r.exitCode, 2);
    assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'ALREADY_EXISTS');
    assert.equal(readFileSync(join(c.s.dataDir, 'keep'), 'utf8'), 'device\n');
  });

  it('a denied role exits 77 (ROLE_DENIED); a name the device refuses exits 2 (BAD_NAME)', async function () {
    const f = await tlsFixtures();
    const denied = await remote(f.clients['viewer-cn'], ['rm', 'keep', '--data', '--json']);
    assert.equal(denied.exitCode, 77, denied.stdout);
    assert.equal((JSON.parse(denied.stdout) as { error: { code: string } }).error.code, 'ROLE_DENIED');
    const bad = await remote(f.clients['operator-cn'], ['cat', '..']);
    assert.equal(bad.exitCode, 2, bad.stderr);
  });

  it('whoami with no role exits 0 and says so; status needs viewer', async function () {
    const f = await tlsFixtures();
    const who = await remote(f.clients['stranger-cn'], ['whoami']);
    assert.equal(who.exitCode, 0, who.stderr);
    assert.match(who.stdout, /^cn: stranger-cn\n[\s\S]*roles: \(none\)$/);
    const denied = await remote(f.clients['stranger-cn'], ['status']);
    assert.equal(denied.exitCode, 77, denied.stderr);
    const st = await remote(f.clients['viewer-cn'], ['status', '--json']);
    assert.equal(st.exitCode, 0, st.stderr);
    assert.equal((JSON.parse(st.stdout) as { status: { current?: string } }).status.current, undefined);
  });

  it('a certificate the handshake refuses exits 77 (CERT_REFUSED); an unreachable port or an untrusted device exits 69', async function () {
    const f = await tlsFixtures();
    const refused = await remote(f.revoked, ['whoami']);
    assert.equal(refused.exitCode, 77, refused.stderr);
    const closed = await cli('fussy', ['remote', '--host', '127.0.0.1', '--port', '1', '--ca', f.ca, '--cert', f.clients['admin-cn'].cert, '--key', f.clients['admin-cn'].key, 'whoami', '--json']);
    assert.equal(closed.exitCode, 69);
    assert.equal((JSON.parse(closed.stdout) as { error: { code: string } }).error.code, 'UNREACHABLE');
    const untrusted = await cli('fussy', ['remote', '--host', '127.0.0.1', '--port', String(c.d.port), '--ca', f.rogueCa, '--cert', f.clients['admin-cn'].cert, '--key', f.clients['admin-cn'].key, 'whoami', '--json']);
    assert.equal(untrusted.exitCode, 69);
    assert.equal((JSON.parse(untrusted.stdout) as { error: { code: string } }).error.code, 'DEVICE_UNTRUSTED');
  });

  it('defaults come from $XDG_CONFIG_HOME/fussy/remote.json, and flags win over them', async function () {
    const f = await tlsFixtures();
    const xdg = join(c.s.dir, 'xdg');
    mkdirSync(join(xdg, 'fussy'), { recursive: true });
    const admin = f.clients['admin-cn'];
    writeFileSync(join(xdg, 'fussy', 'remote.json'), JSON.stringify({ host: '127.0.0.1', port: c.d.port, cert: f.clients['viewer-cn'].cert, key: f.clients['viewer-cn'].key, ca: f.ca }));
    const fromFile = await cli('fussy', ['remote', 'whoami', '--json'], { cwd: c.work, env: { HOME: c.work, XDG_CONFIG_HOME: xdg } });
    assert.equal(fromFile.exitCode, 0, fromFile.stderr);
    assert.equal((JSON.parse(fromFile.stdout) as { cn: string }).cn, 'viewer-cn');
    const flagsWin = await cli('fussy', ['remote', '--cert', admin.cert, '--key', admin.key, 'whoami', '--json'], { cwd: c.work, env: { HOME: c.work, XDG_CONFIG_HOME: xdg } });
    assert.equal((JSON.parse(flagsWin.stdout) as { cn: string }).cn, 'admin-cn');
  });
});
