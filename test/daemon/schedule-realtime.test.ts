import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tlsFixtures } from '../helpers/tls-fixtures.js';
import { useChild } from '../helpers/fussyd.js';

interface Run {
  runId: string;
  queuedAt: string;
  status: string;
  trigger: { kind: string; job?: string; scheduledAt?: string };
}

describe('fussyd schedule, real time: a job every minute against a running bin/fussyd', function () {
  this.timeout(240_000);
  const c = useChild('fussyd-realtime-', { timeoutMs: 240_000 });

  it('every-minute: fires once per minute, at the minute, with the real clock', async function () {
    const f = await tlsFixtures();
    writeFileSync(join(c.work, 'tick.sh'), '#!/bin/sh\ndate -u +%H:%M:%S\n');
    assert.equal((await c.remote(f.clients['admin-cn'], ['put', 'tick.sh'])).exitCode, 0);
    const add = await c.remote(f.clients['admin-cn'], ['cron', 'add', 'tick', '* * * * *', 'tick.sh']);
    assert.equal(add.exitCode, 0, add.stderr);
    const added = Date.now();
    const ticks = async (): Promise<Run[]> => {
      const r = await c.remote(f.clients['viewer-cn'], ['history', '--json']);
      assert.equal(r.exitCode, 0, r.stderr);
      return (JSON.parse(r.stdout) as { runs: Run[] }).runs.filter((x) => x.trigger.kind === 'schedule' && x.trigger.job === 'tick').reverse();
    };
    let runs: Run[] = [];
    // Two firings come within two minutes of adding the job (the first at the next minute).
    for (const end = added + 150_000; Date.now() < end; await new Promise((r) => setTimeout(r, 1000))) {
      runs = await ticks();
      if (runs.length >= 2 && runs.every((x) => x.status === 'exited')) break;
    }
    // Wait well into the next minute's first half: no further run of these two minutes may come.
    const last = Date.parse(runs[1]?.trigger.scheduledAt ?? '');
    await new Promise((r) => setTimeout(r, Math.max(0, last + 20_000 - Date.now())));
    runs = (await ticks()).filter((x) => Date.parse(x.trigger.scheduledAt ?? '') <= last);
    assert.equal(runs.length, 2, JSON.stringify(runs));
    const at = runs.map((x) => Date.parse(x.trigger.scheduledAt ?? ''));
    assert.equal((at[1] ?? 0) - (at[0] ?? 0), 60_000, 'consecutive minutes');
    for (const [i, x] of runs.entries()) {
      assert.equal((at[i] ?? 0) % 60_000, 0, 'at the minute');
      const late = Date.parse(x.queuedAt) - (at[i] ?? 0);
      assert.ok(late >= 0 && late < 5_000, `run ${x.runId} queued ${late} ms after its minute`);
      assert.equal(x.status, 'exited');
    }
    assert.ok((at[0] ?? 0) > added - 2_000 && (at[0] ?? 0) <= added + 60_000, 'the first firing is the first minute after the job was added');
  });
});
