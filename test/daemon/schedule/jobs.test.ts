import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FussyError } from '../../../src/errors.js';
import { parseJob, readFirmwareJobs } from '../../../src/daemon/schedule/jobs.js';

const NOW = new Date('2026-12-02T12:00:00Z');

describe('daemon schedule: job definitions (operator jobs and etc/fussy/jobs.json)', function () {
  let dir: string;
  let release: string;
  beforeEach(function () {
    dir = mkdtempSync(join(tmpdir(), 'fussy-jobs-'));
    release = join(dir, 'rel-2');
    mkdirSync(join(release, 'etc/fussy'), { recursive: true });
    mkdirSync(join(release, 'usr/lib/maint'), { recursive: true });
    writeFileSync(join(release, 'usr/lib/maint/rotate'), '#!/bin/sh\necho rotated\n', { mode: 0o755 });
  });
  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });
  const jobsFile = (doc: unknown): void => writeFileSync(join(release, 'etc/fussy/jobs.json'), typeof doc === 'string' ? doc : JSON.stringify(doc));

  it('an operator job with every field, and its defaults', function () {
    const j = parseJob({ name: 'backup', schedule: '0 3 * * * 2027', script: 'backup.sh', args: ['--full'], timezone: 'Europe/Berlin', priority: 5, timeout: 600, overlap: 'allow', missed: 'run-once', randomDelay: 30, notify: 'alert.sh' }, { origin: 'operator', now: NOW });
    assert.deepEqual({ ...j, schedule: j.schedule.text }, { name: 'backup', origin: 'operator', schedule: '0 3 * * * 2027', script: 'backup.sh', args: ['--full'], enabled: true, priority: 5, timeoutS: 600, overlap: 'allow', missed: 'run-once', randomDelayS: 30, notify: 'alert.sh' });
    const d = parseJob({ name: 'h', schedule: '@hourly'.replace('@hourly', '0 * * * *'), script: 'h.sh' }, { origin: 'operator', now: NOW });
    assert.deepEqual([d.enabled, d.priority, d.overlap, d.missed, d.randomDelayS, d.timeoutS], [true, 0, 'skip', 'skip', 0, undefined]);
  });

  it('refuses nonsense naming the job and the field (BAD_JOB, exit 2)', function () {
    const refused = (raw: unknown, re: RegExp, code = 'BAD_JOB'): void =>
      assert.throws(() => parseJob(raw, { origin: 'operator', now: NOW }), (e: unknown) => e instanceof FussyError && e.code === code && e.exitCode === 2 && re.test(e.message) && e.hint !== undefined);
    refused({ schedule: '* * * * *', script: 's' }, /no valid "name"/);
    refused({ name: '../x', schedule: '* * * * *', script: 's' }, /no valid "name"/);
    refused({ name: 'a', schedule: '* * * * *' }, /job a: has no "script"/);
    refused({ name: 'a', shedule: '* * * * *', script: 's' }, /unknown field "shedule"/);
    refused({ name: 'a', schedule: '* * * * *', script: 's', priority: 1.5 }, /"priority" is not a whole number/);
    refused({ name: 'a', schedule: '* * * * *', script: 's', overlap: 'queue' }, /"overlap" is not one of skip, allow/);
    refused({ name: 'a', schedule: '* * * * *', script: 's', args: ['ok', 3] }, /"args" is not a list/);
    refused({ name: 'a', schedule: '0 0 30 2 *', script: 's' }, /never fires/, 'BAD_SCHEDULE');
    refused({ name: 'a', schedule: '* * * * *', script: 'x'.repeat(5000) }, /"script" is not a non-empty string of at most 4096 bytes/);
    refused({ name: 'a', schedule: `${'1,'.repeat(3000)}1 * * * *`, script: 's' }, /"schedule" is not a non-empty string of at most 4096 bytes/);
  });

  it('a firmware job runs a program of its release: its command is resolved inside the release', function () {
    jobsFile({ jobs: [{ name: 'rotate', schedule: '*/5 * * * *', command: 'usr/lib/maint/rotate', args: ['-v'] }] });
    const { jobs, problems } = readFirmwareJobs(release, NOW);
    assert.deepEqual(problems, []);
    assert.equal(jobs[0]?.command, join(release, 'usr/lib/maint/rotate'));
    assert.equal(jobs[0]?.origin, 'firmware');
  });

  it('firmware-command-escape: absolute paths, "..", and symlinks leading out of the release are refused', function () {
    writeFileSync(join(dir, 'outside'), '#!/bin/sh\n', { mode: 0o755 });
    symlinkSync('../../../../outside', join(release, 'usr/lib/maint/out'));
    symlinkSync('rotate', join(release, 'usr/lib/maint/in'));
    jobsFile({
      jobs: [
        { name: 'abs', schedule: '* * * * *', command: '/bin/sh' },
        { name: 'dotdot', schedule: '* * * * *', command: 'usr/../../outside' },
        { name: 'link-out', schedule: '* * * * *', command: 'usr/lib/maint/out' },
        { name: 'link-in', schedule: '* * * * *', command: 'usr/lib/maint/in' },
        { name: 'notify-out', schedule: '* * * * *', command: 'usr/lib/maint/rotate', notify: 'usr/lib/maint/out' },
      ],
    });
    const { jobs, problems } = readFirmwareJobs(release, NOW);
    assert.deepEqual(jobs.map((j) => j.name), ['link-in']);
    assert.equal(problems.length, 4);
    assert.match(problems[0] ?? '', /entry 1: job abs: "command" "\/bin\/sh" is not a path inside the release/);
    assert.match(problems[1] ?? '', /entry 2: job dotdot: .* is not a path inside the release/);
    assert.match(problems[2] ?? '', /entry 3: job link-out: "command" usr\/lib\/maint\/out leads outside the release/);
    assert.match(problems[3] ?? '', /entry 5: job notify-out: "notify" .* leads outside the release/);
  });

  it('firmware-command-swap: a command in a directory others can write (a local user could swap the program) is refused', function () {
    mkdirSync(join(release, 'var/shared'), { recursive: true, mode: 0o777 });
    chmodSync(join(release, 'var/shared'), 0o777);
    writeFileSync(join(release, 'var/shared/job'), '#!/bin/sh\n', { mode: 0o755 });
    jobsFile({ jobs: [{ name: 'swap', schedule: '* * * * *', command: 'var/shared/job' }] });
    const { jobs, problems } = readFirmwareJobs(release, NOW);
    assert.deepEqual(jobs, []);
    assert.match(problems[0] ?? '', /job swap's command \(var\/shared\/job\)/);
    assert.match(problems[0] ?? '', /writable/);
  });

  it('jobs-file-swap: a jobs file others can write, or in a directory a local user owns, is not loaded (it could name a shell of the release)', function () {
    writeFileSync(join(release, 'usr/lib/maint/sh'), '#!/bin/sh\n', { mode: 0o755 });
    jobsFile({ jobs: [{ name: 'evil', schedule: '* * * * *', command: 'usr/lib/maint/sh', args: ['-c', 'id > /tmp/owned'] }] });
    chmodSync(join(release, 'etc/fussy/jobs.json'), 0o666);
    let r = readFirmwareJobs(release, NOW);
    assert.deepEqual(r.jobs, []);
    assert.match(r.problems[0] ?? '', /the firmware's jobs file .*jobs\.json is not safe to use: .*writable.*its jobs are not loaded/);
    chmodSync(join(release, 'etc/fussy/jobs.json'), 0o644);
    assert.equal(readFirmwareJobs(release, NOW).jobs.length, 1, 'the same file, safe again, is loaded');
    if (process.getuid?.() !== 0) return; // chown needs root (CI runs as root)
    chownSync(join(release, 'etc/fussy'), 65534, 65534);
    r = readFirmwareJobs(release, NOW);
    assert.deepEqual(r.jobs, []);
    assert.match(r.problems[0] ?? '', /not safe to use: .*etc\/fussy.* owned by/);
  });

  it('malformed-jobs-file: a file that does not parse gives no jobs and one problem; a bad entry is left out, the others kept', function () {
    assert.deepEqual(readFirmwareJobs(release, NOW), { jobs: [], problems: [] }); // no file: nothing to say
    jobsFile('{"jobs": [');
    let r = readFirmwareJobs(release, NOW);
    assert.deepEqual(r.jobs, []);
    assert.match(r.problems[0] ?? '', /jobs\.json is not valid JSON/);
    jobsFile({ job: [] });
    assert.match(readFirmwareJobs(release, NOW).problems[0] ?? '', /has no "jobs" list/);
    chmodSync(join(release, 'usr/lib/maint/rotate'), 0o644);
    writeFileSync(join(release, 'usr/lib/maint/ok'), '#!/bin/sh\n', { mode: 0o755 });
    jobsFile({ jobs: [{ name: 'a', schedule: '61 * * * *', command: 'usr/lib/maint/ok' }, { name: 'b', schedule: '* * * * *', command: 'usr/lib/maint/rotate' }, { name: 'c', schedule: '* * * * *', command: 'usr/lib/maint/ok' }, { name: 'c', schedule: '0 * * * *', command: 'usr/lib/maint/ok' }] });
    r = readFirmwareJobs(release, NOW);
    assert.deepEqual(r.jobs.map((j) => j.name), ['c']);
    assert.equal(r.problems.length, 3);
    assert.match(r.problems[1] ?? '', /job b: "command" usr\/lib\/maint\/rotate is not an executable file/);
    assert.match(r.problems[2] ?? '', /job c: is declared twice/);
  });

  it('planted-jobs-file: a symlink at etc/fussy/jobs.json is not followed', function () {
    writeFileSync(join(dir, 'evil.json'), JSON.stringify({ jobs: [{ name: 'x', schedule: '* * * * *', command: 'usr/lib/maint/rotate' }] }));
    symlinkSync(join(dir, 'evil.json'), join(release, 'etc/fussy/jobs.json'));
    const r = readFirmwareJobs(release, NOW);
    assert.deepEqual(r.jobs, []);
    assert.match(r.problems[0] ?? '', /is a symlink/);
  });
});
