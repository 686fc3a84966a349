import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditLines, fingerprintOf, useChild } from '../helpers/fussyd.js';
import { tlsFixtures, type ClientCn } from '../helpers/tls-fixtures.js';
import { groupGone, python3 } from './runs/helpers.js';

interface Run {
  runId: string;
  status: string;
  exitCode?: number;
  signal?: string;
  trigger: { kind: string; cn: string; fingerprint: string };
  script: { name: string; id: string };
  args: string[];
  result?: unknown;
  error?: { message: string; stack?: string };
  stdout: { encoding: string; head: string; tail: string; totalBytes: number; truncated: boolean };
}

describe('fussy remote scripts, exec and history against a real bin/fussyd (openssl certificates)', function () {
  const c = useChild('fussyd-scripts-');
  const remote = async (cn: ClientCn, args: string[]) => c.remote((await tlsFixtures()).clients[cn], args);
  // Local scripts live in work/src: a NAME that exists in the cwd would be uploaded by exec first.
  const script = (name: string, body: string): string => {
    mkdirSync(join(c.work, 'src'), { recursive: true });
    writeFileSync(join(c.work, 'src', name), body, { mode: 0o755 });
    return `src/${name}`;
  };
  const json = <T>(r: { stdout: string }): T => JSON.parse(r.stdout) as T;

  it('roles: a viewer cannot put or exec, an operator cannot put or rm scripts but can exec, an admin can put; each decision and the stored id are audited', async function () {
    const who = script('who.sh', '#!/bin/sh\necho "caller=$FUSSY_CALLER"\n');
    const viewerPut = await remote('viewer-cn', ['put', who]);
    assert.equal(viewerPut.exitCode, 77, viewerPut.stderr);
    const opPut = await remote('operator-cn', ['put', who]);
    assert.equal(opPut.exitCode, 77, opPut.stderr);
    const put = await remote('admin-cn', ['put', who, '--json']);
    assert.equal(put.exitCode, 0, put.stderr);
    const { id } = json<{ id: string }>(put);
    assert.match(id, /^[0-9a-f]{64}$/);
    const viewerExec = await remote('viewer-cn', ['exec', 'who.sh']);
    assert.equal(viewerExec.exitCode, 77, viewerExec.stderr);
    const opRm = await remote('operator-cn', ['rm', 'who.sh']);
    assert.equal(opRm.exitCode, 77, opRm.stderr);
    const opExec = await remote('operator-cn', ['exec', 'who.sh']);
    assert.equal(opExec.exitCode, 0, opExec.stderr);
    assert.equal(opExec.stdout, 'caller=operator-cn', 'cli() strips the last newline');
    const f = await tlsFixtures();
    const lines = auditLines(c.s) as unknown as Array<Record<string, unknown>>;
    const denied = lines.filter((l) => l.decision === 'deny').map((l) => [l.cn, l.action, l.reason]);
    assert.deepEqual(denied, [
      ['viewer-cn', 'scripts.put', 'ROLE_DENIED'],
      ['operator-cn', 'scripts.put', 'ROLE_DENIED'],
      ['viewer-cn', 'runs.start', 'ROLE_DENIED'],
      ['operator-cn', 'scripts.rm', 'ROLE_DENIED'],
    ]);
    const stored = lines.find((l) => l.event === 'stored');
    assert.deepEqual({ cn: stored?.cn, fingerprint: stored?.fingerprint, action: stored?.action, name: stored?.name, id: stored?.id }, { cn: 'admin-cn', fingerprint: await fingerprintOf(f.clients['admin-cn']), action: 'scripts.put', name: 'who.sh', id });
    const ran = lines.find((l) => l.event === 'run');
    assert.equal(ran?.cn, 'operator-cn');
    assert.equal(ran?.id, id);
  });

  it('put, ls, exec by name and by id: an older id still runs after a newer put; history shows CN, fingerprint, script id, args and exit status', async function () {
    const ver = script('ver.sh', '#!/bin/sh\necho one "$@"\n');
    const first = json<{ id: string }>(await remote('admin-cn', ['put', ver, '--name', 'version.sh', '--json']));
    script('ver.sh', '#!/bin/sh\necho two "$@"\n');
    const second = json<{ id: string }>(await remote('admin-cn', ['put', ver, '--name', 'version.sh', '--json']));
    assert.notEqual(first.id, second.id);
    assert.equal((await remote('admin-cn', ['put', ver, '--name', 'version.sh'])).stdout, second.id, 'put prints the id it stored');
    const ls = await remote('viewer-cn', ['ls']);
    assert.match(ls.stdout, new RegExp(`^version\\.sh +${second.id.slice(0, 12)} +24 +\\S+ +admin-cn$`, 'm'));
    const byName = await remote('operator-cn', ['exec', 'version.sh', '--', 'a b', '-x']);
    assert.equal(byName.stdout, 'two a b -x');
    const jsonArg = await remote('operator-cn', ['exec', 'version.sh', '--', '--json']);
    assert.equal(jsonArg.stdout, 'two --json', 'a --json after -- is the script\'s, not fussy\'s');
    const byOldId = await remote('operator-cn', ['exec', first.id, '--', 'old']);
    assert.equal(byOldId.exitCode, 0, byOldId.stderr);
    assert.equal(byOldId.stdout, 'one old');
    const got = await remote('viewer-cn', ['get', first.id, '-o', 'back.sh']);
    assert.equal(got.exitCode, 0, got.stderr);
    assert.equal(readFileSync(join(c.work, 'back.sh'), 'utf8'), '#!/bin/sh\necho one "$@"\n');
    const history = json<{ runs: Run[] }>(await remote('viewer-cn', ['history', '--script', 'version.sh', '--json'])).runs;
    const f = await tlsFixtures();
    const fp = await fingerprintOf(f.clients['operator-cn']);
    assert.deepEqual(
      history.map((r) => [r.trigger.cn, r.trigger.fingerprint, r.script.id, r.args, r.status, r.exitCode]),
      [
        ['operator-cn', fp, first.id, ['old'], 'exited', 0],
        ['operator-cn', fp, second.id, ['--json'], 'exited', 0],
        ['operator-cn', fp, second.id, ['a b', '-x'], 'exited', 0],
      ],
    );
    const table = await remote('viewer-cn', ['history', '--script', 'version.sh']);
    assert.match(table.stdout, /^TIME +WHO +SCRIPT +ARGS +STATUS +DURATION\n\S+ \S+ +operator-cn +version\.sh \([0-9a-f]{12}\) +old +exit 0 +[0-9.]+s\n/);
    const recent = json<{ runs: Run[] }>(await remote('viewer-cn', ['history', '--script', 'version.sh', '--since', '1h', '--json'])).runs;
    assert.equal(recent.length, 3);
    const future = json<{ runs: Run[] }>(await remote('viewer-cn', ['history', '--since', '2999-01-01T00:00:00Z', '--json'])).runs;
    assert.deepEqual(future, []);
  });

  it('exec of a local file uploads it first (put), then runs that id; rm keeps the id runnable', async function () {
    mkdirSync(join(c.work, 'sub'), { recursive: true });
    writeFileSync(join(c.work, 'sub', 'local.sh'), '#!/bin/sh\necho "local $1"\n', { mode: 0o755 });
    const r = await remote('admin-cn', ['exec', 'sub/local.sh', '--json', '--', 'x']);
    assert.equal(r.exitCode, 0, r.stderr);
    const run = json<Run>(r);
    assert.equal(run.script.name, 'local.sh');
    assert.equal(run.stdout.head, 'local x\n');
    const ls = json<{ scripts: Array<{ name: string; id: string }> }>(await remote('viewer-cn', ['ls', '--json'])).scripts;
    assert.equal(ls.find((e) => e.name === 'local.sh')?.id, run.script.id);
    assert.equal((await remote('admin-cn', ['rm', 'local.sh'])).exitCode, 0);
    const again = await remote('operator-cn', ['exec', run.script.id, '--', 'y']);
    assert.equal(again.stdout, 'local y');
    assert.equal((await remote('operator-cn', ['exec', 'local.sh'])).exitCode, 2, 'the name is gone (NOT_FOUND)');
  });

  it('exec exits with the script status: exit 3 -> 3, killed by SIGKILL -> 137, time limit -> 124 with its grandchild gone', async function () {
    const three = await remote('admin-cn', ['exec', script('three.sh', '#!/bin/sh\necho out; echo err >&2; exit 3\n')]);
    assert.equal(three.exitCode, 3);
    assert.equal(three.stdout, 'out');
    assert.match(three.stderr, /^err$/m);
    assert.equal((await remote('admin-cn', ['exec', script('killed.sh', '#!/bin/sh\nkill -KILL $$\n')])).exitCode, 128 + 9);
    const slowSh = script('slow.sh', '#!/bin/sh\nsleep 1000 &\necho $! > "$FUSSY_DATA_DIR/grandchild.pid"\nsleep 1000\n');
    const slow = await remote('admin-cn', ['exec', slowSh, '--timeout', '1', '--json']);
    assert.equal(slow.exitCode, 124, slow.stdout);
    assert.equal(json<Run>(slow).status, 'timeout');
    const grandchild = Number(readFileSync(join(c.s.dataDir, 'grandchild.pid'), 'utf8'));
    assert.ok(grandchild > 0);
    assert.equal(liveProcess(grandchild), false, 'the grandchild of a timed-out script is gone');
    const run = json<Run & { pid: number }>(slow);
    assert.deepEqual(await groupGone(run.pid), []);
  });

  it("a script's $0 is its name (run through STATE/scripts/named/<id>/<name>), for every version, and an older id keeps the name it was stored under", async function () {
    const admin = (await tlsFixtures()).clients['admin-cn'];
    const v1 = json<{ id: string }>(await c.remote(admin, ['put', script('whoami-0.sh', '#!/bin/sh\necho "v1 $(basename "$0")"\n'), '--json']));
    await c.remote(admin, ['put', script('whoami-0.sh', '#!/bin/sh\necho "v2 $(basename "$0")"\n')]);
    assert.equal((await remote('operator-cn', ['exec', 'whoami-0.sh'])).stdout, 'v2 whoami-0.sh');
    assert.equal((await remote('operator-cn', ['exec', v1.id])).stdout, 'v1 whoami-0.sh');
  });

  it("a js run(ctx) script's return value and a thrown error's stack reach the client", async function () {
    const sumMjs = script('sum.mjs', 'export async function run(ctx) {\n  return { sum: ctx.args.map(Number).reduce((a, b) => a + b, 0), runId: ctx.runId };\n}\n');
    const sum = await remote('admin-cn', ['exec', sumMjs, '--', '2', '40']);
    assert.equal(sum.exitCode, 0, sum.stderr);
    assert.equal((JSON.parse(sum.stdout) as { sum: number }).sum, 42);
    const boomMjs = script('boom.mjs', 'function inner() {\n  throw new Error("boom from the script");\n}\nexport function run() {\n  inner();\n}\n');
    const boom = await remote('admin-cn', ['exec', boomMjs]);
    assert.equal(boom.exitCode, 1);
    assert.match(boom.stderr, /Error: boom from the script\n\s+at inner \(.*boom\.mjs:2/);
    const asJson = json<Run>(await remote('admin-cn', ['exec', boomMjs, '--json']));
    assert.equal(asJson.error?.message, 'boom from the script');
    assert.match(asJson.error?.stack ?? '', /at run \(/);
  });

  it('a Viri .py script: run(*args) returns JSON to the client', async function () {
    if (python3() === undefined) {
      this.skip(); // no python3 on this machine: the Viri host cannot run
    }
    const viri = script('viri.py', 'class ViriScript:\n    def run(self, *args):\n        print("from python")\n        return {"args": list(args)}\n');
    const r = await remote('admin-cn', ['exec', viri, '--json', '--', 'a', 'b']);
    assert.equal(r.exitCode, 0, r.stdout);
    const run = json<Run>(r);
    assert.deepEqual(run.result, { args: ['a', 'b'] });
    assert.equal(run.stdout.head, 'from python\n');
  });

  it('bad requests: an unknown script exits 2 (NOT_FOUND), a run past max-run-timeout exits 2 and is never queued', async function () {
    const missing = await remote('operator-cn', ['exec', 'no-such-script', '--json']);
    assert.equal(missing.exitCode, 2);
    assert.equal(json<{ error: { code: string } }>(missing).error.code, 'NOT_FOUND');
    const before = json<{ runs: Run[] }>(await remote('viewer-cn', ['history', '--json'])).runs.length;
    const tooLong = await remote('operator-cn', ['exec', 'version.sh', '--timeout', '9999999', '--json']);
    assert.equal(tooLong.exitCode, 2, tooLong.stdout);
    assert.equal(json<{ runs: Run[] }>(await remote('viewer-cn', ['history', '--json'])).runs.length, before);
  });
});

/** Whether `pid` is a live (not zombie) process. */
function liveProcess(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
