import assert from 'node:assert/strict';
import { useTmp } from '../../helpers/tmp.js';
import { groupMembers, killGroup, openEngine, runOnce, text } from './helpers.js';

describe('daemon runs: a time limit ends the whole process group (anchors §9 item 7)', function () {
  const tmp = useTmp();

  it('timeout kills the grandchildren too, one of them trapping SIGTERM, although they hold stdout open', async function () {
    const { engine, scripts } = await openEngine(tmp.dir, { graceMs: 1000 });
    const body = "#!/bin/sh\nsh -c 'trap \"\" TERM; echo trapping; sleep 1000; sleep 1000' &\nsleep 1000 &\nsleep 1000\n";
    const r = await runOnce(engine, scripts, 'tree.sh', body, { timeoutMs: 1000 });
    try {
      assert.deepEqual([r.status, r.timedOut, r.signal], ['timeout', true, 'SIGTERM']);
      assert.equal(text(r.output.stdout.head), 'trapping\n');
      assert.deepEqual(groupMembers(r.pid as number), [], 'no process of the group remains when the record is final');
    } finally {
      killGroup(r.pid);
    }
    await engine.close();
  });
});
