import assert from 'node:assert/strict';
import { connect, type TLSSocket } from 'node:tls';
import { auditLines, call, setup, startChild, writeConfigFile, type Child, type Setup } from '../helpers/fussyd.js';
import { makeTmp } from '../helpers/tmp.js';
import { tlsFixtures } from '../helpers/tls-fixtures.js';

/** A TLS connection with viewer-cn's certificate: the socket once the handshake is done, or the error / close that came first. */
async function open(port: number): Promise<TLSSocket | Error> {
  const f = await tlsFixtures();
  const c = f.clients['viewer-cn'];
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port, ca: f.caPem, cert: c.certPem, key: c.keyPem });
    sock.once('secureConnect', () => resolve(sock));
    sock.once('error', (err) => resolve(err));
    sock.once('close', () => resolve(new Error('closed before the handshake ended')));
  });
}

/** Write `head` (a request without a body) and read until the answer's end or the close: the status line, or null. */
function ask(sock: TLSSocket, head: string): Promise<string | null> {
  return new Promise((resolve) => {
    let got = '';
    sock.on('data', (b: Buffer) => {
      got += b.toString();
      const m = /^HTTP\/1\.1 (\d+)[^]*?\r\n\r\n/.exec(got);
      const len = Number(/content-length: (\d+)/i.exec(got)?.[1] ?? '0');
      if (m !== null && got.length >= m[0].length + len) resolve(got.split('\r\n')[0] ?? null);
    });
    sock.on('error', (err) => resolve(got === '' ? `error ${err.message}` : (got.split('\r\n')[0] ?? null)));
    sock.on('close', () => resolve(got === '' ? null : (got.split('\r\n')[0] ?? null)));
    sock.write(head);
  });
}

const WHOAMI = 'GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n';

describe('fussyd bounds against a real bin/fussyd (max-connections = 2, max-header-bytes = 16K)', function () {
  let d: Child;
  let s: Setup;

  before(async function () {
    s = await setup(await makeTmp('fussyd-bounds-'));
    d = await startChild(['--config', writeConfigFile(s, ['max-connections = 2', 'max-header-bytes = 16K'])]);
  });
  after(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(d.stderr());
    await d.stop();
  });

  it('connection-flood: past max-connections the extra connection is closed at accept (logged), the first ones are still served, and a freed slot is usable again', async function () {
    const first = await open(d.port);
    const second = await open(d.port);
    assert.ok(!(first instanceof Error), String(first));
    assert.ok(!(second instanceof Error), String(second));
    const extra = await open(d.port);
    assert.ok(extra instanceof Error, 'the third connection never completes its handshake');
    await d.waitFor(/"event":"connection-dropped","remote":"127\.0\.0\.1","reason":"max-connections"/);
    assert.match((await ask(first, WHOAMI)) ?? '', /^HTTP\/1\.1 200/);
    assert.match((await ask(second, WHOAMI)) ?? '', /^HTTP\/1\.1 200/);
    const closed = new Promise((resolve) => first.once('close', resolve));
    first.destroy();
    second.destroy();
    await closed;
    // The server counts a close once its side has seen it: a new connection may be dropped until then.
    let again = await open(d.port);
    for (let i = 0; i < 100 && again instanceof Error; i++) {
      await new Promise((r) => setTimeout(r, 50));
      again = await open(d.port);
    }
    assert.ok(!(again instanceof Error), String(again));
    assert.match((await ask(again, WHOAMI)) ?? '', /^HTTP\/1\.1 200/);
    again.destroy();
  });

  it('oversized-header: a request whose headers pass max-header-bytes is answered 431 or closed, never handled; fussyd still serves', async function () {
    const sock = await open(d.port);
    assert.ok(!(sock instanceof Error), String(sock));
    const audited = auditLines(s).length;
    const answer = await ask(sock, `GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    assert.ok(answer === null || /^HTTP\/1\.1 431/.test(answer) || answer.startsWith('error '), String(answer));
    sock.destroy();
    assert.equal(auditLines(s).length, audited, 'no handler saw it: no audit line');
    const f = await tlsFixtures();
    assert.equal((await call(d.port, f.clients['viewer-cn'], 'GET', '/v1/whoami')).status, 200);
  });
});
