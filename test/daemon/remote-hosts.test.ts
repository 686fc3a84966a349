import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inOrder, parseHostList } from '../../src/remote/hosts.js';
import { cli } from '../helpers/cli.js';
import { setup, startChild, writeConfigFile, type Child, type Setup } from '../helpers/fussyd.js';
import { makeTmp } from '../helpers/tmp.js';
import { tlsFixtures, type ClientCn } from '../helpers/tls-fixtures.js';

/** A port nothing listens on (taken, then given back). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('fussy remote --host H1,H2: two real bin/fussyd, one result line a host in the order given', function () {
  let s: Setup[];
  let d: Child[];
  let work: string;
  let a: string;
  let b: string;
  let down: string;

  before(async function () {
    const dir = await makeTmp('fussyd-hosts-');
    s = [await setup(join(dir, 'a')), await setup(join(dir, 'b'))];
    d = await Promise.all(s.map((x) => startChild(['--config', writeConfigFile(x)])));
    [a, b] = d.map((x) => `127.0.0.1:${x.port}`) as [string, string];
    down = `127.0.0.1:${await closedPort()}`;
    work = join(dir, 'work');
    mkdirSync(work);
  });
  after(async function () {
    if (this.currentTest?.state === 'failed') for (const x of d) process.stderr.write(x.stderr());
    await Promise.all(d.map((x) => x.stop()));
  });

  const remote = async (cn: ClientCn, hosts: string[], args: string[]) => {
    const f = await tlsFixtures();
    const creds = f.clients[cn];
    return cli('fussy', ['remote', '--host', hosts.join(','), '--ca', f.ca, '--cert', creds.cert, '--key', creds.key, ...args], { cwd: work, env: { HOME: work } });
  };

  it('whoami on both: a result line then its output prefixed with the host, host by host, exit 0', async function () {
    const r = await remote('operator-cn', [a, b], ['whoami']);
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], `${a}: ok`);
    assert.equal(lines[1], `${a}: cn: operator-cn`);
    const second = lines.indexOf(`${b}: ok`);
    assert.ok(second > 1, r.stdout);
    assert.ok(lines.slice(1, second).every((l) => l.startsWith(`${a}: `)), r.stdout);
    assert.equal(lines[second + 1], `${b}: cn: operator-cn`);
    assert.match(lines[lines.length - 1] as string, new RegExp(`^${b}: roles: .*operator$`));
  });

  it('status with one host down: its line says UNREACHABLE, the others still answer, the exit status is 69', async function () {
    const r = await remote('viewer-cn', [a, down, b], ['--parallel', '1', 'status']);
    assert.equal(r.exitCode, 69, r.stdout + r.stderr);
    const results = r.stdout.split('\n').filter((l) => /^127\.0\.0\.1:\d+: (ok|exit)/.test(l));
    assert.deepEqual(
      results.map((l) => l.replace(/^(\S+): (ok|exit \d+).*$/, '$1 $2')),
      [`${a} ok`, `${down} exit 69`, `${b} ok`],
    );
    assert.match(results[1] as string, /UNREACHABLE: .*cannot be reached/);
  });

  it('exec on both: each host its own status line and output; the exit status is the first failing host\'s', async function () {
    for (const [host, body] of [
      [a, '#!/bin/sh\necho "this is a"\necho "a err" >&2\n'],
      [b, '#!/bin/sh\necho "this is b"\necho second\nexit 3\n'],
    ] as const) {
      // Not in the cwd: exec of a NAME that exists here would upload that file first.
      mkdirSync(join(work, 'src'), { recursive: true });
      writeFileSync(join(work, 'src', 'which.sh'), body, { mode: 0o755 });
      const put = await remote('admin-cn', [host], ['put', 'src/which.sh']);
      assert.equal(put.exitCode, 0, put.stderr);
    }
    const r = await remote('operator-cn', [b, a], ['exec', 'which.sh', '--', 'x']);
    assert.equal(r.exitCode, 3, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [`${b}: exit 3`, `${b}: this is b`, `${b}: second`, `${a}: ok`, `${a}: this is a`]);
    assert.match(r.stderr, new RegExp(`^${a}: a err$`, 'm'));
  });

  it('--json: one object a line, {host, exitCode, result|error}, in the order given', async function () {
    const r = await remote('operator-cn', [down, a, b], ['whoami', '--json']);
    assert.equal(r.exitCode, 69);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { host: string; exitCode: number; result?: { cn: string }; error?: { code: string } });
    assert.deepEqual(
      lines.map((l) => [l.host, l.exitCode, l.result?.cn ?? l.error?.code]),
      [
        [down, 69, 'UNREACHABLE'],
        [a, 0, 'operator-cn'],
        [b, 0, 'operator-cn'],
      ],
    );
  });

  it('cat and get to standard output refuse several hosts (2) before connecting; get -o FILE-{host} writes one file a host', async function () {
    writeFileSync(join(s[0]!.dataDir, 'conf'), 'a\n');
    writeFileSync(join(s[1]!.dataDir, 'conf'), 'b\n');
    const cat = await remote('viewer-cn', [a, b], ['cat', 'conf']);
    assert.equal(cat.exitCode, 2);
    assert.match(cat.stderr, /one --host at a time/);
    assert.equal((await remote('viewer-cn', [a, b], ['get', '--data', 'conf'])).exitCode, 2);
    assert.equal((await remote('viewer-cn', [a, b], ['get', '--data', 'conf', '-o', 'conf.txt'])).exitCode, 2, 'one FILE for every host');
    const got = await remote('viewer-cn', [a, b], ['get', '--data', 'conf', '-o', 'conf-{host}']);
    assert.equal(got.exitCode, 0, got.stdout + got.stderr);
    assert.equal(readFileSync(join(work, `conf-${a}`), 'utf8'), 'a\n');
    assert.equal(readFileSync(join(work, `conf-${b}`), 'utf8'), 'b\n');
  });
});

describe('remote/hosts: the host list and the ordered pool', function () {
  it('parses NAME, NAME:PORT, [v6]:PORT and a bare IPv6 address; refuses an empty name, a repeated one, a bad port', function () {
    assert.deepEqual(parseHostList('dev1,dev2:7000,[::1]:7001,::1', 6808), [
      { label: 'dev1', host: 'dev1', port: 6808 },
      { label: 'dev2:7000', host: 'dev2', port: 7000 },
      { label: '[::1]:7001', host: '::1', port: 7001 },
      { label: '::1', host: '::1', port: 6808 },
    ]);
    for (const bad of ['dev1,', 'dev1,,dev2', 'dev1,dev1', 'dev1:0', 'dev1:x', 'dev1:70000']) assert.throws(() => parseHostList(bad, 6808), { code: 'USAGE' }, bad);
  });

  it('runs at most `limit` at once and settles in the order given, a rejection included', async function () {
    let running = 0;
    let most = 0;
    const seen: string[] = [];
    await inOrder(
      [30, 5, 20, 1, 10],
      2,
      async (ms) => {
        most = Math.max(most, ++running);
        await sleep(ms);
        running--;
        if (ms === 20) throw new Error('twenty');
        return ms;
      },
      (i, o) => seen.push(`${i}:${o.status === 'fulfilled' ? o.value : (o.reason as Error).message}`),
    );
    assert.equal(most, 2);
    assert.deepEqual(seen, ['0:30', '1:5', '2:twenty', '3:1', '4:10']);
  });
});
