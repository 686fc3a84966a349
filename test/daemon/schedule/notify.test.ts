import assert from 'node:assert/strict';
import { afterRun, notifyPayload, TAIL_BYTES, type JobOutcome, type Streak } from '../../../src/daemon/schedule/notify.js';

describe('daemon schedule: notify on failure and on recovery', function () {
  it('notifies at the first failure of a streak and at the recovery, not at every failure; the streak counts', function () {
    let s: Streak = { failures: 0 };
    const seen: string[] = [];
    for (const o of ['ok', 'failed', 'timeout', 'failed', 'ok', 'ok', 'not-started', 'ok'] as JobOutcome[]) {
      const r = afterRun(s, o);
      s = r.streak;
      seen.push(`${o}:${s.failures}${r.notify === undefined ? '' : `:${r.notify}`}`);
    }
    assert.deepEqual(seen, ['ok:0', 'failed:1:failure', 'timeout:2', 'failed:3', 'ok:0:recovery', 'ok:0', 'not-started:1:failure', 'ok:0:recovery']);
  });

  it('the command gets the facts in its environment and as JSON on stdin, the output cut to its tail', function () {
    const long = `${'x'.repeat(10_000)}THE END`;
    const p = notifyPayload({ job: 'backup', event: 'failure', outcome: 'failed', exitStatus: 3, runId: 'r1', failures: 1, stdoutTail: long, stderrTail: 'disk full\0' });
    assert.equal(p.env.FUSSY_NOTIFY_JOB, 'backup');
    assert.equal(p.env.FUSSY_NOTIFY_EXIT_STATUS, '3');
    assert.equal(p.env.FUSSY_NOTIFY_SIGNAL, undefined);
    assert.ok(!(p.env.FUSSY_NOTIFY_OUTPUT_TAIL ?? '').includes('\0'));
    assert.match(p.env.FUSSY_NOTIFY_OUTPUT_TAIL ?? '', /THE ENDdisk full$/);
    const body = JSON.parse(p.stdin.toString('utf8')) as { stdoutTail: string; stderrTail: string; outcome: string };
    assert.equal(Buffer.byteLength(body.stdoutTail), TAIL_BYTES);
    assert.ok(body.stdoutTail.endsWith('THE END'));
    assert.equal(body.stderrTail, 'disk full\0');
    assert.equal(body.outcome, 'failed');
  });
});
