import { Cron } from 'croner';
import { FussyError } from '../../errors.js';

/**
 * A job's schedule (docs/daemon.md, "Schedules"): five cron fields, minute hour day-of-month
 * month day-of-week, plus Viri's optional sixth field, the year. Parsed by croner (its 7-part
 * form, seconds fixed at 0), evaluated in the job's time zone (default: the device's). This
 * module only answers "when"; the loop that fires jobs, with its clock, is its caller's.
 *
 * Daylight saving, as croner does it with `fixedTimeRule: "no-wildcard"` (Vixie cron's rule): a
 * fixed-time job (no `*` and no step in its minute and hour, e.g. `30 2 * * *`, `0 2,14 * * *`)
 * whose time falls in the hour that is skipped runs once, at the first minute after the gap; in
 * the hour that repeats, it runs once, at the first occurrence. Any other job keeps its interval
 * in real time: it has no firings in the skipped hour, and fires in both copies of the repeated
 * one (an hourly job fires every hour that passes).
 */
export interface Schedule {
  /** The expression as given (whitespace normalized). */
  text: string;
  /** An IANA zone name; undefined: the device's. */
  timezone?: string;
  readonly cron: Cron;
}

/** How far ahead a schedule must fire at least once to be accepted: past this it is a date that never comes. */
const HORIZON_YEARS = 100;

function bad(text: string, why: string, hint: string): FussyError {
  return new FussyError('BAD_SCHEDULE', `schedule "${text.slice(0, 120)}": ${why}`, { hint, details: { schedule: text.slice(0, 200) } });
}

const FIELDS_HINT = 'five fields: minute hour day-of-month month day-of-week (e.g. "30 2 * * *"), and an optional sixth, the year ("0 3 1 1 * 2027")';

/** Whether `zone` is a time zone this system knows (Intl's list, from the ICU data node ships). */
function knownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch (err) {
    if (err instanceof RangeError) return false;
    throw err;
  }
}

/**
 * Parse and check a schedule: the fields, the time zone, and that it fires at least once in the
 * next 100 years after `now` (February 30th, or a year gone by, never does). Throws BAD_SCHEDULE
 * naming what is wrong. `ended: 'accept'` (a job read back from schedule.json or a release's
 * jobs.json): a schedule whose last firing has passed is accepted; one that never fires is not.
 */
export function parseSchedule(text: string, o: { timezone?: string; now?: Date; ended?: 'refuse' | 'accept' } = {}): Schedule {
  const fields = text.trim().split(/\s+/).filter((f) => f !== '');
  const shown = fields.join(' ');
  if (fields.some((f) => f.startsWith('@'))) throw bad(shown, 'nicknames (@daily, ...) are not accepted', FIELDS_HINT);
  if (fields.length !== 5 && fields.length !== 6) throw bad(shown, `has ${fields.length} field${fields.length === 1 ? '' : 's'}`, FIELDS_HINT);
  if (o.timezone !== undefined && !knownZone(o.timezone)) throw bad(shown, `names the unknown time zone "${o.timezone.slice(0, 60)}"`, 'use an IANA zone name such as Europe/Berlin or UTC, or leave it out for the device\'s');
  const [minute, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string | undefined];
  let cron: Cron;
  try {
    cron = new Cron(`0 ${minute} ${hour} ${dom} ${month} ${dow} ${year ?? '*'}`, {
      mode: '7-part',
      timezone: o.timezone,
      // Vixie cron: a day-of-month and a day-of-week both given match either (OR).
      domAndDow: false,
      fixedTimeRule: 'no-wildcard',
      paused: true,
    });
  } catch (err) {
    if (!(err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError)) throw err;
    throw bad(shown, err.message.replace(/^CronPattern: /, ''), FIELDS_HINT);
  }
  if (o.ended === 'accept') {
    // A stored job whose years have passed is over, not wrong (it stays listed, and a firing missed while the device was off is still found); one that never fires at all is wrong.
    if (cron.nextRun(new Date(0)) === null) throw bad(shown, 'never fires', 'check the day of month against the month (February has no 30th) and the year field');
    return { text: shown, timezone: o.timezone, cron };
  }
  const now = o.now ?? new Date();
  const first = cron.nextRun(now);
  const horizon = new Date(now.getTime());
  horizon.setUTCFullYear(horizon.getUTCFullYear() + HORIZON_YEARS);
  if (first === null || first > horizon) throw bad(shown, `never fires after ${now.toISOString()}${first === null ? '' : ` within ${HORIZON_YEARS} years`}`, 'check the day of month against the month (February has no 30th) and the year field');
  return { text: shown, timezone: o.timezone, cron };
}

/** The next `count` firings strictly after `after`, in order (fewer if the schedule ends, e.g. by its year field). */
export function nextFirings(s: Schedule, after: Date, count: number): Date[] {
  return s.cron.nextRuns(count, after);
}

/** The first firing strictly after `after`, or undefined when there is none. */
export function nextFiring(s: Schedule, after: Date): Date | undefined {
  return s.cron.nextRun(after) ?? undefined;
}

/**
 * The last firing strictly before `before`, or undefined (croner walks back field by field: a
 * schedule of every minute in January, looked back on from February, is one step, not 44,640).
 */
export function previousFiring(s: Schedule, before: Date): Date | undefined {
  return s.cron.previousRuns(1, before)[0];
}
