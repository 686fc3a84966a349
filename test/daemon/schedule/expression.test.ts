import assert from 'node:assert/strict';
import { FussyError } from '../../../src/errors.js';
import { nextFiring, nextFirings, parseSchedule } from '../../../src/daemon/schedule/expression.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const iso = (ds: Date[]): string[] => ds.map((d) => d.toISOString().replace('.000', ''));

function refused(text: string, message: RegExp, timezone?: string): void {
  assert.throws(
    () => parseSchedule(text, { now: NOW, timezone }),
    (err: unknown) => err instanceof FussyError && err.code === 'BAD_SCHEDULE' && err.exitCode === 2 && message.test(err.message) && err.hint !== undefined,
  );
}

describe('daemon schedule: expressions (five cron fields and Viri\'s year)', function () {
  it('five fields fire as cron does, in the job\'s time zone', function () {
    const s = parseSchedule('30 2 * * *', { timezone: 'UTC', now: NOW });
    assert.deepEqual(iso(nextFirings(s, NOW, 3)), ['2026-12-03T02:30:00Z', '2026-12-04T02:30:00Z', '2026-12-05T02:30:00Z']);
    const berlin = parseSchedule('30 2 * * *', { timezone: 'Europe/Berlin', now: NOW });
    assert.deepEqual(iso(nextFirings(berlin, NOW, 1)), ['2026-12-03T01:30:00Z']); // CET, UTC+1
  });

  it('year-field: a sixth field limits the years; the schedule ends after the last one', function () {
    const once = parseSchedule('0 3 1 1 * 2027', { timezone: 'UTC', now: NOW });
    assert.deepEqual(iso(nextFirings(once, NOW, 3)), ['2027-01-01T03:00:00Z']);
    assert.equal(nextFiring(once, new Date('2027-01-01T03:00:00Z')), undefined);
    const range = parseSchedule('0 0 1 1 * 2027-2029', { timezone: 'UTC', now: NOW });
    assert.deepEqual(iso(nextFirings(range, NOW, 5)), ['2027-01-01T00:00:00Z', '2028-01-01T00:00:00Z', '2029-01-01T00:00:00Z']);
  });

  it('day of month and day of week both given match either (Vixie cron), not both', function () {
    const s = parseSchedule('0 0 13 * 5', { timezone: 'UTC', now: NOW });
    // Fridays 4, 11, 18, 25 December 2026, and the 13th (a Sunday).
    assert.deepEqual(iso(nextFirings(s, NOW, 5)), ['2026-12-04T00:00:00Z', '2026-12-11T00:00:00Z', '2026-12-13T00:00:00Z', '2026-12-18T00:00:00Z', '2026-12-25T00:00:00Z']);
  });

  it('schedule-never-fires: February 30th, a year gone by, a year past the horizon are refused by name', function () {
    refused('0 3 30 2 *', /never fires after 2026-12-02/);
    refused('0 3 1 1 * 2020', /never fires after 2026-12-02/);
    refused('0 3 1 1 * 2200', /never fires after .* within 100 years/);
  });

  it('schedule-malformed: a wrong number of fields, a value out of range, a nickname, an unknown zone are refused with what to write', function () {
    refused('* * * *', /has 4 fields/);
    refused('0 0 * * * * *', /has 7 fields/);
    refused('', /has 0 fields/);
    refused('61 * * * *', /^schedule "61 \* \* \* \*": /);
    refused('0 25 * * *', /^schedule "0 25 \* \* \*": /);
    refused('@daily', /nicknames/);
    refused('0 3 * * *', /unknown time zone "Mars\/Olympus"/, 'Mars/Olympus');
  });

  describe('daylight saving (Europe/Berlin: 2027-03-28 02:00 -> 03:00, 2027-10-31 03:00 -> 02:00)', function () {
    const tz = 'Europe/Berlin';

    it('dst-skipped-hour: a job at 02:30 runs once on the day the hour is skipped, right after the gap', function () {
      const s = parseSchedule('30 2 * * *', { timezone: tz, now: NOW });
      const runs = nextFirings(s, new Date('2027-03-26T12:00:00Z'), 4);
      // 02:30 CET on the 27th, 03:00 CEST (the first minute after the gap) on the 28th, 02:30 CEST after.
      assert.deepEqual(iso(runs), ['2027-03-27T01:30:00Z', '2027-03-28T01:00:00Z', '2027-03-29T00:30:00Z', '2027-03-30T00:30:00Z']);
    });

    it('dst-repeated-hour: a job at 02:30 runs once on the day the hour repeats, at its first occurrence', function () {
      const s = parseSchedule('30 2 * * *', { timezone: tz, now: NOW });
      const runs = nextFirings(s, new Date('2027-10-30T12:00:00Z'), 3);
      assert.deepEqual(iso(runs), ['2027-10-31T00:30:00Z', '2027-11-01T01:30:00Z', '2027-11-02T01:30:00Z']);
    });

    it('an hourly job keeps its interval in real time across both changes: one firing per hour that passes', function () {
      const s = parseSchedule('0 * * * *', { timezone: tz, now: NOW });
      for (const from of ['2027-03-27T23:30:00Z', '2027-10-30T22:30:00Z']) {
        const runs = nextFirings(s, new Date(from), 5);
        for (let i = 1; i < runs.length; i++) assert.equal((runs[i] as Date).getTime() - (runs[i - 1] as Date).getTime(), 3_600_000, iso(runs).join(' '));
      }
    });
  });
});
