import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, startChild, type Child } from '../helpers/fussyd.js';
import { pkiFixture } from '../helpers/pki.js';
import { makeTmp } from '../helpers/tmp.js';

/**
 * Issue 12: "A device keeps this daemon running all the time: idle RSS under 60 MB." fussyd as a
 * device runs it (the bin/fussyd launcher and its node flags), after one request of each common
 * kind. A bound on memory, not on time; the figures under load are bench/daemon's.
 */
describe('fussyd idle memory (bin/fussyd launcher, fussy pki certificates)', function () {
  let d: Child | undefined;
  after(async function () {
    if (this.currentTest?.state === 'failed' && d !== undefined) process.stderr.write(d.stderr());
    if (d !== undefined && d.child.exitCode === null) await d.stop();
  });

  it('fussyd stays under 60 MB resident once idle after whoami, status, ls, a script put and one exec', async function () {
    const p = await pkiFixture();
    const dir = await makeTmp('fussyd-idle-');
    mkdirSync(join(dir, 'target'));
    writeFileSync(join(dir, 'roles.json'), JSON.stringify({ admin: ['admin'] }));
    const conf = join(dir, 'fussyd.conf');
    writeFileSync(conf, ['listen = 127.0.0.1:0', `cert = ${p.server.cert}`, `key = ${p.server.key}`, `client-ca = ${p.ca}`, `crl = ${p.crl}`, `roles = ${join(dir, 'roles.json')}`, `state-dir = ${join(dir, 'state')}`, `target = ${join(dir, 'target')}`, ''].join('\n'));
    d = await startChild(['--config', conf], { launcher: true });
    const port = d.port;
    const admin = p.clients.admin;
    const req = (method: string, path: string, o: { body?: string; type?: string } = {}) => call(port, admin, method, path, { ...o, ca: p.caPem });
    assert.equal((await req('GET', '/v1/whoami')).status, 200);
    assert.equal((await req('GET', '/v1/status')).status, 200);
    assert.equal((await req('PUT', '/v1/scripts/ok', { body: '#!/bin/sh\necho ok\n' })).status, 201);
    assert.equal((await req('GET', '/v1/scripts')).status, 200);
    const run = await req('POST', '/v1/runs', { body: JSON.stringify({ script: 'ok' }), type: 'application/json' });
    assert.equal(run.status, 200);
    assert.match(run.body.toString(), /"type":"result".*"status":"exited"/);
    await new Promise((r) => setTimeout(r, 1000));
    const status = readFileSync(`/proc/${d.child.pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
    this.test!.title += ` (${(kb / 1024).toFixed(1)} MB)`;
    assert.ok(kb < 60 * 1024, `fussyd's VmRSS is ${kb} kB`);
    // The launcher's node flags leave the log JSON lines for journald (V8 printed a warning of its own there once).
    for (const line of d.stderr().trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
  });
});
