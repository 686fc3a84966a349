import assert from 'node:assert/strict';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { useTmp } from '../../helpers/tmp.js';
import { groupGone, groupMembers, killGroup, openEngine, runOnce, text } from './helpers.js';

const CHILD = fileURLToPath(new URL('./engine-child.js', import.meta.url));

describe('daemon runs: the engine process itself (anchors §9 items 8 and 15)', function () {
  const tmp = useTmp();

  // The bound is 64 MiB, not the 32 MiB of the brief: Node gives every 64 KiB read of a pipe a
  // buffer of its own, freed only when V8's external-memory heuristic runs a GC, so a bare
  // `spawn(...).stdout.on('data')` reader of 1 GB peaks ~39 MiB above its baseline on a quiet
  // machine (the engine: ~35 MiB), and more when the machine is busy and the GC comes later
  // (50.6 MiB once, with the whole suite beside it: the test had a 48 MiB bound and was flaky).
  // What matters is that it does not grow with the output: buffering it would be 256 MiB.
  // 256 MiB here, 250 times what is kept: the 1 GB run goes through the whole fussyd
  // (runs-daemon.test.ts), and a second GB costs the suite ~4 s of CPU for nothing new.
  it('256 MiB of output is drained and capped, not buffered: head 1 MiB, tail 64 KiB, the total counted, the engine grows < 64 MiB', async function () {
    const r = await execa(process.execPath, [CHILD, tmp.dir, 'big-output'], { reject: false, timeout: 110_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown> & { beforeKb: number; afterKb: number };
    assert.deepEqual(
      { status: out.status, exitCode: out.exitCode, head: out.head, tail: out.tail, zeros: out.zeros, totalBytes: out.totalBytes, truncated: out.truncated, recorded: out.recorded },
      { status: 'exited', exitCode: 0, head: 1024 * 1024, tail: 64 * 1024, zeros: true, totalBytes: 268435456, truncated: true, recorded: { totalBytes: 268435456, truncated: true } },
    );
    assert.ok(out.afterKb - out.beforeKb < 64 * 1024, `peak RSS grew by ${out.afterKb - out.beforeKb} KiB`);
  });

  it('fussyd SIGKILLed during a run: the next engine records it abandoned, kills its group, ignores a torn line, starts nothing again', async function () {
    const child = execa(process.execPath, [CHILD, tmp.dir, 'hang'], { reject: false, buffer: false });
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout?.once('data', (d: Buffer) => resolve(String(d)));
      child.once('exit', () => reject(new Error('the engine child ended before the run started')));
    });
    const { runId, pid } = JSON.parse(line) as { runId: string; pid: number };
    try {
      child.kill('SIGKILL');
      await child;
      assert.ok(groupMembers(pid).length >= 2, 'the run outlives its fussyd');
      const file = join(tmp.dir, 'runs', 'history.jsonl');
      await appendFile(file, '{"type":"queued","runId":"torn-');
      const { engine, scripts, abandoned } = await openEngine(tmp.dir);
      assert.deepEqual(abandoned.map((a) => [a.runId, a.status]), [[runId, 'abandoned']]);
      assert.ok((abandoned[0]?.killed ?? 0) >= 2);
      assert.deepEqual(await groupGone(pid), []);
      const history = await readFile(file, 'utf8');
      assert.ok(history.endsWith('\n') && !history.includes('torn-'), 'the torn line is cut off');
      assert.deepEqual(engine.history.query().map((s) => [s.runId, s.status]), [[runId, 'abandoned']]);
      const next = await runOnce(engine, scripts, 'after.sh', '#!/bin/sh\necho after\n');
      assert.equal(text(next.output.stdout.head), 'after\n');
      assert.deepEqual(engine.history.query().map((s) => s.status), ['exited', 'abandoned']);
      await engine.close();
      const again = await openEngine(tmp.dir);
      assert.deepEqual(again.abandoned, [], 'an abandoned run is ended once');
      assert.equal(again.engine.history.query({ script: 'hang.sh' }).length, 1);
      await again.engine.close();
    } finally {
      killGroup(pid);
    }
  });
});
