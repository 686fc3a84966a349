import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useTmp } from '../../helpers/tmp.js';
import { ALICE, BY, openEngine, text } from './helpers.js';

/** Appends its first argument to `order` in the data dir, then waits for a `go` file there. */
const GATED = '#!/bin/sh\necho "$1" >> order\nwhile [ ! -e go ]; do sleep 0.02; done\necho "ran $1"\n';

describe('daemon runs: the queue and the scripts that run', function () {
  const tmp = useTmp();

  it('priority queue with maxRuns=1: a high priority submitted later runs before earlier low ones, then first come first served', async function () {
    const { engine, scripts } = await openEngine(tmp.dir, { maxRuns: 1 });
    await scripts.put('gated.sh', Buffer.from(GATED), BY);
    const submit = (arg: string, priority: number): ReturnType<typeof engine.submit> => engine.submit({ script: 'gated.sh', args: [arg], priority, trigger: ALICE });
    const first = submit('first', 0);
    await first.started;
    const runs = [submit('low-1', 0), submit('low-2', 0), submit('high', 5), first];
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(engine.snapshot().running, [first.runId], 'one run at a time');
    await writeFile(join(tmp.dir, 'data', 'go'), '');
    const records = await Promise.all(runs.map((r) => r.done));
    assert.equal(await readFile(join(tmp.dir, 'data', 'order'), 'utf8'), 'first\nhigh\nlow-1\nlow-2\n');
    assert.ok(records.every((r) => r.status === 'exited' && typeof r.waitMs === 'number'));
    assert.ok((records[1]?.waitMs ?? 0) > 0, 'the wait in the queue is recorded');
    assert.deepEqual(engine.history.query({ limit: 2 }).map((s) => s.args[0]), ['high', 'low-2'], 'newest submitted first');
    await engine.close();
  });

  it('replacing a script while it runs does not change the running one; the next run gets the new id', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const v1 = await scripts.put('swap.sh', Buffer.from('#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.02; done\necho v1\n'), BY);
    const run = engine.submit({ script: 'swap.sh', trigger: ALICE });
    await run.started;
    const v2 = await scripts.put('swap.sh', Buffer.from('#!/bin/sh\necho v2\n'), BY);
    await writeFile(join(tmp.dir, 'data', 'go'), '');
    const r = await run.done;
    assert.deepEqual([text(r.output.stdout.head), r.script.id], ['v1\n', v1.id]);
    const next = await engine.submit({ script: 'swap.sh', trigger: ALICE }).done;
    assert.deepEqual([text(next.output.stdout.head), next.script.id], ['v2\n', v2.id]);
    const old = await engine.submit({ script: v1.id, trigger: ALICE }).done;
    assert.equal(text(old.output.stdout.head), 'v1\n', 'an older id stays runnable');
    await engine.close();
  });

  it('close() cancels waiting runs and interrupts running ones, and no new run is taken', async function () {
    const { engine, scripts } = await openEngine(tmp.dir, { maxRuns: 1, graceMs: 500 });
    await scripts.put('gated.sh', Buffer.from(GATED), BY);
    const running = engine.submit({ script: 'gated.sh', args: ['a'], trigger: ALICE });
    await running.started;
    const waiting = engine.submit({ script: 'gated.sh', args: ['b'], trigger: ALICE });
    await new Promise((r) => setTimeout(r, 50));
    await engine.close();
    assert.deepEqual([(await running.done).status, (await waiting.done).status], ['interrupted', 'cancelled']);
    assert.equal((await waiting.started).pid, undefined);
    assert.throws(() => engine.submit({ script: 'gated.sh', trigger: ALICE }), { code: 'INTERRUPTED' });
  });

  it('history retention: past history-keep the oldest ended runs go, with their output files', async function () {
    const { engine, scripts } = await openEngine(tmp.dir, { historyKeep: 2 });
    await scripts.put('echo.sh', Buffer.from('#!/bin/sh\necho "$1"\n'), BY);
    const ids: string[] = [];
    for (const n of ['1', '2', '3']) ids.push((await engine.submit({ script: 'echo.sh', args: [n], trigger: ALICE }).done).runId);
    await engine.history.compact();
    assert.deepEqual(engine.history.query().map((s) => s.args[0]), ['3', '2']);
    assert.equal(engine.history.readOutput(ids[0] as string), undefined);
    await engine.close();
    const reopened = await openEngine(tmp.dir, { historyKeep: 2 });
    assert.deepEqual(reopened.engine.history.query({ script: 'echo.sh', since: new Date(0) }).map((s) => s.args[0]), ['3', '2']);
    await reopened.engine.close();
  });

  it('history retention by age: runs that ended more than history-days ago go at compaction, with their output files; younger ones stay', async function () {
    let clock = new Date('2025-03-01T12:00:00Z');
    const { engine, scripts } = await openEngine(tmp.dir, { historyDays: 2, now: () => clock });
    await scripts.put('echo.sh', Buffer.from('#!/bin/sh\necho "$1"\n'), BY);
    const run = async (arg: string): Promise<string> => (await engine.submit({ script: 'echo.sh', args: [arg], trigger: ALICE }).done).runId;
    const old = await run('old');
    clock = new Date('2025-03-02T12:00:00Z');
    const day2 = await run('day-2');
    clock = new Date('2025-03-03T12:00:01Z');
    await engine.history.compact();
    assert.deepEqual(engine.history.query().map((s) => s.args[0]), ['day-2'], 'ended 2 days and a second ago: dropped; 1 day ago: kept');
    assert.equal(engine.history.readOutput(old), undefined);
    assert.equal(engine.history.readOutput(day2)?.stdout.head.toString(), 'day-2\n');
    assert.doesNotMatch(await readFile(join(tmp.dir, 'runs', 'history.jsonl'), 'utf8'), new RegExp(old), 'the file is rewritten without it');
    await engine.close();
  });
});
