import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { tlsFixtures, type ClientCn } from '../helpers/tls-fixtures.js';
import { auditLines, call, fingerprintOf, setup, startInProcess, useInProcess } from '../helpers/fussyd.js';
import { makeTmp } from '../helpers/tmp.js';

type Who = 'stranger' | 'viewer' | 'operator' | 'admin';
const CN: Record<Who, ClientCn> = { stranger: 'stranger-cn', viewer: 'viewer-cn', operator: 'operator-cn', admin: 'admin-cn' };

/** docs/daemon.md's table: each request and the least role that may make it. */
const REQUESTS: Array<{ action: string; method: string; path: (who: Who) => string; body?: string; type?: string; least: Who }> = [
  { action: 'whoami', method: 'GET', path: () => '/v1/whoami', least: 'stranger' },
  { action: 'status', method: 'GET', path: () => '/v1/status', least: 'viewer' },
  { action: 'data.ls', method: 'GET', path: () => '/v1/data', least: 'viewer' },
  { action: 'data.get', method: 'GET', path: () => '/v1/data/seed', least: 'viewer' },
  { action: 'data.put', method: 'PUT', path: (w) => `/v1/data/new-${w}`, body: 'x', least: 'operator' },
  { action: 'data.mv', method: 'POST', path: (w) => `/v1/data/mv-${w}/move`, body: '{"to":"moved-x"}', type: 'application/json', least: 'operator' },
  { action: 'data.rm', method: 'DELETE', path: (w) => `/v1/data/rm-${w}`, least: 'operator' },
];
const RANK: Who[] = ['stranger', 'viewer', 'operator', 'admin'];

describe('fussyd: roles nest admin > operator > viewer, default deny, every decision audited', function () {
  const c = useInProcess('fussyd-roles-');
  before(function () {
    writeFileSync(join(c.s.dataDir, 'seed'), 'seed\n');
    for (const w of RANK) {
      writeFileSync(join(c.s.dataDir, `mv-${w}`), 'm');
      writeFileSync(join(c.s.dataDir, `rm-${w}`), 'r');
    }
  });

  for (const who of RANK) {
    it(`${who}: allowed exactly what the table gives its role, denied the rest with ROLE_DENIED (403), each decision audited with CN and fingerprint`, async function () {
      const f = await tlsFixtures();
      const creds = f.clients[CN[who]];
      const fp = await fingerprintOf(creds);
      for (const r of REQUESTS) {
        const path = r.path(who).replace('moved-x', `moved-${who}`);
        const before = auditLines(c.s).length;
        const a = await call(c.port, creds, r.method, path, { body: r.body?.replace('moved-x', `moved-${who}`), type: r.type });
        const allowed = RANK.indexOf(who) >= RANK.indexOf(r.least);
        if (allowed) assert.ok(a.status < 300, `${who} ${r.action}: ${a.status} ${a.body.toString()}`);
        else {
          assert.equal(a.status, 403, `${who} ${r.action}`);
          assert.equal(a.json.error?.code, 'ROLE_DENIED');
        }
        const lines = auditLines(c.s).slice(before);
        assert.equal(lines.length, 1, `${who} ${r.action}: one audit line`);
        const line = lines[0]!;
        assert.equal(line.cn, CN[who]);
        assert.equal(line.fingerprint, fp);
        assert.equal(line.action, r.action);
        assert.equal(line.decision, allowed ? 'allow' : 'deny');
        assert.equal(line.remote, '127.0.0.1');
        if (!allowed) assert.equal(line.reason, 'ROLE_DENIED');
      }
    });
  }

  it('whoami names the certificate and its nested roles', async function () {
    const f = await tlsFixtures();
    const a = await call(c.port, f.clients['operator-cn'], 'GET', '/v1/whoami');
    assert.equal(a.json.cn, 'operator-cn');
    assert.deepEqual(a.json.roles, ['viewer', 'operator']);
    assert.equal(a.json.fingerprint, await fingerprintOf(f.clients['operator-cn']));
  });
});

describe('fussyd: the roles file as it is now decides every request', function () {
  it('role-removed-keepalive: a CN taken out of the roles file is denied on its next request over the same kept-alive connection', async function () {
    const f = await tlsFixtures();
    const s = await setup(await makeTmp('fussyd-roles-'));
    const { daemon, port, log } = await startInProcess(s);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await call(port, f.clients['viewer-cn'], 'GET', '/v1/data', { agent })).status, 200);
      writeFileSync(s.rolesFile, JSON.stringify({ admin: ['admin-cn'] }));
      await waitUntil(() => log.some((e) => e.event === 'roles-reloaded'));
      const a = await call(port, f.clients['viewer-cn'], 'GET', '/v1/data', { agent });
      assert.equal(a.status, 403);
      assert.equal(a.json.error?.code, 'ROLE_DENIED');
      assert.equal(Object.keys(agent.sockets).length + Object.keys(agent.freeSockets).length, 1, 'one connection throughout');
    } finally {
      agent.destroy();
      await daemon.close();
    }
  });

  it('malformed-roles-file: a roles file that does not parse keeps the previous roles, and says so in the log', async function () {
    const f = await tlsFixtures();
    const s = await setup(await makeTmp('fussyd-roles-'));
    const { daemon, port, log } = await startInProcess(s);
    try {
      writeFileSync(s.rolesFile, '{"admin": ["admin-cn"], "superuser": ["viewer-cn"]}');
      await waitUntil(() => log.some((e) => e.event === 'roles-kept'));
      assert.equal(log.find((e) => e.event === 'roles-kept')?.error, 'ROLES_INVALID');
      assert.equal((await call(port, f.clients['viewer-cn'], 'GET', '/v1/data')).status, 200, 'the previous roles still hold');
      daemon.reload('SIGHUP');
      assert.equal(log.filter((e) => e.event === 'roles-kept').length >= 2, true);
    } finally {
      await daemon.close();
    }
  });
});

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(cond(), 'condition not reached');
}
