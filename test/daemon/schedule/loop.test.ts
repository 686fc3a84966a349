import assert from 'node:assert/strict';
import { parseSchedule } from '../../../src/daemon/schedule/expression.js';
import { ScheduleLoop, type Firing, type LoopEvent, type LoopJob } from '../../../src/daemon/schedule/loop.js';
import { FakeClock } from './fake-clock.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 16);

function harness(start: string, jobs: Array<Partial<LoopJob> & { name: string; expr: string; tz?: string }>, o: { runMs?: number; random?: () => number; maxSleepMs?: number } = {}) {
  const clock = new FakeClock(start);
  const fired: Firing[] = [];
  const events: LoopEvent[] = [];
  const loop = new ScheduleLoop({
    clock,
    record: (e) => events.push(e),
    random: o.random ?? (() => 0),
    ...(o.maxSleepMs === undefined ? {} : { maxSleepMs: o.maxSleepMs }),
    fire: async (f) => {
      fired.push(f);
      if (o.runMs !== undefined) await new Promise<void>((res) => clock.setTimeout(res, o.runMs as number));
    },
  });
  const set = jobs.map((j) => ({ enabled: true, ...j, schedule: parseSchedule(j.expr, { timezone: j.tz ?? 'UTC', now: new Date(clock.wall) }) }));
  loop.set(set);
  const schedules = new Map(set.map((j) => [j.name, j.schedule]));
  loop.start();
  const at = (): string[] => fired.map((f) => `${iso(f.scheduledAt)}${f.reason === 'missed' ? ' missed' : ''}`);
  return { clock, fired, events, loop, at, schedules };
}

/** Stop the loop; its runs in progress end as the fake time passes. */
async function finish(h: { clock: FakeClock; loop: ScheduleLoop }): Promise<void> {
  const stopped = h.loop.stop();
  await h.clock.advance(10 * MIN);
  await stopped;
}

describe('daemon schedule: the loop, with an injected clock', function () {
  it('fires each firing once, on time, and sleeps until the next one (no polling each second)', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'm', expr: '*/15 * * * *' }]);
    assert.equal(h.clock.timers.length, 1);
    assert.equal(h.clock.timers[0]?.at, MIN); // 10:15 is further than maxSleep: the clock is read again in a minute, not each second
    let wakes = 0;
    const set = h.clock.setTimeout;
    h.clock.setTimeout = (fn, ms) => set(() => (wakes++, fn()), ms);
    await h.clock.advance(HOUR);
    assert.ok(wakes <= 60 + 4, `${wakes} wake-ups in an hour`);
    assert.deepEqual(h.at(), ['2027-05-01T10:15', '2027-05-01T10:30', '2027-05-01T10:45', '2027-05-01T11:00']);
    await h.loop.stop();
  });

  it('year-field: a job limited to 2027 fires in 2027 and then never again', async function () {
    const h = harness('2026-12-31T23:00:00Z', [{ name: 'y', expr: '0 0 1 * * 2027' }], { maxSleepMs: 40 * 24 * HOUR });
    for (let i = 0; i < 14; i++) await h.clock.advance(32 * 24 * HOUR);
    assert.equal(h.fired.length, 12);
    assert.equal(h.at()[0], '2027-01-01T00:00');
    assert.equal(h.at()[11], '2027-12-01T00:00');
    assert.equal(h.loop.positions()[0]?.next, undefined);
    await h.loop.stop();
  });

  it('a schedule whose years have passed, or that cannot be evaluated, costs no evaluation at later wake-ups', async function () {
    const h = harness('2027-12-31T23:58:30Z', [{ name: 'y', expr: '* * * * * 2027' }, { name: 'broken', expr: '0 * * * *' }]);
    const counted = (name: string): { calls: number } => {
      const cron = h.schedules.get(name)?.cron;
      const c = { calls: 0 };
      const next = cron?.nextRun.bind(cron);
      if (cron !== undefined && next !== undefined)
        cron.nextRun = (d) => {
          c.calls++;
          if (name === 'broken') throw new Error('cannot evaluate');
          return next(d);
        };
      return c;
    };
    const y = counted('y');
    const broken = counted('broken');
    await h.clock.advance(2 * MIN); // 23:59 fires; 00:00 is 2028
    assert.deepEqual(h.at(), ['2027-12-31T23:59']);
    assert.equal(h.events.filter((e) => e.type === 'error').length, 1);
    const [yCalls, brokenCalls] = [y.calls, broken.calls];
    await h.clock.advance(10 * MIN);
    assert.deepEqual([y.calls, broken.calls], [yCalls, brokenCalls], 'no evaluation once ended');
    assert.equal(h.events.filter((e) => e.type === 'error').length, 1, 'the broken job is reported once');
    await h.loop.stop();
  });

  it('overlap-skip: a firing while the job still runs is skipped and recorded, never queued', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'slow', expr: '* * * * *' }], { runMs: 150_000 });
    await h.clock.advance(5 * MIN);
    // 10:01 runs until 10:03:30; 10:02 and 10:03 are skipped; 10:04 runs.
    assert.deepEqual(h.at(), ['2027-05-01T10:01', '2027-05-01T10:04']);
    const skipped = h.events.filter((e) => e.type === 'skip').map((e) => (e.type === 'skip' ? iso(e.scheduledAt) : ''));
    assert.deepEqual(skipped, ['2027-05-01T10:02', '2027-05-01T10:03', '2027-05-01T10:05']);
    await finish(h);
  });

  it('reload-during-run: jobs set again while a run is in progress still see its end (later firings are not skipped forever)', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'slow', expr: '* * * * *' }], { runMs: 90_000 });
    await h.clock.advance(MIN); // 10:01 runs until 10:02:30
    h.loop.set([{ name: 'slow', enabled: true, schedule: parseSchedule('* * * * *', { timezone: 'UTC' }) }]); // a reload (a current swap, an operator's change)
    await h.clock.advance(4 * MIN);
    assert.deepEqual(h.at(), ['2027-05-01T10:01', '2027-05-01T10:03', '2027-05-01T10:05']);
    await finish(h);
  });

  it('overlap allow: another run starts beside the one still running', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'slow', expr: '* * * * *', overlap: 'allow' }], { runMs: 150_000 });
    await h.clock.advance(3 * MIN);
    assert.deepEqual(h.at(), ['2027-05-01T10:01', '2027-05-01T10:02', '2027-05-01T10:03']);
    await finish(h);
  });

  it('missed-run skip (the default): firings missed while the daemon was down are recorded, not run', async function () {
    const down = Date.parse('2027-05-01T07:30:00Z');
    const h = harness('2027-05-01T10:20:00Z', [{ name: 'hourly', expr: '0 * * * *', handledUpTo: down }]);
    await h.clock.advance(30 * MIN);
    assert.deepEqual(h.at(), []);
    const missed = h.events.filter((e) => e.type === 'missed');
    assert.equal(missed.length, 1);
    assert.deepEqual(missed[0] && missed[0].type === 'missed' ? [iso(missed[0].first), iso(missed[0].last), missed[0].policy] : [], ['2027-05-01T08:00', '2027-05-01T10:00', 'skip']);
    await h.clock.advance(HOUR);
    assert.deepEqual(h.at(), ['2027-05-01T11:00']);
    await h.loop.stop();
  });

  it('missed-run run-once: one run after start-up for all the firings missed, then the schedule', async function () {
    const down = Date.parse('2027-05-01T07:30:00Z');
    const h = harness('2027-05-01T10:20:00Z', [{ name: 'hourly', expr: '0 * * * *', handledUpTo: down, missed: 'run-once' }]);
    await h.clock.advance(HOUR);
    assert.deepEqual(h.at(), ['2027-05-01T10:00 missed', '2027-05-01T11:00']);
    await h.loop.stop();
  });

  it('clock-jump-forward: NTP moving a clock years ahead fires no burst of missed runs', async function () {
    const h = harness('1970-01-01T00:00:10Z', [
      { name: 'every-minute', expr: '* * * * *' },
      { name: 'catch-up', expr: '0 3 * * *', missed: 'run-once' },
    ]);
    await h.clock.advance(2 * MIN);
    assert.equal(h.fired.length, 2);
    h.clock.jump(Date.parse('2027-05-01T10:00:30Z') - h.clock.wall); // 57 years
    await h.clock.advance(MIN); // noticed within maxSleep
    const after = h.at().slice(2);
    // Noticed at 10:01:20 (the loop slept 50 s towards 00:03): 10:00 is missed, 10:01 on time; the daily job runs once for its missed 03:00.
    assert.deepEqual(after, ['2027-05-01T10:01', '2027-05-01T03:00 missed']);
    assert.equal(h.events.filter((e) => e.type === 'missed').length, 2);
    await h.loop.stop();
  });

  it('clock-jump-back: a clock set back an hour repeats no run; its firings resume past the last one', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'm', expr: '*/10 * * * *' }]);
    await h.clock.advance(HOUR);
    assert.equal(h.fired.length, 6); // 10:10 .. 11:00
    h.clock.jump(-HOUR);
    await h.clock.advance(80 * MIN);
    const times = h.fired.map((f) => f.scheduledAt);
    assert.deepEqual([...new Set(times)], times, 'no instant fired twice');
    assert.deepEqual(h.at().slice(6), ['2027-05-01T11:10', '2027-05-01T11:20']);
    await h.loop.stop();
  });

  it('clock-jump-back by more than a day (a reset RTC): the jobs follow the new time instead of going silent', async function () {
    const h = harness('2031-01-01T00:00:30Z', [{ name: 'm', expr: '0 * * * *' }]);
    await h.clock.advance(HOUR);
    h.clock.jump(Date.parse('2027-05-01T10:00:30Z') - h.clock.wall);
    await h.clock.advance(2 * HOUR);
    assert.deepEqual(h.at(), ['2031-01-01T01:00', '2027-05-01T11:00', '2027-05-01T12:00']);
    assert.equal(h.events.filter((e) => e.type === 'clock').length, 1);
    await h.loop.stop();
  });

  it('rtc-less-boot: a device that starts in 1970 and is set right by NTP finds no missed firings from before its last run', async function () {
    const shutdown = Date.parse('2026-12-01T10:00:00Z');
    // fussyd went down at 10:00 after the weekly run of the Tuesday before; the device boots with its clock at the epoch.
    const h = harness('1970-01-01T00:00:30Z', [{ name: 'weekly', expr: '0 3 * * 2', missed: 'run-once', handledUpTo: shutdown }]);
    await h.clock.advance(MIN);
    assert.equal(h.events.filter((e) => e.type === 'clock').length, 1, 'the jobs follow the clock meanwhile');
    h.clock.jump(shutdown + 2 * MIN - h.clock.wall); // NTP: two minutes after the shutdown
    await h.clock.advance(MIN);
    assert.deepEqual([h.at(), h.events.filter((e) => e.type === 'missed')], [[], []], 'nothing missed since 1970');
    assert.equal(h.loop.positions()[0]?.handledUpTo, h.clock.wall, 'what is kept is the high-water mark');
    h.clock.jump(8 * 24 * HOUR); // then really down for a week
    await h.clock.advance(MIN);
    const missed = h.events.filter((e) => e.type === 'missed');
    assert.deepEqual(missed.map((e) => (e.type === 'missed' ? iso(e.first) : '')), ['2026-12-08T03:00']);
    assert.deepEqual(h.at(), ['2026-12-08T03:00 missed']);
    await finish(h);
  });

  it('missed-scan-cost: the last of 64,000 missed firings of an every-minute-in-January job is found without walking them', async function () {
    const h = harness('2027-02-15T10:00:30Z', [{ name: 'jan', expr: '* * * 1 *', missed: 'run-once', handledUpTo: Date.parse('2027-01-01T00:00:00Z') }]);
    await h.clock.advance(1000);
    const missed = h.events.find((e) => e.type === 'missed');
    assert.deepEqual(missed?.type === 'missed' ? [iso(missed.first), iso(missed.last)] : [], ['2027-01-01T00:01', '2027-01-31T23:59']);
    assert.deepEqual(h.at(), ['2027-01-31T23:59 missed']);
    await finish(h);
  });

  it('overlap-allow-limit: a hung job with overlap allow has at most 4 runs in progress; later firings are skipped, not queued forever', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'hung', expr: '* * * * *', overlap: 'allow' }], { runMs: 20 * MIN });
    await h.clock.advance(6 * MIN);
    assert.equal(h.fired.length, 4);
    assert.deepEqual(h.events.filter((e) => e.type === 'skip').map((e) => (e.type === 'skip' ? e.why : '')), ['overlap-limit', 'overlap-limit']);
    const stopped = h.loop.stop();
    await h.clock.advance(30 * MIN);
    await stopped;
  });

  it('stopped-during-delay: a firing still in its random delay when the loop stops is given back (missed at the next start, not lost)', async function () {
    const h = harness('2027-05-01T02:59:30Z', [{ name: 'nightly', expr: '0 3 * * *', randomDelayS: 3600, missed: 'run-once' }], { random: () => 0.5 });
    await h.clock.advance(10 * MIN); // 03:00 fires into a 30-minute delay
    await h.loop.stop();
    assert.equal(h.fired.length, 0);
    assert.equal(h.loop.positions()[0]?.handledUpTo, Date.parse('2027-05-01T03:00:00Z') - 1);
  });

  it('dst-both-ways: a 02:30 job in Europe/Berlin runs once on the day the hour is skipped and once on the day it repeats', async function () {
    for (const [day, expected] of [
      ['2027-03-27T12:00:00Z', ['2027-03-28T01:00']], // 02:30 does not exist: the first minute after the gap, 03:00 CEST
      ['2027-10-30T12:00:00Z', ['2027-10-31T00:30']], // 02:30 CEST, the first of the two
    ] as const) {
      const h = harness(day, [{ name: 'd', expr: '30 2 * * *', tz: 'Europe/Berlin' }]);
      await h.clock.advance(24 * HOUR);
      assert.deepEqual(h.at(), expected);
      await h.loop.stop();
    }
  });

  it('a disabled job does not fire, and enabling it does not make up for the time it was off', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'm', expr: '*/10 * * * *', enabled: false }]);
    await h.clock.advance(HOUR);
    assert.equal(h.fired.length, 0);
    h.loop.set([{ name: 'm', enabled: true, schedule: parseSchedule('*/10 * * * *', { timezone: 'UTC' }) }]);
    await h.clock.advance(15 * MIN);
    assert.deepEqual(h.at(), ['2027-05-01T11:10']);
    assert.equal(h.events.filter((e) => e.type === 'missed').length, 0);
    await h.loop.stop();
  });

  it('random delay: the run is submitted up to N seconds after its instant, and counts as running meanwhile', async function () {
    const h = harness('2027-05-01T10:00:30Z', [{ name: 'fleet', expr: '* * * * *', randomDelayS: 90 }], { random: () => 0.9 });
    await h.clock.advance(MIN);
    assert.equal(h.fired.length, 0); // 10:01 + 81 s
    await h.clock.advance(MIN);
    assert.equal(h.fired.length, 1);
    assert.equal(h.fired[0]?.delayMs, 81_000);
    assert.ok(h.events.some((e) => e.type === 'skip'), 'the 10:02 firing met the delayed 10:01 one');
    await h.clock.advance(5 * MIN);
    await h.loop.stop();
  });
});
