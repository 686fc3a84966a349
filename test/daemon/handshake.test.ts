import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { tlsFixtures, type Creds } from '../helpers/tls-fixtures.js';
import { auditLines, call, setup, startChild, startInProcess, writeConfigFile, type Child, type Setup } from '../helpers/fussyd.js';
import { makeTmp } from '../helpers/tmp.js';

/** Whether a request with these credentials fails before any answer (the handshake refused it). */
async function refusedAtHandshake(port: number, creds: Creds | undefined, ca?: Buffer): Promise<boolean> {
  try {
    await call(port, creds, 'GET', '/v1/whoami', { ca });
    return false;
  } catch (err) {
    assert.ok(err instanceof Error);
    return true;
  }
}

describe('fussyd: a client the TLS handshake refuses never reaches a handler (real bin/fussyd)', function () {
  let s: Setup;
  let d: Child;

  before(async function () {
    s = await setup(await makeTmp('fussyd-hs-'));
    d = await startChild(['--config', writeConfigFile(s)]);
  });
  after(async function () {
    await d.stop();
  });

  it('no-client-certificate: refused at the handshake, logged with the remote address, no audit allow', async function () {
    assert.ok(await refusedAtHandshake(d.port, undefined));
    await d.waitFor(/"event":"tls-refused","remote":"127\.0\.0\.1:\d+"/);
  });

  it('other-ca-same-cn: a rogue CA\'s certificate with CN admin-cn is refused at the handshake', async function () {
    const f = await tlsFixtures();
    assert.ok(await refusedAtHandshake(d.port, f.rogueAdmin));
  });

  it('expired-client-certificate: refused at the handshake', async function () {
    const f = await tlsFixtures();
    assert.ok(await refusedAtHandshake(d.port, f.expired));
  });

  it('revoked-client-certificate: a serial in the CRL is refused at the handshake', async function () {
    const f = await tlsFixtures();
    assert.ok(await refusedAtHandshake(d.port, f.revoked));
  });

  it('server-certificate-as-client: a certificate of the client CA with serverAuth-only EKU (the device\'s own) is refused at the handshake', async function () {
    const f = await tlsFixtures();
    const before = (d.stderr().match(/"event":"tls-refused"/g) ?? []).length;
    // Same CA, valid, not revoked: only its extendedKeyUsage (no clientAuth) can refuse it.
    assert.ok(await refusedAtHandshake(d.port, f.server));
    await d.waitFor(new RegExp(`("event":"tls-refused"[^]*){${before + 1}}`));
  });

  it('none of the refused clients has an audit line, and a valid one is allowed', async function () {
    const f = await tlsFixtures();
    const ok = await call(d.port, f.clients['viewer-cn'], 'GET', '/v1/whoami');
    assert.equal(ok.status, 200);
    const lines = auditLines(s);
    assert.deepEqual(lines.map((l) => [l.cn, l.decision]), [['viewer-cn', 'allow']]);
    assert.ok((d.stderr().match(/"event":"tls-refused"/g) ?? []).length >= 4, d.stderr());
  });

  it('handshake-refusal-log-flood: 40 more clients without a certificate leave at most 20 tls-refused lines a minute in the log; fussyd still serves', async function () {
    for (let i = 0; i < 40; i++) assert.ok(await refusedAtHandshake(d.port, undefined));
    const f = await tlsFixtures();
    assert.equal((await call(d.port, f.clients['viewer-cn'], 'GET', '/v1/whoami')).status, 200);
    const lines = (d.stderr().match(/"event":"tls-refused"/g) ?? []).length;
    assert.ok(lines <= 20, `${lines} tls-refused lines`);
    assert.ok(lines >= 5, 'the first refusals were logged');
  });

  it('tls-renegotiation: a client asking to renegotiate (TLS 1.2) is refused and loses the connection, with no request after it served; fussyd still serves', async function () {
    const f = await tlsFixtures();
    const v = f.clients['viewer-cn'];
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: d.port, ca: f.caPem, cert: v.certPem, key: v.keyPem, maxVersion: 'TLSv1.2' }, () => resolve(sock));
      sock.on('error', reject);
    });
    socket.on('error', () => undefined); // the daemon ends the connection; the answers below say so
    assert.match((await ask(socket, '/v1/whoami')) ?? '', /^HTTP\/1\.1 200/);
    const renegotiated = await new Promise<boolean>((resolve) => {
      const started = socket.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err === null || err === undefined));
      if (!started) resolve(false);
      socket.once('close', () => resolve(false));
    });
    assert.equal(renegotiated, false, 'the renegotiation completed');
    assert.equal(await ask(socket, '/v1/whoami'), null, 'the connection still served after the renegotiation attempt');
    socket.destroy();
    assert.equal((await call(d.port, v, 'GET', '/v1/whoami')).status, 200);
  });
});

describe('fussyd: refused handshakes past the log limit', function () {
  it('handshake-refusal-log-flood at stop: the count of refusals not yet logged is written when fussyd stops, not lost with the window', async function () {
    const { daemon, port, log } = await startInProcess(await setup(await makeTmp('fussyd-hs-stop-')));
    try {
      for (let i = 0; i < 25; i++) assert.ok(await refusedAtHandshake(port, undefined));
    } finally {
      await daemon.close();
    }
    assert.equal(log.filter((e) => e.event === 'tls-refused').length, 20);
    assert.deepEqual(log.filter((e) => e.event === 'tls-refused-not-logged').map((e) => e.count), [5]);
  });
});

/** Send one keep-alive request on `socket` and read its answer (status line, or null when the connection closed). */
function ask(socket: TLSSocket, path: string): Promise<string | null> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (b: Buffer): void => {
      got += b.toString();
      const m = /^HTTP\/1\.1 (\d+)[^]*?\r\n\r\n/.exec(got);
      const len = Number(/content-length: (\d+)/i.exec(got)?.[1] ?? '-1');
      if (m !== null && got.length >= m[0].length + len) {
        cleanup();
        resolve(got);
      }
    };
    const onClose = (): void => {
      cleanup();
      resolve(got === '' ? null : got);
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
    if (socket.destroyed) onClose();
    else socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  });
}

describe('fussyd: revocation reaches connections that are already open', function () {
  it('revoked-keepalive-connection: after SIGHUP reloads a CRL that now lists it, its next request on the same connection is refused', async function () {
    const f = await tlsFixtures();
    const s = await setup(await makeTmp('fussyd-crl-'), { crl: 'empty' });
    const d = await startChild(['--config', writeConfigFile(s)]);
    try {
      const socket = await new Promise<TLSSocket>((resolve, reject) => {
        const sock = connect({ host: '127.0.0.1', port: d.port, ca: f.caPem, cert: f.revoked.certPem, key: f.revoked.keyPem }, () => resolve(sock));
        sock.on('error', reject);
      });
      socket.on('error', () => undefined); // the daemon may reset it; the answer below says what happened
      const first = await ask(socket, '/v1/whoami');
      assert.match(first ?? '', /^HTTP\/1\.1 200/);
      copyFileSync(f.crl, s.crlFile);
      d.child.kill('SIGHUP');
      await d.waitFor(/"event":"crl-reloaded","why":"SIGHUP","revoked":1/);
      const second = await ask(socket, '/v1/whoami');
      assert.ok(second === null || /^HTTP\/1\.1 403/.test(second), String(second));
      socket.destroy();
      const lines = auditLines(s).filter((l) => l.cn === 'revoked-cn');
      assert.equal(lines.filter((l) => l.decision === 'allow').length, 1, 'only the request before the reload was allowed');
    } finally {
      await d.stop();
    }
  });

  it('revoked-new-connection: after the CRL file changes (watched), a new connection of that certificate fails the handshake', async function () {
    const f = await tlsFixtures();
    const s = await setup(await makeTmp('fussyd-crl-'), { crl: 'empty' });
    const d = await startChild(['--config', writeConfigFile(s)]);
    try {
      assert.equal((await call(d.port, f.revoked, 'GET', '/v1/whoami')).status, 200);
      copyFileSync(f.crl, s.crlFile);
      await d.waitFor(/"event":"crl-reloaded","why":"[^"]*changed","revoked":1/);
      assert.ok(await refusedAtHandshake(d.port, f.revoked));
      assert.equal((await call(d.port, f.clients['viewer-cn'], 'GET', '/v1/whoami')).status, 200);
    } finally {
      await d.stop();
    }
  });
});
