import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useTmp } from '../../helpers/tmp.js';
import { openEngine, runOnce, text } from './helpers.js';

describe('daemon runs: where a run\'s output is kept', function () {
  const tmp = useTmp();

  it('a small output is in the end record (no output file), a larger one in runs/out/RUNID.json; both read back after a restart', async function () {
    const { engine, scripts } = await openEngine(tmp.dir);
    const small = await runOnce(engine, scripts, 'small.sh', '#!/bin/sh\necho ok\n');
    const large = await runOnce(engine, scripts, 'large.sh', '#!/bin/sh\nhead -c 3000 /dev/zero | tr "\\0" x\n');
    await engine.close();
    const lines = (await readFile(join(tmp.dir, 'runs', 'history.jsonl'), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const end = (runId: string): Record<string, unknown> | undefined => lines.find((r) => r.type === 'end' && r.runId === runId);
    assert.deepEqual([end(small.runId)?.outputFile, typeof end(small.runId)?.output], [undefined, 'object']);
    assert.deepEqual([end(large.runId)?.outputFile, end(large.runId)?.output], [`out/${large.runId}.json`, undefined]);
    assert.deepEqual(await readdir(join(tmp.dir, 'runs', 'out')), [`${large.runId}.json`]);
    const again = await openEngine(tmp.dir);
    assert.equal(text(again.engine.history.readOutput(small.runId)?.stdout.head ?? Buffer.alloc(0)), 'ok\n');
    assert.equal(text(again.engine.history.readOutput(large.runId)?.stdout.head ?? Buffer.alloc(0)), 'x'.repeat(3000));
    assert.equal('output' in (again.engine.history.get(small.runId) ?? {}), false, 'the summary (history list) does not carry the output');
    await again.engine.close();
  });
});
