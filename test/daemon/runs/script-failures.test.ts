import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useTmp } from '../../helpers/tmp.js';
import { groupGone, killGroup, openEngine, runOnce, text } from './helpers.js';

describe('daemon runs: a failing script is recorded precisely and the engine goes on (anchors §9 item 14)', function () {
  const tmp = useTmp();

  it('exit 3 is recorded as exited with code 3, output kept', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const r = await runOnce(engine, scripts, 'three.sh', '#!/bin/sh\necho out; echo err >&2; exit 3\n');
    assert.deepEqual([r.status, r.exitCode, r.signal, text(r.output.stdout.head), text(r.output.stderr.head)], ['exited', 3, undefined, 'out\n', 'err\n']);
    assert.equal(engine.history.get(r.runId)?.exitCode, 3);
    assert.equal(text(engine.history.readOutput(r.runId)?.stdout.head ?? Buffer.alloc(0)), 'out\n');
    await engine.close();
  });

  it('death by SIGSEGV and by SIGKILL is recorded as the signal', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const segv = await runOnce(engine, scripts, 'segv.sh', '#!/bin/sh\nkill -SEGV $$\n');
    const killed = await runOnce(engine, scripts, 'kill.sh', '#!/bin/sh\nkill -KILL $$\n');
    assert.deepEqual([segv.status, segv.signal, segv.exitCode], ['signaled', 'SIGSEGV', undefined]);
    assert.deepEqual([killed.status, killed.signal], ['signaled', 'SIGKILL']);
    await engine.close();
  });

  it('a missing interpreter (ENOENT) and an interpreter without exec bit (EACCES) are start errors', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const noInterp = await runOnce(engine, scripts, 'gone.sh', '#!/nonexistent/interpreter\n');
    const plain = join(tmp.dir, 'not-executable');
    await writeFile(plain, '#!/bin/sh\n');
    await chmod(plain, 0o644);
    const noExec = await runOnce(engine, scripts, 'noexec.sh', `#!${plain}\n`);
    assert.equal(noInterp.status, 'not-started');
    assert.match(noInterp.startError ?? '', /ENOENT/);
    assert.equal(noExec.status, 'not-started');
    assert.match(noExec.startError ?? '', /EACCES/);
    await engine.close();
  });

  it('a script without "#!" is refused as an exec format error, not handed to /bin/sh', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const r = await runOnce(engine, scripts, 'plain.sh', `touch ${join(tmp.dir, 'ran')}\n`);
    assert.equal(r.status, 'not-started');
    assert.match(r.startError ?? '', /exec format error/);
    assert.equal(existsSync(join(tmp.dir, 'ran')), false);
    await engine.close();
  });

  it('a script reading stdin gets EOF at once (stdin is /dev/null)', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const r = await runOnce(engine, scripts, 'read.sh', '#!/bin/sh\nif read line; then echo "got $line"; else echo eof; fi\n', { timeoutMs: 20_000 });
    assert.deepEqual([r.status, r.exitCode, text(r.output.stdout.head)], ['exited', 0, 'eof\n']);
    await engine.close();
  });

  it('a script forking a daemon that holds its stdout: the record is finalised at the exit plus the drain, and the next run runs', async function () {
    const { engine, scripts } = await openEngine(tmp.dir, { drainMs: 300 });
    const r = await runOnce(engine, scripts, 'daemon.sh', '#!/bin/sh\nsleep 1000 &\necho "daemon $!"\n');
    try {
      assert.deepEqual([r.status, r.exitCode], ['exited', 0]);
      assert.match(text(r.output.stdout.head), /^daemon \d+\n$/);
      const next = await runOnce(engine, scripts, 'next.sh', '#!/bin/sh\necho next\n');
      assert.equal(text(next.output.stdout.head), 'next\n');
    } finally {
      killGroup(r.pid);
    }
    assert.deepEqual(await groupGone(r.pid as number), []);
    await engine.close();
  });
});
