import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FussyError } from '../../../src/errors.js';
import { JobStore, stateKey } from '../../../src/daemon/schedule/store.js';

describe('daemon schedule: the job store (STATE/schedule.json)', function () {
  let dir: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'fussy-jobstore-'));
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });
  const code = (c: string) => (e: unknown) => e instanceof FussyError && e.code === c && e.hint !== undefined;

  it('operator jobs and every job\'s state survive a restart; the file is 0600', async function () {
    const s = await JobStore.open(dir);
    await s.add({ name: 'backup', schedule: '0 3 * * *', script: 'backup.sh' });
    await s.add({ name: 'health', schedule: '*/5 * * * *', script: 'health.sh', priority: 9 });
    await s.setEnabled('backup', false);
    await s.saveState({ [stateKey({ origin: 'firmware', name: 'rotate' })]: { handledUpTo: 1_800_000_000_000, failures: 2 } });
    assert.equal(statSync(s.file).mode & 0o777, 0o600);
    const again = await JobStore.open(dir);
    const { jobs, problems } = again.jobs();
    assert.deepEqual(problems, []);
    assert.deepEqual(jobs.map((j) => [j.name, j.enabled, j.priority]), [['backup', false, 0], ['health', true, 9]]);
    assert.deepEqual(again.state('firmware:rotate'), { handledUpTo: 1_800_000_000_000, failures: 2 });
    assert.deepEqual(again.state('operator:backup'), { failures: 0 });
    await again.remove('health');
    assert.deepEqual((await JobStore.open(dir)).jobs().jobs.map((j) => j.name), ['backup']);
  });

  it('refuses a second job of the same name, an unknown one, and nonsense, changing nothing', async function () {
    const s = await JobStore.open(dir);
    await s.add({ name: 'backup', schedule: '0 3 * * *', script: 'backup.sh' });
    const before = statSync(s.file).mtimeMs;
    await assert.rejects(s.add({ name: 'backup', schedule: '0 4 * * *', script: 'x.sh' }), code('ALREADY_EXISTS'));
    await assert.rejects(s.remove('nope'), code('NOT_FOUND'));
    await assert.rejects(s.setEnabled('nope', true), code('NOT_FOUND'));
    await assert.rejects(s.add({ name: 'feb30', schedule: '0 0 30 2 *', script: 'x.sh' }), code('BAD_SCHEDULE'));
    assert.equal(statSync(s.file).mtimeMs, before);
    assert.equal((await JobStore.open(dir)).jobs().jobs.length, 1);
  });

  it('schedule-save-failure: a job whose write fails is neither on disk nor held, and the store goes on', async function () {
    const s = await JobStore.open(dir);
    await s.add({ name: 'backup', schedule: '0 3 * * *', script: 'backup.sh' });
    rmSync(dir, { recursive: true }); // the state directory gone: every write fails
    await assert.rejects(s.add({ name: 'health', schedule: '*/5 * * * *', script: 'h.sh' }), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
    await assert.rejects(s.setEnabled('backup', false), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
    await assert.rejects(s.remove('backup'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT');
    assert.deepEqual(s.jobs().jobs.map((j) => [j.name, j.enabled]), [['backup', true]]);
    mkdirSync(dir);
    await s.add({ name: 'health', schedule: '*/5 * * * *', script: 'h.sh' });
    assert.deepEqual((await JobStore.open(dir)).jobs().jobs.map((j) => j.name), ['backup', 'health']);
  });

  it('operator-job-flood: past the most jobs kept, adding one is refused (TOO_LARGE) and nothing changes', async function () {
    const s = await JobStore.open(dir, undefined, 2);
    await s.add({ name: 'a', schedule: '0 3 * * *', script: 'a.sh' });
    await s.add({ name: 'b', schedule: '0 4 * * *', script: 'b.sh' });
    await assert.rejects(s.add({ name: 'c', schedule: '0 5 * * *', script: 'c.sh' }), code('TOO_LARGE'));
    assert.equal((await JobStore.open(dir)).jobs().jobs.length, 2);
  });

  it('damaged-schedule-file: a file that cannot be read is moved aside and named, never overwritten', async function () {
    writeFileSync(join(dir, 'schedule.json'), '{"version": 1, "jobs": [');
    const s = await JobStore.open(dir, () => new Date('2027-01-02T03:04:05Z'));
    assert.equal(s.problems.length, 1);
    assert.match(s.problems[0] ?? '', /moved to .*schedule\.json\.damaged-20270102T030405/);
    assert.ok(!existsSync(join(dir, 'schedule.json')));
    await s.add({ name: 'new', schedule: '0 3 * * *', script: 'n.sh' });
    assert.deepEqual(readdirSync(dir).sort(), ['schedule.json', 'schedule.json.damaged-20270102T030405000Z']);
  });
});
