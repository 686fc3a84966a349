import assert from 'node:assert/strict';
import { chmod } from 'node:fs/promises';
import { useTmp } from '../../helpers/tmp.js';
import { openEngine, runOnce, text } from './helpers.js';

describe('daemon runs: run-as and the environment of a run', function () {
  const tmp = useTmp();

  it('run-as nobody: the child has uid and gid 65534, no supplementary groups, and only the minimal environment', async function () {
    if (process.getuid?.() !== 0) this.skip();
    await chmod(tmp.dir, 0o755); // the run's user must reach its data directory under the temp dir
    process.env.FUSSY_TEST_SECRET = 'must-not-leak';
    try {
      const { engine, scripts } = await openEngine(tmp.dir, { runAs: 'nobody' });
      const r = await runOnce(engine, scripts, 'who.sh', '#!/bin/sh\nid -u; id -g\ngrep "^Groups:" /proc/self/status\npwd\nenv | sort\n');
      const lines = text(r.output.stdout.head).split('\n');
      assert.deepEqual([r.status, r.exitCode, text(r.output.stderr.head)], ['exited', 0, '']);
      assert.deepEqual(lines.slice(0, 3).map((l) => l.trim().replace(/\s+/g, ' ')), ['65534', '65534', 'Groups:']);
      assert.equal(lines[3], `${tmp.dir}/data`);
      const names = lines.slice(4).filter((l) => l !== '').map((l) => l.split('=')[0]);
      assert.deepEqual(names.filter((n) => n !== 'PWD'), ['FUSSY_CALLER', 'FUSSY_DATA_DIR', 'FUSSY_FIRMWARE', 'FUSSY_RUN_ID', 'HOME', 'LANG', 'PATH']);
      assert.ok(lines.includes(`FUSSY_RUN_ID=${r.runId}`) && lines.includes('FUSSY_CALLER=alice') && lines.includes('HOME=/nonexistent') && lines.includes('LANG=C.UTF-8'));
      await engine.close();
    } finally {
      delete process.env.FUSSY_TEST_SECRET;
    }
  });
});
