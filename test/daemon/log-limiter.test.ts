import assert from 'node:assert/strict';
import { LogLimiter } from '../../src/daemon/log-limiter.js';

describe('LogLimiter: what clients without a certificate can make fussyd log is bounded', function () {
  it('handshake-refusal-log-flood: 1,000 refused handshakes in a window log 20 lines and one count; the next window logs again', function () {
    let t = 0;
    const counts: number[] = [];
    const l = new LogLimiter(20, 60_000, (n) => counts.push(n), () => t);
    let logged = 0;
    for (let i = 0; i < 1000; i++) if (l.allow()) logged++;
    assert.equal(logged, 20);
    assert.deepEqual(counts, [], 'the count comes when the window ends');
    t = 60_000;
    assert.equal(l.allow(), true, 'a new window');
    assert.deepEqual(counts, [980]);
    l.flush();
    assert.deepEqual(counts, [980], 'nothing more was left out');
  });

  it('the count is logged when the window ends even if the flood stopped (a timer), and never twice', async function () {
    const counts: number[] = [];
    const l = new LogLimiter(1, 50, (n) => counts.push(n));
    assert.equal(l.allow(), true);
    assert.equal(l.allow(), false);
    assert.equal(l.allow(), false);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(counts, [2]);
    l.flush();
    assert.deepEqual(counts, [2]);
  });
});
