import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { pack } from '../../src/index.js';
import { cli, type CliResult } from '../helpers/cli.js';
import { deviceBeside, makeDevice, rawTar, signPayload, targetState, type Device } from '../helpers/device.js';
import { auditLines, call, setup, startChild, writeConfigFile, type Child, type Setup } from '../helpers/fussyd.js';
import { tlsFixtures, type Creds } from '../helpers/tls-fixtures.js';
import { makeTmp } from '../helpers/tmp.js';
import { cuttingRelay, putHalfAndCut, putWithHeaders } from '../helpers/uploads.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

/** A release with hooks that print, and `extra` files (a big random one makes a package worth resuming). */
function release(name: string, o: { preSleep?: number; extra?: SampleFile[] } = {}): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: '.pre-install', content: `#!/bin/sh\necho "pre-install of ${name}"\n${o.preSleep === undefined ? '' : `sleep ${o.preSleep}\n`}`, mode: 0o755 },
    { path: '.post-install', content: `#!/bin/sh\necho "post-install of ${name}"\n`, mode: 0o755 },
    ...(o.extra ?? []),
  ];
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The uploads the daemon holds (file names in STATE/uploads). */
const held = (s: Setup): string[] => (existsSync(join(s.stateDir, 'uploads')) ? readdirSync(join(s.stateDir, 'uploads')) : []);

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));

async function until(ok: () => boolean): Promise<void> {
  for (const end = Date.now() + 60_000; !ok(); await new Promise((r) => setTimeout(r, 50))) if (Date.now() > end) throw new Error('timed out waiting');
}

/** The daemon's log lines of one kind. */
function logged(d: Child, event: string): Array<Record<string, unknown>> {
  return d
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e.event === event);
}

describe('fussy remote install against a real bin/fussyd: upload (resumable) and the install of fussy install', function () {
  let s: Setup;
  let d: Child;
  let dev: Device;
  let tmp: string;
  let work: string;
  const pkgs: Record<string, string> = {};

  before(async function () {
    tmp = await makeTmp('fussy-remote-install-');
    dev = await makeDevice(join(tmp, 'dev'));
    const stranger = await makeDevice(join(tmp, 'stranger'));
    const big: SampleFile = { path: 'lib/blob.bin', content: randomBytes(2 * 1024 * 1024) };
    // Packed in the order the tests install them: a release's sequence is its pack time, and an older one is a downgrade (21).
    const builds: Array<[string, SampleFile[], string]> = [
      ['r1', release('r1'), dev.signingKeyFile],
      ['r4', release('r4'), dev.signingKeyFile],
      ['r2', release('r2', { extra: [big] }), dev.signingKeyFile],
      ['r3', release('r3', { extra: [big] }), dev.signingKeyFile],
      ['slow', release('slow', { preSleep: 3 }), dev.signingKeyFile],
      ['r5', release('r5'), dev.signingKeyFile],
      ['orphan', release('orphan', { preSleep: 2 }), dev.signingKeyFile],
      ['slow2', release('slow2', { preSleep: 5 }), dev.signingKeyFile],
      ['evil', release('evil'), stranger.signingKeyFile],
    ];
    for (const [n, files, key] of builds) {
      pkgs[n] = (await pack({ source: await writeTree(join(tmp, 'build', n), files), tmpDir: tmp, signingKeyFiles: [key], output: join(tmp, `${n}.gpg`) })).path;
    }
    pkgs.dotdot = await signPayload(join(tmp, 'dotdot.gpg'), rawTar([{ path: 'rel/', type: 'Directory' }, { path: 'rel/../../escape', data: 'x' }]), { signingKeys: [dev.signingKey] });
    s = await setup(join(tmp, 'daemon'));
    s.config.target = dev.target;
    d = await startChild(['--config', writeConfigFile(s, [`keyring = ${dev.keyring}`])]);
    work = join(tmp, 'work');
    mkdirSync(work);
  });
  after(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(d.stderr());
    if (d.child.exitCode === null) await d.stop();
  });

  const remote = async (cn: 'operator-cn' | 'viewer-cn' | 'admin-cn', args: string[], port = d.port): Promise<CliResult> => {
    const f = await tlsFixtures();
    const c = f.clients[cn];
    return cli('fussy', ['remote', '--host', '127.0.0.1', '--port', String(port), '--ca', f.ca, '--cert', c.cert, '--key', c.key, ...args], { cwd: work, env: { HOME: work, PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  };
  const op = async (): Promise<Creds> => (await tlsFixtures()).clients['operator-cn'];

  it('installs a package on the device: exit 0, progress and hook lines stream back, current is the new release (on disk and in fussy remote status), the upload is gone', async function () {
    const r = await remote('operator-cn', ['install', pkgs.r1 as string]);
    assert.equal(r.exitCode, 0, r.stderr);
    const current = await readlink(join(dev.target, 'current'));
    assert.match(current, /r1/);
    assert.equal(r.lastLine, join(dev.target, current), 'the release path last on stdout, as fussy install prints it');
    assert.match(r.stderr, /^pre-install: pre-install of r1$/m);
    assert.match(r.stderr, /^post-install: post-install of r1$/m);
    assert.match(r.stderr, new RegExp(`^current -> ${current}$`, 'm'));
    assert.match(r.stderr, /^installed .*r1.*: \d+ files/m);
    const st = await remote('viewer-cn', ['status']);
    assert.equal(st.exitCode, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`^current: ${current}`));
    const js = JSON.parse((await remote('viewer-cn', ['status', '--json'])).stdout) as { status: { current: string } };
    assert.equal(js.status.current, current);
    assert.deepEqual(held(s), []);
    const audit = auditLines(s).filter((l) => l.action.startsWith('upload.'));
    const id = sha256(readFileSync(pkgs.r1 as string));
    assert.deepEqual(audit.map((l) => [l.action, l.resource, l.decision]), [
      ['upload.state', `/v1/uploads/${id}`, 'allow'],
      ['upload.put', `/v1/uploads/${id}`, 'allow'],
      ['upload.install', `/v1/uploads/${id}/install`, 'allow'],
    ]);
  });

  it('--json: progress events as NDJSON on stderr (phases, hook lines) and one result object on stdout', async function () {
    const r = await remote('operator-cn', ['install', pkgs.r4 as string, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; release: string; sha256: string; size: number };
    assert.equal(out.ok, true);
    assert.equal(out.sha256, sha256(readFileSync(pkgs.r4 as string)));
    const events = r.stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { type: string; phase?: string; line?: string });
    assert.ok(events.some((e) => e.type === 'progress' && e.phase === 'upload'));
    assert.ok(events.some((e) => e.type === 'phase' && e.phase === 'activate'));
    assert.ok(events.some((e) => e.type === 'hook' && e.line === 'pre-install of r4'));
    assert.equal(await readlink(join(dev.target, 'current')), out.release);
  });

  for (const [name, status] of [['evil', 20], ['dotdot', 21]] as const) {
    it(`remote-install-${name === 'evil' ? 'stranger-signed' : 'path-traversal'}: exit ${status} as local fussy install gives, the target unchanged, the upload removed, fussyd still serves`, async function () {
      const local = await deviceBeside(dev, `local-${name}`);
      const l = await cli('fussy', ['install', pkgs[name] as string, '-t', local.target, '-k', dev.keyring], { cwd: work });
      assert.equal(l.exitCode, status, l.stderr);
      const before = await targetState(dev.target);
      const r = await remote('operator-cn', ['install', pkgs[name] as string]);
      assert.equal(r.exitCode, l.exitCode, r.stderr);
      assert.deepEqual(await targetState(dev.target), before);
      assert.ok(!existsSync(join(dev.target, '..', 'escape')));
      assert.deepEqual(held(s), []);
      assert.equal((await remote('viewer-cn', ['whoami'])).exitCode, 0, 'fussyd is still up');
    });
  }

  it('a viewer may not upload: exit 77 (ROLE_DENIED), nothing uploaded', async function () {
    const before = await targetState(dev.target);
    const r = await remote('viewer-cn', ['install', pkgs.r2 as string, '--json']);
    assert.equal(r.exitCode, 77, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'ROLE_DENIED');
    assert.deepEqual(held(s), []);
    assert.deepEqual(await targetState(dev.target), before);
  });

  it('an upload cut mid-way is resumed: fussy remote install sends only the rest', async function () {
    const bytes = readFileSync(pkgs.r2 as string);
    const id = sha256(bytes);
    const half = Math.floor(bytes.length / 2);
    await putHalfAndCut(d.port, await op(), id, bytes, half);
    let st = await call(d.port, await op(), 'GET', `/v1/uploads/${id}`);
    for (const until = Date.now() + 10_000; st.json.have !== half && Date.now() < until; await new Promise((r) => setTimeout(r, 50))) st = await call(d.port, await op(), 'GET', `/v1/uploads/${id}`);
    assert.deepEqual(st.json, { size: bytes.length, have: half, verified: false }, 'what arrived was kept, nothing more');
    const r = await remote('operator-cn', ['install', pkgs.r2 as string, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { resumedFrom: number; sent: number; release: string };
    assert.deepEqual([out.resumedFrom, out.sent], [half, bytes.length - half]);
    const puts = logged(d, 'upload').filter((e) => e.sha256 === id);
    assert.deepEqual(puts.map((e) => [e.from, e.have]), [[0, half], [half, bytes.length]], 'the daemon received the first half, then the rest only');
    assert.equal(await readlink(join(dev.target, 'current')), out.release);
  });

  it('a connection cut during fussy remote install is retried from what the device holds', async function () {
    const relay = await cuttingRelay(d.port, 600 * 1024);
    try {
      const port = relay.port;
      const bytes = readFileSync(pkgs.r3 as string);
      const r = await remote('operator-cn', ['install', pkgs.r3 as string, '--json'], port);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.ok(relay.cut(), 'the relay cut a connection');
      const puts = logged(d, 'upload').filter((e) => e.sha256 === sha256(bytes));
      assert.ok(puts.length >= 2, JSON.stringify(puts));
      assert.equal(puts[0]?.from, 0);
      assert.ok((puts[1]?.from as number) > 0, 'resumed, not sent again from 0');
      assert.equal(puts[puts.length - 1]?.have, bytes.length);
      assert.equal(await readlink(join(dev.target, 'current')), (JSON.parse(r.stdout) as { release: string }).release);
    } finally {
      relay.server.close();
    }
  });

  it('upload-sha256-mismatch: bytes that do not have the declared sha256 are refused (422 UPLOAD_MISMATCH), removed, nothing installed', async function () {
    const bytes = readFileSync(pkgs.r1 as string);
    const claimed = sha256(Buffer.from('another package'));
    const before = await targetState(dev.target);
    const put = await call(d.port, await op(), 'PUT', `/v1/uploads/${claimed}`, { body: bytes, type: 'application/octet-stream' }).catch((err: unknown) => err);
    assert.ok(!(put instanceof Error), 'the PUT needs its headers: answered, not cut');
    assert.equal((put as { status: number }).status, 400, 'no Fussy-Upload-Size: BAD_REQUEST');
    const req = await putWithHeaders(d.port, await op(), claimed, bytes);
    assert.deepEqual([req.status, req.json.have], [200, bytes.length]);
    const inst = await call(d.port, await op(), 'POST', `/v1/uploads/${claimed}/install`);
    assert.equal(inst.status, 422);
    assert.equal(inst.json.error?.code, 'UPLOAD_MISMATCH');
    assert.equal((await call(d.port, await op(), 'GET', `/v1/uploads/${claimed}`)).status, 404);
    assert.deepEqual(await targetState(dev.target), before);
  });

  it('an offset other than what the device holds is 409 UPLOAD_OFFSET naming it; a body longer than the rest is 413', async function () {
    const bytes = readFileSync(pkgs.r1 as string);
    const id = sha256(bytes);
    await putWithHeaders(d.port, await op(), id, bytes.subarray(0, 100), { size: bytes.length, offset: 0 });
    const wrong = await putWithHeaders(d.port, await op(), id, bytes.subarray(200, 300), { size: bytes.length, offset: 200 });
    assert.equal(wrong.status, 409);
    assert.equal(wrong.json.error?.code, 'UPLOAD_OFFSET');
    assert.equal((wrong.json.error as unknown as { details: { have: number } }).details.have, 100);
    const over = await putWithHeaders(d.port, await op(), id, Buffer.concat([bytes.subarray(100), Buffer.from('more')]), { size: bytes.length, offset: 100 });
    assert.equal(over.status, 413);
    assert.equal(over.json.error?.code, 'TOO_LARGE');
    assert.equal((await call(d.port, await op(), 'GET', `/v1/uploads/${id}`)).json.have, 100, 'a declared length past the rest is refused before a byte is read');
  });

  it('two installs at once: the second is LOCKED (75) and keeps its upload; the first completes', async function () {
    const slow = remote('operator-cn', ['install', pkgs.slow as string]);
    for (const until = Date.now() + 60_000; !logged(d, 'install-started').some((e) => e.sha256 === sha256(readFileSync(pkgs.slow as string))); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > until) throw new Error('the slow install did not start');
    }
    const second = await remote('operator-cn', ['install', pkgs.r5 as string]);
    assert.equal(second.exitCode, 75, second.stderr);
    assert.deepEqual((await call(d.port, await op(), 'GET', `/v1/uploads/${sha256(readFileSync(pkgs.r5 as string))}`)).json.verified, true, 'kept for a retry');
    const first = await slow;
    assert.equal(first.exitCode, 0, first.stderr);
    assert.match(await readlink(join(dev.target, 'current')), /slow/);
    const again = await remote('operator-cn', ['install', pkgs.r5 as string, '--json']);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { sent: number }).sent, 0, 'nothing sent again');
  });

  it('fussyd stays small during a 50 MB upload (RSS growth under 30 MB) and up after the install fails', async function () {
    const junk = join(work, 'junk.gpg');
    writeFileSync(junk, randomBytes(50 * 1024 * 1024));
    const rss = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${d.child.pid}/status`, 'utf8'))?.[1]) * 1024;
    const base = rss();
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, rss())), 20);
    let r: CliResult;
    try {
      r = await remote('operator-cn', ['install', junk]);
    } finally {
      clearInterval(sampler);
    }
    const local = await cli('fussy', ['install', junk, '-t', (await deviceBeside(dev, 'local-junk')).target, '-k', dev.keyring], { cwd: work });
    assert.equal(r.exitCode, local.exitCode, r.stderr);
    assert.notEqual(r.exitCode, 0);
    assert.ok(peak - base < 30 * 1024 * 1024, `fussyd grew by ${((peak - base) / 1048576).toFixed(1)} MiB`);
    assert.equal((await remote('viewer-cn', ['status'])).exitCode, 0);
  });

  it('a client that goes away mid-install does not cancel it: the install completes, is logged unanswered, and current is the new release', async function () {
    const f = await tlsFixtures();
    const c = f.clients['operator-cn'];
    const id = sha256(readFileSync(pkgs.orphan as string));
    const client = execa(process.execPath, [join(BIN, 'fussy.js'), 'remote', '--host', '127.0.0.1', '--port', String(d.port), '--ca', f.ca, '--cert', c.cert, '--key', c.key, 'install', pkgs.orphan as string], { cwd: work, reject: false });
    await until(() => logged(d, 'install-started').some((e) => e.sha256 === id));
    client.kill('SIGKILL');
    await client;
    await until(() => logged(d, 'install').some((e) => e.sha256 === id));
    const done = logged(d, 'install').find((e) => e.sha256 === id);
    assert.deepEqual([done?.ok, done?.answered], [true, false]);
    assert.match(await readlink(join(dev.target, 'current')), /orphan/);
    assert.ok(!held(s).some((n) => n.startsWith(id)), 'its upload removed');
  });

  it('SIGTERM cancels a running install before its switch: the client gets the refusal fussy install would give, current stays, fussyd exits 0', async function () {
    const before = await readlink(join(dev.target, 'current'));
    const id = sha256(readFileSync(pkgs.slow2 as string));
    const slow = remote('operator-cn', ['install', pkgs.slow2 as string]);
    const seen = logged(d, 'install-started').filter((e) => e.sha256 === id).length;
    for (const until = Date.now() + 60_000; logged(d, 'install-started').filter((e) => e.sha256 === id).length === seen; await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > until) throw new Error('the install did not start');
    }
    await new Promise((r) => setTimeout(r, 500)); // into its pre-install hook
    d.child.kill('SIGTERM');
    const r = await slow;
    // 130 (INTERRUPTED) when the cancel comes before the hooks; 3 (HOOK_FAILED, the previous
    // release enabled again) when it stops the pre-install hook: what `fussy install` does on SIGTERM.
    assert.ok([130, 3].includes(r.exitCode), `${r.exitCode}: ${r.stderr}`);
    assert.equal((await d.child).exitCode, 0);
    assert.equal(await readlink(join(dev.target, 'current')), before);
    assert.ok(!existsSync(join(dev.target, 'slow2')), 'the cancelled release was removed');
  });
});
