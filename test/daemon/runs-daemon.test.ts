import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, type CliResult } from '../helpers/cli.js';
import { startChild, type Child } from '../helpers/fussyd.js';
import { pkiFixture } from '../helpers/pki.js';
import { makeTmp } from '../helpers/tmp.js';
import { groupGone, groupMembers, killGroup } from './runs/helpers.js';

type Who = 'admin' | 'operator' | 'viewer';

interface Run {
  runId: string;
  status: string;
  pid?: number;
  trigger: { cn: string };
  stdout: { encoding: string; head: string; tail: string; totalBytes: number; truncated: boolean };
}

/**
 * fussyd as a process: its memory while a run writes 1 GB, and what a SIGKILL or a SIGTERM in the
 * middle of a run leaves behind. Certificates from fussy pki (test/helpers/pki.ts).
 */
describe('fussyd with runs as a process: memory, SIGKILL and SIGTERM mid-run (fussy pki certificates)', function () {
  let dir: string;
  let conf: string;
  let d: Child;

  before(async function () {
    const p = await pkiFixture();
    dir = await makeTmp('fussyd-runs-');
    mkdirSync(join(dir, 'target'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'roles.json'), JSON.stringify({ admin: ['admin'], operator: ['operator'], viewer: ['viewer'] }));
    conf = join(dir, 'fussyd.conf');
    const lines = ['listen = 127.0.0.1:0', `cert = ${p.server.cert}`, `key = ${p.server.key}`, `client-ca = ${p.ca}`, `crl = ${p.crl}`, `roles = ${join(dir, 'roles.json')}`, `state-dir = ${join(dir, 'state')}`, `target = ${join(dir, 'target')}`];
    writeFileSync(conf, lines.join('\n') + '\n');
    d = await startChild(['--config', conf]);
    for (const [name, body] of [
      ['warm.sh', '#!/bin/sh\nyes abcdefgh | head -c 2000000\n'],
      ['big.sh', '#!/bin/sh\nyes abcdefgh | head -c 1073741824\n'],
      ['hang.sh', '#!/bin/sh\nsleep 1000 &\nsleep 1000\n'],
    ] as const) {
      writeFileSync(join(dir, 'src', name), body);
      const put = await remote('admin', ['put', `src/${name}`]);
      assert.equal(put.exitCode, 0, put.stderr);
    }
  });
  after(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(d.stderr());
    if (d.child.exitCode === null) await d.stop();
  });

  async function remote(who: Who, args: string[]): Promise<CliResult> {
    const p = await pkiFixture();
    const c = p.clients[who];
    return cli('fussy', ['remote', '--host', 'localhost', '--port', String(d.port), '--ca', p.ca, '--cert', c.cert, '--key', c.key, ...args], { cwd: dir, env: { HOME: dir } });
  }
  const history = async (): Promise<Run[]> => (JSON.parse((await remote('viewer', ['history', '--json'])).stdout) as { runs: Run[] }).runs;
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${d.child.pid}/status`, 'utf8'))?.[1]);

  /** Start hang.sh through fussy remote exec (not awaited) and wait until it runs. */
  async function startHang(): Promise<{ exec: Promise<CliResult>; run: Run & { pid: number } }> {
    const exec = remote('operator', ['exec', 'hang.sh', '--json', '--', 'mid-run']);
    for (let i = 0; i < 100; i++) {
      const run = (await history()).find((r) => r.status === 'running' && r.pid !== undefined && groupMembers(r.pid).length >= 2);
      if (run !== undefined) return { exec, run: run as Run & { pid: number } };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('hang.sh did not start');
  }

  // 48 MiB, as the engine's own test (test/daemon/runs/engine-process.test.ts): node gives each
  // pipe read a buffer that V8 frees at its next GC; what matters is no growth with the output.
  it('1 GB of script output through fussy remote exec leaves fussyd flat: capped, counted, peak RSS grows < 48 MiB', async function () {
    const warm = await remote('operator', ['exec', 'warm.sh', '--json']);
    assert.equal(warm.exitCode, 0, warm.stderr);
    const before = kb('VmHWM');
    const big = await remote('operator', ['exec', 'big.sh', '--json']);
    assert.equal(big.exitCode, 0, big.stderr);
    const after = kb('VmHWM');
    const out = (JSON.parse(big.stdout) as Run).stdout;
    assert.deepEqual({ encoding: out.encoding, head: out.head.length, tail: out.tail.length, totalBytes: out.totalBytes, truncated: out.truncated }, { encoding: 'utf8', head: 1024 * 1024, tail: 64 * 1024, totalBytes: 1073741824, truncated: true });
    this.test!.title += ` (grew ${Math.round((after - before) / 1024)} MiB)`;
    assert.ok(after - before < 48 * 1024, `fussyd's peak RSS grew by ${after - before} KiB (VmRSS now ${kb('VmRSS')} KiB)`);
  });

  it('fussyd SIGKILLed during a run and restarted: the run is recorded abandoned once, its process group is gone, fussy remote history shows it', async function () {
    const { exec, run } = await startHang();
    try {
      d.child.kill('SIGKILL');
      await d.child;
      const lost = await exec;
      assert.equal(lost.exitCode, 69, `the client lost its device: ${lost.stdout}`);
      assert.equal((JSON.parse(lost.stdout) as { error: { runId: string } }).error.runId, run.runId, 'the client names the run it lost');
      assert.ok(groupMembers(run.pid).length >= 2, 'the run outlived its fussyd');
      d = await startChild(['--config', conf]);
      assert.match(d.stderr(), new RegExp(`"event":"run-abandoned","runId":"${run.runId}".*"killed":[1-9]`));
      assert.deepEqual(await groupGone(run.pid), []);
      const runs = (await history()).filter((r) => r.runId === run.runId);
      assert.deepEqual(runs.map((r) => [r.status, r.trigger.cn]), [['abandoned', 'operator']]);
      const table = await remote('viewer', ['history', '--script', 'hang.sh']);
      assert.match(table.stdout, /operator +hang\.sh \([0-9a-f]{12}\) +mid-run +abandoned +-/);
      await d.stop();
      d = await startChild(['--config', conf]);
      assert.doesNotMatch(d.stderr(), /run-abandoned/, 'an abandoned run is ended once');
      assert.equal((await history()).filter((r) => r.runId === run.runId).length, 1);
    } finally {
      killGroup(run.pid);
    }
  });

  it('fussyd stopped by SIGTERM during a run: the run ends interrupted, its group killed, the client told (69)', async function () {
    const { exec, run } = await startHang();
    try {
      await d.stop();
      assert.equal(d.child.exitCode, 0);
      const told = await exec;
      assert.equal(told.exitCode, 69, told.stdout);
      assert.equal((JSON.parse(told.stdout) as Run).status, 'interrupted');
      assert.deepEqual(await groupGone(run.pid), []);
      d = await startChild(['--config', conf]);
      assert.doesNotMatch(d.stderr(), /run-abandoned/);
      assert.deepEqual((await history()).filter((r) => r.runId === run.runId).map((r) => r.status), ['interrupted']);
    } finally {
      killGroup(run.pid);
    }
  });
});
