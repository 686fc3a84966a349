import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, type CliResult } from '../helpers/cli.js';
import { deviceWithPackages, type PackedDevice } from '../helpers/device.js';
import { setup, startChild, writeConfigFile, type Child, type Setup } from '../helpers/fussyd.js';
import { tlsFixtures, type Creds } from '../helpers/tls-fixtures.js';
import type { SampleFile } from '../helpers/tree.js';

/** A release whose etc/fussy/jobs.json declares one job, `maint-NAME`, running its usr/lib/maint/job. */
function withJobs(name: string): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: 'usr/lib/maint/job', content: `#!/bin/sh\necho "${name} maintenance"\n`, mode: 0o755 },
    { path: 'etc/fussy/jobs.json', content: JSON.stringify({ jobs: [{ name: `maint-${name}`, schedule: '30 3 * * * 2099', command: 'usr/lib/maint/job' }] }) },
  ];
}

async function until(ok: () => Promise<boolean>, what: string): Promise<void> {
  for (const end = Date.now() + 30_000; !(await ok()); await new Promise((r) => setTimeout(r, 100))) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

describe('fussy remote cron against a real bin/fussyd: roles, checks, runs, and the firmware jobs of fussy install and rollback', function () {
  let p: PackedDevice;
  let s: Setup;
  let d: Child;
  let work: string;
  let f: Awaited<ReturnType<typeof tlsFixtures>>;

  before(async function () {
    f = await tlsFixtures();
    p = await deviceWithPackages(['rel-a', 'rel-b'], withJobs);
    s = await setup(join(p.dev.dir, '..', 'daemon'));
    s.config.target = p.dev.target;
    d = await startChild(['--config', writeConfigFile(s, [`keyring = ${p.dev.keyring}`])]);
    work = join(s.dir, 'work');
    mkdirSync(work);
  });
  after(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(d.stderr());
    await d?.stop();
  });

  const remote = (who: Creds, args: string[]): Promise<CliResult> => cli('fussy', ['remote', '--host', '127.0.0.1', '--port', String(d.port), '--ca', f.ca, '--cert', who.cert, '--key', who.key, ...args], { cwd: work, env: { HOME: work } });
  const as = (cn: 'admin-cn' | 'operator-cn' | 'viewer-cn'): Creds => f.clients[cn];
  const jobs = async (): Promise<string[]> => {
    const r = await remote(as('viewer-cn'), ['cron', 'ls', '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    return (JSON.parse(r.stdout) as { jobs: Array<{ origin: string; name: string }> }).jobs.map((j) => `${j.origin}:${j.name}`).sort();
  };
  const code = (r: CliResult): string => (JSON.parse(r.stdout) as { error?: { code: string } }).error?.code ?? 'none';

  it('cron roles: viewer reads, operator runs and enables, admin adds and removes; each refusal exits 77', async function () {
    writeFileSync(join(work, 'fail.sh'), '#!/bin/sh\necho "checked $1"\nexit 3\n');
    assert.equal((await remote(as('admin-cn'), ['put', 'fail.sh'])).exitCode, 0);
    assert.equal(code(await remote(as('operator-cn'), ['cron', 'add', 'health', '*/5 * * * *', 'fail.sh', '--json'])), 'ROLE_DENIED');
    assert.equal((await remote(as('operator-cn'), ['cron', 'add', 'health', '*/5 * * * *', 'fail.sh', '--json'])).exitCode, 77);
    // 2099: the job never fires by itself while the test runs (the wall clock is not the test's); cron run runs it.
    const add = await remote(as('admin-cn'), ['cron', 'add', 'health', '*/5 * * * * 2099', 'fail.sh', '--priority', '-5', '--timeout', '60', '--', 'disk']);
    assert.equal(add.exitCode, 0, add.stderr);
    assert.match(add.stderr, /added job health on 127\.0\.0\.1; next run \d{4}-\d\d-\d\dT\d\d:\d[05]:00\.000Z/);
    assert.equal((await remote(as('viewer-cn'), ['cron', 'disable', 'health', '--json'])).exitCode, 77);
    assert.equal((await remote(as('viewer-cn'), ['cron', 'run', 'health', '--json'])).exitCode, 77);
    assert.equal((await remote(as('operator-cn'), ['cron', 'rm', 'health', '--json'])).exitCode, 77);
    const off = await remote(as('operator-cn'), ['cron', 'disable', 'health']);
    assert.equal(off.exitCode, 0, off.stderr);
    const ls = await remote(as('viewer-cn'), ['cron', 'ls']);
    assert.match(ls.stdout, /^NAME +ORIGIN +SCHEDULE +RUNS +NEXT +LAST +FAILS\nhealth +operator +\*\/5 \* \* \* \* 2099 +fail\.sh \.\.\. +disabled +- +0$/m);
    assert.equal((await remote(as('operator-cn'), ['cron', 'enable', 'health'])).exitCode, 0);
    // cron run: the job's run, with its args, exit status as exec gives it; the streak counts it.
    const run = await remote(as('operator-cn'), ['cron', 'run', 'health']);
    assert.equal(run.exitCode, 3, run.stderr);
    assert.equal(run.stdout, 'checked disk');
    const status = await remote(as('viewer-cn'), ['status']);
    assert.match(status.stdout, /schedule: 1 job, 1 enabled, 1 failing\n {2}failing: health \(operator\): 1 failure in a row, last failed \(exit 3\)/);
    const history = await remote(as('viewer-cn'), ['history']);
    assert.match(history.stdout, /schedule:health +fail\.sh \([0-9a-f]{12}\) +disk +exit 3/);
    const next = await remote(as('viewer-cn'), ['cron', 'next', 'health', '--count', '3', '--json']);
    const times = (JSON.parse(next.stdout) as { next: string[] }).next.map((t) => Date.parse(t));
    assert.deepEqual([times.length, (times[1] ?? 0) - (times[0] ?? 0), (times[2] ?? 0) - (times[1] ?? 0)], [3, 300_000, 300_000]);
    assert.equal((await remote(as('admin-cn'), ['cron', 'rm', 'health'])).exitCode, 0);
    assert.deepEqual(await jobs(), []);
  });

  it('cron add refuses nonsense with exit 2 and a clear error, and changes nothing: a date that never comes, an unknown script, a bad field', async function () {
    const feb30 = await remote(as('admin-cn'), ['cron', 'add', 'never', '0 0 30 2 *', 'fail.sh']);
    assert.equal(feb30.exitCode, 2);
    assert.match(feb30.stderr, /schedule "0 0 30 2 \*": never fires/);
    const gone = await remote(as('admin-cn'), ['cron', 'add', 'gone', '0 3 * * *', 'no-such.sh', '--json']);
    assert.equal(gone.exitCode, 2);
    assert.equal(code(gone), 'NOT_FOUND');
    assert.match(gone.stdout, /no stored script is named no-such\.sh/);
    const past = await remote(as('admin-cn'), ['cron', 'add', 'past', '0 3 1 1 * 2020', 'fail.sh', '--json']);
    assert.equal(code(past), 'BAD_SCHEDULE');
    const zone = await remote(as('admin-cn'), ['cron', 'add', 'zone', '0 3 * * *', 'fail.sh', '--timezone', 'Mars/Olympus', '--json']);
    assert.equal(code(zone), 'BAD_SCHEDULE');
    assert.deepEqual(await jobs(), []);
    assert.equal(JSON.parse(readFileSync(join(s.stateDir, 'schedule.json'), 'utf8')).jobs.length, 0);
  });

  it('firmware-jobs-follow-current: fussy install of a release loads its jobs, the next install replaces them, fussy rollback restores them', async function () {
    const install = async (name: string): Promise<void> => {
      const r = await cli('fussy', ['install', p.pkgs[name] as string, '-k', p.dev.keyring, '-t', p.dev.target]);
      assert.equal(r.exitCode, 0, r.stderr);
    };
    await install('rel-a');
    await until(async () => (await jobs()).includes('firmware:maint-rel-a'), 'maint-rel-a');
    assert.deepEqual(await jobs(), ['firmware:maint-rel-a']);
    const ls = await remote(as('viewer-cn'), ['cron', 'ls', '--json']);
    const [job] = (JSON.parse(ls.stdout) as { jobs: Array<Record<string, unknown>> }).jobs;
    assert.deepEqual([job?.command, job?.release, job?.schedule], ['usr/lib/maint/job', 'rel-a', '30 3 * * * 2099']);
    await install('rel-b');
    await until(async () => (await jobs()).includes('firmware:maint-rel-b'), 'maint-rel-b');
    assert.deepEqual(await jobs(), ['firmware:maint-rel-b']);
    const run = await remote(as('operator-cn'), ['cron', 'run', 'maint-rel-b']);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, 'rel-b maintenance');
    const back = await cli('fussy', ['rollback', '-t', p.dev.target]);
    assert.equal(back.exitCode, 0, back.stderr);
    await until(async () => (await jobs()).includes('firmware:maint-rel-a'), 'maint-rel-a after the rollback');
    assert.deepEqual(await jobs(), ['firmware:maint-rel-a']);
    assert.match(d.stderr(), /"event":"schedule-firmware-jobs","why":"current changed","release":"rel-a"/);
  });
});
