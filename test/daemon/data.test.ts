import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { tlsFixtures } from '../helpers/tls-fixtures.js';
import { auditLines, call, useInProcess } from '../helpers/fussyd.js';

async function open(port: number): Promise<TLSSocket> {
  const f = await tlsFixtures();
  const op = f.clients['operator-cn'];
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: f.caPem, cert: op.certPem, key: op.keyPem }, () => resolve(s));
    s.on('error', reject);
  });
}

/** What the socket receives until the daemon closes it. */
function untilClosed(s: TLSSocket): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    s.on('data', (b: Buffer) => (got += b.toString()));
    s.on('close', () => resolve(got));
  });
}

async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(cond(), what);
}

describe('fussyd: data files are replaced whole or not at all', function () {
  const c = useInProcess('fussyd-data-', { maxDataBytes: 64 * 1024, headersTimeoutMs: 1000, requestTimeoutMs: 3000 });
  beforeEach(function () {
    writeFileSync(join(c.s.dataDir, 'config.txt'), 'old\n');
  });

  it('put-without-overwrite: an existing name is 409 ALREADY_EXISTS and its content is unchanged; with ?overwrite=1 it is replaced', async function () {
    const f = await tlsFixtures();
    const op = f.clients['operator-cn'];
    const a = await call(c.port, op, 'PUT', '/v1/data/config.txt', { body: 'new\n' });
    assert.equal(a.status, 409);
    assert.equal(a.json.error?.code, 'ALREADY_EXISTS');
    assert.equal(readFileSync(join(c.s.dataDir, 'config.txt'), 'utf8'), 'old\n');
    const b = await call(c.port, op, 'PUT', '/v1/data/config.txt?overwrite=1', { body: 'new\n' });
    assert.equal(b.status, 201);
    assert.equal(readFileSync(join(c.s.dataDir, 'config.txt'), 'utf8'), 'new\n');
    assert.deepEqual(readdirSync(c.s.dataDir), ['config.txt'], 'no temp file left');
  });

  it('mv-onto-existing: moving onto an existing name without overwrite is 409 and both files stay; with overwrite it replaces', async function () {
    const f = await tlsFixtures();
    const op = f.clients['operator-cn'];
    writeFileSync(join(c.s.dataDir, 'other'), 'other\n');
    const a = await call(c.port, op, 'POST', '/v1/data/other/move', { body: '{"to":"config.txt"}', type: 'application/json' });
    assert.equal(a.json.error?.code, 'ALREADY_EXISTS');
    assert.equal(readFileSync(join(c.s.dataDir, 'config.txt'), 'utf8'), 'old\n');
    assert.equal(readFileSync(join(c.s.dataDir, 'other'), 'utf8'), 'other\n');
    const b = await call(c.port, op, 'POST', '/v1/data/other/move', { body: '{"to":"config.txt","overwrite":true}', type: 'application/json' });
    assert.equal(b.status, 200);
    assert.deepEqual(readdirSync(c.s.dataDir), ['config.txt']);
    assert.equal(readFileSync(join(c.s.dataDir, 'config.txt'), 'utf8'), 'other\n');
  });

  it('aborted-upload: a client that disconnects mid-body leaves the old content and no temp file', async function () {
    const sock = await open(c.port);
    const closed = untilClosed(sock);
    sock.write('PUT /v1/data/config.txt?overwrite=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 50000\r\n\r\n');
    sock.write(Buffer.alloc(20000, 0x41));
    await eventually(() => readdirSync(c.s.dataDir).length === 2, 'the temp file of the upload appears');
    sock.destroy();
    await closed;
    await eventually(() => readdirSync(c.s.dataDir).length === 1, 'the temp file is removed');
    assert.equal(readFileSync(join(c.s.dataDir, 'config.txt'), 'utf8'), 'old\n');
  });

  it('body-over-cap: a declared Content-Length past max-data-bytes is 413 TOO_LARGE before a byte is stored', async function () {
    const f = await tlsFixtures();
    const a = await call(c.port, f.clients['operator-cn'], 'PUT', '/v1/data/big?overwrite=1', { body: Buffer.alloc(64 * 1024 + 1) });
    assert.equal(a.status, 413);
    assert.equal(a.json.error?.code, 'TOO_LARGE');
    assert.deepEqual(readdirSync(c.s.dataDir), ['config.txt']);
  });

  it('chunked-body-over-cap: a chunked body that grows past max-data-bytes is 413, the old content stays, no temp file', async function () {
    const sock = await open(c.port);
    const closed = untilClosed(sock);
    sock.write('PUT /v1/data/config.txt?overwrite=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    for (let i = 0; i < 10; i++) sock.write(`2000\r\n${'B'.repeat(0x2000)}\r\n`);
    const answer = await closed;
    assert.match(answer, /^HTTP\/1\.1 413/);
    assert.match(answer, /"code":"TOO_LARGE"/);
    await eventually(() => readdirSync(c.s.dataDir).length === 1, 'no temp file');
    assert.equal(readFileSync(join(c.s.dataDir, 'config.txt'), 'utf8'), 'old\n');
  });

  it('json-body-over-cap: a move body past 64 KiB is 413', async function () {
    const f = await tlsFixtures();
    const a = await call(c.port, f.clients['operator-cn'], 'POST', '/v1/data/config.txt/move', { body: JSON.stringify({ to: 'x', pad: 'p'.repeat(70 * 1024) }), type: 'application/json' });
    assert.equal(a.status, 413);
    assert.equal(a.json.error?.code, 'TOO_LARGE');
  });

  it('slow-client-headers: a client that never finishes its headers is answered 408 and disconnected, and reaches no handler', async function () {
    const before = auditLines(c.s).length;
    const sock = await open(c.port);
    const closed = untilClosed(sock);
    sock.write('GET /v1/whoami HTTP/1.1\r\nHost: x\r\n'); // and nothing more
    const answer = await closed;
    assert.ok(answer === '' || /^HTTP\/1\.1 408/.test(answer), answer);
    assert.equal(auditLines(c.s).length, before);
  });

  it('slow-client-body: a body that stops arriving is cut off by request-timeout, and the old content stays', async function () {
    const sock = await open(c.port);
    const closed = untilClosed(sock);
    sock.write('PUT /v1/data/config.txt?overwrite=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nabc');
    await closed;
    await eventually(() => readdirSync(c.s.dataDir).length === 1, 'no temp file');
    assert.equal(readFileSync(join(c.s.dataDir, 'config.txt'), 'utf8'), 'old\n');
  });

  it('untyped-body: a PUT without Content-Type application/octet-stream is refused (415) and stores nothing', async function () {
    const f = await tlsFixtures();
    const a = await call(c.port, f.clients['operator-cn'], 'PUT', '/v1/data/form', { body: 'a=b', type: 'application/x-www-form-urlencoded' });
    assert.equal(a.status, 415);
    assert.equal(a.json.error?.code, 'BAD_REQUEST');
    assert.deepEqual(readdirSync(c.s.dataDir), ['config.txt']);
  });

  it('get, ls and rm: bytes, names with sizes, removal', async function () {
    const f = await tlsFixtures();
    const op = f.clients['operator-cn'];
    assert.equal((await call(c.port, op, 'GET', '/v1/data/config.txt')).body.toString(), 'old\n');
    const ls = await call(c.port, op, 'GET', '/v1/data');
    assert.deepEqual((ls.json.files as Array<{ name: string; size: number }>).map((e) => [e.name, e.size]), [['config.txt', 4]]);
    assert.equal((await call(c.port, op, 'DELETE', '/v1/data/config.txt')).status, 200);
    const gone = await call(c.port, op, 'GET', '/v1/data/config.txt');
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error?.code, 'NOT_FOUND');
  });
});
