import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError } from '../../../src/errors.js';
import type { RunEngine } from '../../../src/daemon/runs/engine.js';
import type { RunSummary } from '../../../src/daemon/runs/records.js';
import { Scheduler } from '../../../src/daemon/schedule/scheduler.js';
import type { ScriptStore } from '../../../src/daemon/scripts.js';
import { makeTmp } from '../../helpers/tmp.js';
import { BY, openEngine } from '../runs/helpers.js';
import { FakeClock, settle } from './fake-clock.js';

const MIN = 60_000;

interface Rig {
  dir: string;
  stateDir: string;
  data: string;
  clock: FakeClock;
  engine: RunEngine;
  scripts: ScriptStore;
  sched: Scheduler;
  log: Array<Record<string, unknown>>;
  /** Store a shell script. */
  script: (name: string, body: string) => Promise<void>;
  /** The history, oldest first. */
  runs: () => RunSummary[];
  /** Let `ms` of fake time pass, then wait (real time) until `done` holds. */
  advance: (ms: number, done?: () => boolean) => Promise<void>;
  close: () => Promise<void>;
}

async function until(ok: () => boolean, what = 'the condition'): Promise<void> {
  for (const end = Date.now() + 30_000; !ok(); await new Promise((r) => setTimeout(r, 20))) if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

/** A scheduler on a real run engine (real processes), with a fake clock; `reopen` starts another on the same state, later. */
async function rig(start: string, o: { maxRuns?: number; target?: string; notify?: string; dir?: string; clock?: FakeClock; maxTimeoutS?: number } = {}): Promise<Rig> {
  const dir = o.dir ?? (await makeTmp('fussy-scheduler-'));
  const stateDir = join(dir, 'state');
  const clock = o.clock ?? new FakeClock(start);
  const { scripts, engine } = await openEngine(stateDir, { maxRuns: o.maxRuns ?? 4, target: o.target });
  const log: Array<Record<string, unknown>> = [];
  const sched = await Scheduler.open({ stateDir, engine, scripts, target: o.target, notify: o.notify, log: (e) => log.push(e), clock, random: () => 0, maxTimeoutS: o.maxTimeoutS });
  sched.start();
  const runs = (): RunSummary[] => engine.history.query({ limit: 1000 }).reverse();
  // The scheduler counts a firing (and records its outcome) when its run's promise settles, a
  // moment after the history says the run ended (the engine still holds the run while its end
  // record is written), longer on a loaded machine: time moved on before that would find the job
  // still running and skip its next firing (overlap: skip), and a look at the job would miss its
  // outcome. Caught up: every firing it counts is a job's run the engine holds and the history
  // does not have as ended yet.
  const caughtUp = (): boolean => {
    const live = engine.snapshot();
    const unended = [...live.running, ...live.queued].filter((id) => {
      const run = engine.history.get(id);
      return run?.trigger.kind === 'schedule' && run.endedAt === undefined;
    });
    return sched.list().jobs.reduce((n, j) => n + j.running, 0) <= unended.length;
  };
  return {
    dir,
    stateDir,
    data: join(stateDir, 'data'),
    clock,
    engine,
    scripts,
    sched,
    log,
    script: async (name, body) => void (await scripts.put(name, Buffer.from(`#!/bin/sh\n${body}\n`), BY)),
    runs,
    advance: async (ms, done) => {
      await until(caughtUp, 'the scheduler to see its runs end');
      await clock.advance(ms);
      if (done !== undefined) await until(done);
      await until(caughtUp, 'the scheduler to see its runs end');
      await settle();
    },
    close: async () => {
      sched.quiesce();
      await engine.close();
      await sched.stop();
    },
  };
}

/** A run (block.sh) holding a slot until data/go exists, and mark.sh, which appends its $1 to data/order. */
async function occupySlot(r: Rig): Promise<void> {
  await r.script('block.sh', 'while [ ! -e "$FUSSY_DATA_DIR/go" ]; do sleep 0.02; done');
  await r.script('mark.sh', 'echo "$1" >> "$FUSSY_DATA_DIR/order"');
  await r.engine.submit({ script: 'block.sh', trigger: { kind: 'user', ...BY } }).started;
}

const ended = (r: Rig, n: number, what?: (x: RunSummary) => boolean) => (): boolean => r.runs().filter((x) => x.endedAt !== undefined && (what?.(x) ?? true)).length >= n;

describe('daemon schedule: the scheduler in fussyd, its runs real, its clock injected', function () {
  it('a firing is a run like any other: the engine runs it (trigger schedule, caller schedule:JOB), and the position is on disk before it starts', async function () {
    const r = await rig('2027-05-01T10:02:30Z');
    try {
      await r.script('tick.sh', 'echo "caller=$FUSSY_CALLER"; cat "$1"');
      await r.sched.add({ name: 'tick', schedule: '*/5 * * * *', script: 'tick.sh', args: [join(r.stateDir, 'schedule.json')] });
      await r.advance(3 * MIN, ended(r, 1));
      const [run] = r.runs();
      assert.equal(run?.status, 'exited');
      assert.equal(run?.exitCode, 0);
      assert.deepEqual(run?.trigger, { kind: 'schedule', job: 'tick', origin: 'operator', reason: 'schedule', scheduledAt: '2027-05-01T10:05:00.000Z' });
      const out = r.engine.history.readOutput(run?.runId ?? '')?.stdout.head.toString() ?? '';
      assert.match(out, /^caller=schedule:tick\n/);
      // What the run read: the schedule file, already holding the firing's position.
      const saved = JSON.parse(out.slice(out.indexOf('\n') + 1)) as { state: Record<string, { handledUpTo: number }> };
      assert.ok((saved.state['operator:tick']?.handledUpTo ?? 0) >= Date.parse('2027-05-01T10:05:00Z'), 'written before the run started');
      assert.deepEqual(r.sched.list().jobs.map((j) => [j.name, j.origin, j.last?.outcome, j.failures, j.next[0]]), [['tick', 'operator', 'ok', 0, '2027-05-01T10:10:00.000Z']]);
    } finally {
      await r.close();
    }
  });

  it('missed-run policies across a restart: run-once runs once for three missed firings, skip records them and runs nothing', async function () {
    const r = await rig('2027-05-01T10:30:00Z');
    await r.script('hourly.sh', 'echo ran');
    await r.sched.add({ name: 'once', schedule: '0 * * * *', script: 'hourly.sh', missed: 'run-once' });
    await r.sched.add({ name: 'skip', schedule: '0 * * * *', script: 'hourly.sh' });
    await r.close(); // fussyd stops at 10:30; it starts again at 13:40
    r.clock.jump(3 * 60 * MIN + 10 * MIN);
    const again = await rig('', { dir: r.dir, clock: r.clock });
    try {
      await again.advance(1000, ended(again, 3));
      const byJob = (job: string): string[] => again.runs().filter((x) => x.trigger.kind === 'schedule' && x.trigger.job === job).map((x) => `${x.status}${x.trigger.kind === 'schedule' && x.trigger.reason === 'missed' ? ' (missed)' : ''}`);
      assert.deepEqual(byJob('once'), ['missed', 'exited (missed)']);
      assert.deepEqual(byJob('skip'), ['missed']);
      const missed = again.runs().find((x) => x.status === 'missed');
      assert.match(missed?.reason ?? '', /firings from 2027-05-01T11:00:00.000Z to 2027-05-01T13:00:00.000Z were missed/);
      await again.advance(30 * MIN, ended(again, 5));
      assert.deepEqual(byJob('skip'), ['missed', 'exited'], '14:00 runs on time');
    } finally {
      await again.close();
    }
  });

  it('priority queue under max-runs: firings that wait for the one slot start highest priority first, each wait in its history record', async function () {
    const r = await rig('2027-05-01T10:00:30Z', { maxRuns: 1 });
    try {
      await occupySlot(r);
      for (const [name, priority] of [['low', 1], ['high', 9], ['mid', 5]] as const) await r.sched.add({ name, schedule: '* * * * *', script: 'mark.sh', args: [name], priority });
      await r.advance(MIN, () => r.engine.snapshot().queued.length === 3);
      await new Promise((res) => setTimeout(res, 100));
      writeFileSync(join(r.data, 'go'), '');
      await until(ended(r, 4), 'the four runs');
      assert.deepEqual(readFileSync(join(r.data, 'order'), 'utf8').split('\n').filter(Boolean), ['high', 'mid', 'low']);
      const waits = r.runs().filter((x) => x.trigger.kind === 'schedule').map((x) => x.waitMs ?? -1);
      assert.ok(waits.every((w) => w >= 100), `every firing waited for the slot: ${waits.join(', ')}`);
    } finally {
      await r.close();
    }
  });

  it('queued-longer-than-period: a firing that waits for a slot past the next firing is skipped by the overlap policy, never queued twice (skip-flood: one history record a run)', async function () {
    const r = await rig('2027-05-01T10:00:30Z', { maxRuns: 1 });
    try {
      await occupySlot(r);
      await r.sched.add({ name: 'minutely', schedule: '* * * * *', script: 'mark.sh', args: ['m'] });
      await r.advance(MIN, () => r.engine.snapshot().queued.length === 1);
      await r.advance(2 * MIN, () => r.log.filter((e) => e.event === 'schedule-skipped').length === 2);
      assert.equal(r.engine.snapshot().queued.length, 1, 'still one run of the job waiting');
      writeFileSync(join(r.data, 'go'), '');
      await until(ended(r, 3), 'the runs');
      assert.deepEqual(readFileSync(join(r.data, 'order'), 'utf8'), 'm\n');
      // skip-flood: the history has the first skipped firing of the run in progress, the log each of them.
      assert.deepEqual(r.runs().map((x) => x.status).sort(), ['exited', 'exited', 'skipped']);
      await r.advance(MIN, ended(r, 4)); // the next firing runs, and a later overlap is recorded again
      assert.deepEqual(r.runs().map((x) => x.status).sort(), ['exited', 'exited', 'exited', 'skipped']);
    } finally {
      await r.close();
    }
  });

  it('notify on failure and on recovery, once each, with the facts in its environment and JSON on stdin; its own failure is recorded, never notified', async function () {
    const r = await rig('2027-05-01T10:00:30Z');
    try {
      // The job fails twice (exit 3, saying why), then recovers.
      await r.script('check.sh', 'n=$(cat "$FUSSY_DATA_DIR/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$FUSSY_DATA_DIR/n"; if [ $n -le 2 ]; then echo "disk almost full ($n)" >&2; exit 3; fi; echo fine');
      await r.script('alert.sh', 'echo "$FUSSY_NOTIFY_JOB $FUSSY_NOTIFY_EVENT $FUSSY_NOTIFY_OUTCOME exit=$FUSSY_NOTIFY_EXIT_STATUS failures=$FUSSY_NOTIFY_FAILURES caller=$FUSSY_CALLER" >> "$FUSSY_DATA_DIR/notified"; cat >> "$FUSSY_DATA_DIR/notified"; exit 1');
      await r.sched.add({ name: 'check', schedule: '* * * * *', script: 'check.sh', notify: 'alert.sh' });
      await r.advance(MIN, ended(r, 2)); // run 1 fails, its notify runs
      assert.deepEqual(r.sched.status().failing.map((f) => [f.name, f.failures]), [['check', 1]]);
      await r.advance(MIN, ended(r, 3)); // run 2 fails: no notify
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(r.runs().length, 3);
      assert.deepEqual(r.sched.status().failing.map((f) => [f.name, f.failures]), [['check', 2]]);
      await r.advance(MIN, ended(r, 5)); // run 3 recovers: notify
      await new Promise((res) => setTimeout(res, 200));
      const lines = readFileSync(join(r.data, 'notified'), 'utf8').split('\n').filter(Boolean);
      assert.equal(lines.length, 4, lines.join('\n'));
      assert.equal(lines[0], 'check failure failed exit=3 failures=1 caller=notify:check');
      const failure = JSON.parse(lines[1] ?? '{}') as Record<string, unknown>;
      assert.deepEqual([failure.job, failure.event, failure.outcome, failure.exitStatus, failure.failures, failure.stderrTail], ['check', 'failure', 'failed', 3, 1, 'disk almost full (1)\n']);
      assert.equal(lines[2], 'check recovery ok exit=0 failures=2 caller=notify:check');
      const notifies = r.runs().filter((x) => x.trigger.kind === 'notify');
      assert.deepEqual(notifies.map((x) => [x.trigger.kind === 'notify' ? x.trigger.event : '', x.status, x.exitCode]), [['failure', 'exited', 1], ['recovery', 'exited', 1]]);
      assert.equal(r.runs().length, 5, 'the failing notify runs were not notified about');
      assert.deepEqual(r.sched.status().failing, []);
    } finally {
      await r.close();
    }
  });

  it('overlap-skip with a real run: the firing is recorded skipped in the history, and cron run is refused JOB_BUSY meanwhile', async function () {
    const r = await rig('2027-05-01T10:00:30Z');
    try {
      await r.script('slow.sh', 'while [ ! -e "$FUSSY_DATA_DIR/go" ]; do sleep 0.02; done');
      await r.sched.add({ name: 'slow', schedule: '* * * * *', script: 'slow.sh' });
      await r.advance(MIN, () => r.engine.snapshot().running.length === 1);
      await r.advance(MIN, () => r.runs().some((x) => x.status === 'skipped'));
      const skipped = r.runs().find((x) => x.status === 'skipped');
      assert.equal(skipped?.script.name, 'slow.sh');
      assert.match(skipped?.reason ?? '', /firing of 2027-05-01T10:02:00.000Z came while a run of the job was in progress/);
      assert.throws(() => r.sched.runNow('slow', 'operator-cn'), (e: unknown) => e instanceof FussyError && e.code === 'JOB_BUSY' && e.exitCode === 75);
      writeFileSync(join(r.data, 'go'), '');
      await until(ended(r, 2));
      await until(() => r.sched.list().jobs[0]?.running === 0, 'the firing to end');
      const manual = r.sched.runNow('slow', 'operator-cn');
      const rec = await manual.submitted.done;
      assert.deepEqual(rec.trigger, { kind: 'schedule', job: 'slow', origin: 'operator', reason: 'manual', cn: 'operator-cn' });
    } finally {
      await r.close();
    }
  });

  it('firmware jobs: run from their release; a swap of current reloads them; a malformed jobs file, or a current that cannot be resolved, is in status (and history), and the other jobs go on', async function () {
    const dir = await makeTmp('fussy-scheduler-fw-');
    const target = join(dir, 'firmware');
    const release = (name: string, jobs: string | undefined): void => {
      mkdirSync(join(target, name, 'etc/fussy'), { recursive: true });
      mkdirSync(join(target, name, 'usr/lib/maint'), { recursive: true });
      writeFileSync(join(target, name, 'usr/lib/maint/where'), `#!/bin/sh\necho "${name} $(pwd) $*" >> "$FUSSY_DATA_DIR/where"\n`, { mode: 0o755 });
      if (jobs !== undefined) writeFileSync(join(target, name, 'etc/fussy/jobs.json'), jobs);
    };
    const swap = (name: string): void => {
      symlinkSync(name, join(target, 'current.new'));
      renameSync(join(target, 'current.new'), join(target, 'current'));
    };
    release('rel-a', JSON.stringify({ jobs: [{ name: 'rotate', schedule: '* * * * *', command: 'usr/lib/maint/where', args: ['rotate'] }] }));
    release('rel-b', JSON.stringify({ jobs: [{ name: 'backup', schedule: '* * * * *', command: 'usr/lib/maint/where', args: ['backup'] }, { name: 'escape', schedule: '* * * * *', command: '../rel-a/usr/lib/maint/where' }] }));
    release('rel-c', '{"jobs": [');
    swap('rel-a');
    const r = await rig('2027-05-01T10:00:30Z', { dir, target });
    try {
      await r.script('op.sh', 'echo op >> "$FUSSY_DATA_DIR/where"');
      await r.sched.add({ name: 'op', schedule: '* * * * *', script: 'op.sh' });
      const names = (): string[] => r.sched.list().jobs.map((j) => `${j.origin}:${j.name}`).sort();
      assert.deepEqual(names(), ['firmware:rotate', 'operator:op']);
      await r.advance(MIN, ended(r, 2));
      swap('rel-b');
      r.sched.checkCurrent();
      assert.deepEqual(names(), ['firmware:backup', 'operator:op']);
      assert.match(r.sched.status().problems.join('\n'), /entry 2: job escape: "command" "\.\.\/rel-a\/usr\/lib\/maint\/where" is not a path inside the release/);
      await r.advance(MIN, ended(r, 5));
      swap('rel-c');
      r.sched.checkCurrent();
      assert.deepEqual(names(), ['operator:op']);
      assert.match(r.sched.status().problems.join('\n'), /rel-c\/etc\/fussy\/jobs\.json is not valid JSON/);
      await r.advance(MIN, ended(r, 7));
      const where = readFileSync(join(r.data, 'where'), 'utf8').split('\n').filter(Boolean).sort();
      assert.deepEqual(where, ['op', 'op', 'op', `rel-a ${join(target, 'rel-a')} rotate`, `rel-b ${join(target, 'rel-b')} backup`].sort());
      const invalid = r.runs().filter((x) => x.status === 'invalid');
      assert.deepEqual(invalid.map((x) => [x.release, x.script.name]), [['rel-b', 'etc/fussy/jobs.json'], ['rel-c', 'etc/fussy/jobs.json']]);
      const fw = r.runs().find((x) => x.trigger.kind === 'schedule' && x.trigger.job === 'backup');
      assert.deepEqual([fw?.script.name, fw?.release, fw?.status], ['usr/lib/maint/where', 'rel-b', 'exited']);
      assert.ok(!existsSync(join(r.stateDir, 'schedule.json')) || !readFileSync(join(r.stateDir, 'schedule.json'), 'utf8').includes('firmware:rotate'), "a dropped firmware job's state is pruned");
      // current-unresolvable: a link loop where current was is a problem in status, the operator's job goes on, and fixing it loads the jobs again.
      rmSync(join(target, 'current'));
      symlinkSync('current', join(target, 'current'));
      r.sched.checkCurrent();
      assert.deepEqual(names(), ['operator:op']);
      assert.match(r.sched.status().problems.join('\n'), /current cannot be resolved \(ELOOP\): the firmware's jobs are not loaded/);
      await r.advance(MIN, ended(r, 8));
      rmSync(join(target, 'current'));
      swap('rel-a');
      r.sched.checkCurrent();
      assert.deepEqual(names(), ['firmware:rotate', 'operator:op']);
    } finally {
      await r.close();
    }
  });

  it('cancelled-at-shutdown: a firing still waiting for a run slot when fussyd stops is given back, and run-once runs it at the next start', async function () {
    const r = await rig('2027-05-01T02:59:30Z', { maxRuns: 1 });
    await occupySlot(r);
    await r.script('nightly.sh', 'echo nightly');
    await r.sched.add({ name: 'nightly', schedule: '0 3 * * *', script: 'nightly.sh', missed: 'run-once' });
    await r.advance(MIN, () => r.engine.snapshot().queued.length === 1);
    await r.close(); // the blocker is interrupted, nightly's run cancelled before it started
    assert.deepEqual(r.runs().map((x) => x.status).sort(), ['cancelled', 'interrupted']);
    r.clock.jump(20 * MIN);
    const again = await rig('', { dir: r.dir, clock: r.clock });
    try {
      await again.advance(1000, ended(again, 4));
      const nightly = again.runs().filter((x) => x.trigger.kind === 'schedule' && x.trigger.job === 'nightly');
      assert.deepEqual(nightly.map((x) => [x.status, x.trigger.kind === 'schedule' ? x.trigger.reason : '']), [['cancelled', 'schedule'], ['missed', 'schedule'], ['exited', 'missed']]);
    } finally {
      await again.close();
    }
  });

  it('one-shot-after-its-time: a job limited to one instant stays a job after it (no problem), and a firing of it missed while the device was off runs once', async function () {
    const r = await rig('2026-12-31T12:00:00Z');
    await r.script('newyear.sh', 'echo happy');
    await r.sched.add({ name: 'newyear', schedule: '0 0 1 1 * 2027', script: 'newyear.sh', missed: 'run-once', timezone: 'UTC' });
    await r.close();
    r.clock.jump(3 * 24 * 60 * MIN); // the device was off over New Year
    const again = await rig('', { dir: r.dir, clock: r.clock });
    try {
      await again.advance(1000, ended(again, 2));
      assert.deepEqual(again.sched.problems(), []);
      const [job] = again.sched.list().jobs;
      assert.deepEqual([job?.name, job?.next, job?.last?.outcome], ['newyear', [], 'ok']);
      assert.deepEqual(again.runs().map((x) => x.status), ['missed', 'exited']);
    } finally {
      await again.close();
    }
  });

  it('cron-ls-flood: a list of 600 jobs asked for 100 next firings each computes at most 1,000 beyond the loop\'s own', async function () {
    const dir = await makeTmp('fussy-scheduler-many-');
    mkdirSync(join(dir, 'state'), { mode: 0o750 });
    const jobs = Array.from({ length: 600 }, (_, i) => ({ name: `job-${i}`, schedule: `${i % 60} ${i % 24} * * *`, script: 'x.sh' }));
    writeFileSync(join(dir, 'state', 'schedule.json'), JSON.stringify({ version: 1, jobs, state: {} }), { mode: 0o600 });
    const r = await rig('2027-05-01T10:00:30Z', { dir });
    try {
      const list = r.sched.list(100);
      assert.equal(list.jobs.length, 600);
      assert.ok(list.jobs.every((j) => j.next.length === 2), 'one kept by the loop, one computed');
      assert.equal(r.sched.next('job-7', 100).next.length, 100, 'next gives more of one job');
    } finally {
      await r.close();
    }
  });

  it('a job that could never run is refused when added: a time limit past max-run-timeout, args past 4 KiB of JSON', async function () {
    const r = await rig('2027-05-01T10:00:30Z', { maxTimeoutS: 600 });
    try {
      await r.script('x.sh', 'true');
      await assert.rejects(r.sched.add({ name: 'long', schedule: '0 3 * * *', script: 'x.sh', timeout: 601 }), (e: unknown) => e instanceof FussyError && e.code === 'BAD_JOB' && /"timeout" is not a whole number from 1 to 600/.test(e.message));
      await assert.rejects(r.sched.add({ name: 'big', schedule: '0 3 * * *', script: 'x.sh', args: ['a'.repeat(3000), 'b'.repeat(3000)] }), (e: unknown) => e instanceof FussyError && e.code === 'BAD_JOB' && /at most 4096 bytes as JSON/.test(e.message));
      assert.deepEqual(r.sched.list().jobs, []);
    } finally {
      await r.close();
    }
  });

  it('removed-while-running: a job removed during its run and added again starts with no streak (no false recovery)', async function () {
    const r = await rig('2027-05-01T10:00:30Z');
    try {
      await r.script('fail.sh', 'while [ ! -e "$FUSSY_DATA_DIR/go" ]; do sleep 0.02; done; exit 1');
      await r.sched.add({ name: 'j', schedule: '* * * * *', script: 'fail.sh' });
      await r.advance(MIN, () => r.engine.snapshot().running.length === 1);
      await r.sched.remove('j');
      writeFileSync(join(r.data, 'go'), '');
      await until(ended(r, 1));
      await settle();
      await r.sched.add({ name: 'j', schedule: '0 3 * * *', script: 'fail.sh' });
      assert.equal(r.sched.list().jobs[0]?.failures, 0);
      assert.equal(r.sched.list().jobs[0]?.last, undefined);
    } finally {
      await r.close();
    }
  });
});
