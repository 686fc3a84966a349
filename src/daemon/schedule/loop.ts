import { systemClock, type SchedulerClock } from './clock.js';
import { nextFiring, previousFiring, type Schedule } from './expression.js';

/**
 * The loop that fires scheduled jobs. It owns time and nothing else: when a firing is due it
 * calls `fire` (the caller submits a run and resolves when it has ended) and tells `record` what
 * it did or decided not to do. The clock is injected, so every rule is tested without waiting;
 * the rules are docs/daemon.md's "The loop, and time", in short:
 * - It sleeps until the earliest next firing, at most `maxSleepMs` (60 s, so a clock step is
 *   seen within a minute); a wake-up with nothing due is one comparison a job (next firings kept).
 * - A job's position: every instant up to it was handled (fired, skipped, found missed); its
 *   high-water mark: the furthest position it ever had, which is what the caller keeps across
 *   restarts (`positions()`, `handledUpTo`). On time: at most `lateToleranceMs` (60 s) late.
 *   Older due firings past the high-water mark are missed: one `missed` event, and with
 *   `run-once` one run for all of them. So a clock jumping forward fires no burst, and a device
 *   without an RTC that boots in 1970 finds nothing missed from before its last run.
 * - The clock went back at most `backwardResetMs` (24 h): nothing at or before a position fires
 *   again. Further: positions follow the clock (a `clock` event), the high-water marks stay.
 * - Overlap: a firing while one of the same job is in progress (delay, queue, run) is skipped
 *   (`skip`), or runs beside it (`allow`, up to MAX_ALLOWED_OVERLAP in progress); never queued twice.
 * - A firing still in its random delay when the loop stops is given back (`rewind` does it for
 *   the caller's runs that never started): the next start finds it missed, not lost.
 */
export { systemClock, type SchedulerClock } from './clock.js';

export type OverlapPolicy = 'skip' | 'allow';
export type MissedPolicy = 'skip' | 'run-once';

export interface LoopJob {
  name: string;
  schedule: Schedule;
  enabled: boolean;
  overlap?: OverlapPolicy;
  missed?: MissedPolicy;
  /** Each firing waits a random 0..this many seconds before its run is submitted. */
  randomDelayS?: number;
  /** Every instant up to this (ms) was handled before (kept by the caller); default: now, or the job's current position. */
  handledUpTo?: number;
}

export interface Firing {
  job: string;
  /** The scheduled instant (ms); for a missed run, the latest missed one. */
  scheduledAt: number;
  reason: 'schedule' | 'missed';
  /** The random delay waited before submitting (ms). */
  delayMs: number;
}

/** Runs of one job with `overlap: 'allow'` in progress at most. */
export const MAX_ALLOWED_OVERLAP = 4;

export type LoopEvent =
  | ({ type: 'fire' } & Firing)
  | { type: 'skip'; job: string; scheduledAt: number; why: 'overlap' | 'overlap-limit' }
  | { type: 'missed'; job: string; first: number; last: number; policy: MissedPolicy }
  | { type: 'clock'; job: string; from: number; to: number }
  | { type: 'error'; job: string; message: string };

export interface LoopOptions {
  clock?: SchedulerClock;
  /** Submit the run; resolves (or rejects) when it has ended. */
  fire: (f: Firing) => Promise<void>;
  record: (e: LoopEvent) => void;
  /** [0, 1), for the random delay. */
  random?: () => number;
  lateToleranceMs?: number;
  maxSleepMs?: number;
  backwardResetMs?: number;
}

interface JobState {
  job: LoopJob;
  position: number;
  /** The furthest position it ever had (a long step back of the clock moves the position, not this). */
  high: number;
  /** Firings of it in progress (random delay, queued, running). */
  active: number;
  next: number | undefined;
  /** Enabled, and its schedule has no firing after its position (its year field has passed), or could not be evaluated. */
  ended: boolean;
}

export interface JobPosition {
  name: string;
  handledUpTo: number;
  next: number | undefined;
  active: number;
}

export class ScheduleLoop {
  readonly #o: Required<Omit<LoopOptions, 'fire' | 'record'>> & Pick<LoopOptions, 'fire' | 'record'>;
  readonly #jobs = new Map<string, JobState>();
  #timer: unknown;
  #running = false;
  readonly #inFlight = new Set<Promise<void>>();
  /** Random delays in progress: stop() ends them (their runs are not submitted). */
  readonly #delays = new Set<{ timer: unknown; end: () => void }>();

  constructor(o: LoopOptions) {
    this.#o = { ...o, clock: o.clock ?? systemClock, random: o.random ?? Math.random, lateToleranceMs: o.lateToleranceMs ?? 60_000, maxSleepMs: o.maxSleepMs ?? 60_000, backwardResetMs: o.backwardResetMs ?? 24 * 3600_000 };
  }

  /**
   * Replace the set of jobs (a reload). A job that stays (same name) keeps its position and its
   * runs in progress, unless `handledUpTo` is given; a new one starts at now.
   */
  set(jobs: LoopJob[]): void {
    const now = this.#o.clock.now();
    const old = new Map(this.#jobs);
    this.#jobs.clear();
    for (const job of jobs) {
      const was = old.get(job.name);
      if (was === undefined) {
        const position = job.handledUpTo ?? now;
        this.#jobs.set(job.name, { job, position, high: position, active: 0, next: undefined, ended: false });
        continue;
      }
      // The same object: its firings in progress count it down as they end.
      const position = job.handledUpTo ?? was.position;
      Object.assign(was, { job, position, high: job.handledUpTo ?? was.high, next: undefined, ended: false });
      this.#jobs.set(job.name, was);
    }
    if (this.#running) this.#tick();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#tick();
  }

  /** Stop firing; resolves when the firings in progress have ended. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const d of this.#delays) {
      this.#o.clock.clearTimeout(d.timer);
      d.end();
    }
    await Promise.allSettled([...this.#inFlight]);
  }

  /**
   * Count a run of `name` started outside the loop (an operator's `cron run`) as in progress
   * until `done` settles, so the overlap policy applies to it too. False: no such job.
   */
  hold(name: string, done: Promise<unknown>): boolean {
    const s = this.#jobs.get(name);
    if (s === undefined) return false;
    s.active++;
    void done.finally(() => s.active--).catch(() => undefined);
    return true;
  }

  /** Runs of `name` in progress (its random delay, its wait for a slot, its run), as counted by the loop. */
  active(name: string): number {
    return this.#jobs.get(name)?.active ?? 0;
  }

  /** Each job's position to keep across a restart (its high-water mark), its next firing, its firings in progress. */
  positions(): JobPosition[] {
    return [...this.#jobs.values()].map((s) => ({ name: s.job.name, handledUpTo: Math.max(s.position, s.high), next: s.next, active: s.active }));
  }

  /** The next firing the loop keeps for `name` (undefined: none, disabled, or not looked at yet). */
  nextOf(name: string): number | undefined {
    return this.#jobs.get(name)?.next;
  }

  /** Give firings of `name` after `to` back (a run of it that never started): the next look, or the next start, finds them due or missed. */
  rewind(name: string, to: number): void {
    const s = this.#jobs.get(name);
    if (s === undefined) return;
    this.#giveBack(s, to);
  }

  #giveBack(s: JobState, to: number): void {
    s.position = Math.min(s.position, to);
    s.high = Math.min(s.high, to);
    s.next = undefined;
    s.ended = false;
  }

  #tick(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#running) return;
    const now = this.#o.clock.now();
    let wake = now + this.#o.maxSleepMs;
    for (const s of this.#jobs.values()) {
      try {
        this.#advance(s, now);
      } catch (err) {
        // A job whose schedule cannot be evaluated must not stop the others.
        s.position = now;
        s.high = Math.max(s.high, now);
        s.next = undefined;
        s.ended = true; // reported once, not at every wake-up; set() gives it another chance
        this.#o.record({ type: 'error', job: s.job.name, message: (err as Error).message });
      }
      if (s.next !== undefined && s.next < wake) wake = s.next;
    }
    this.#timer = this.#o.clock.setTimeout(() => this.#tick(), Math.max(0, wake - now));
  }

  /** Handle every instant of one job up to `now`, and find its next firing. */
  #advance(s: JobState, now: number): void {
    const { job } = s;
    // Nothing due since the last look (its next firing was computed from the position), or nothing
    // ever again (a year field passed; a step back of the clock takes the full path): no evaluation.
    if (job.enabled && s.position <= now && (s.ended || (s.next !== undefined && now < s.next))) {
      s.position = now;
      s.high = Math.max(s.high, now);
      return;
    }
    if (now < s.position) {
      if (s.position - now > this.#o.backwardResetMs) {
        this.#o.record({ type: 'clock', job: job.name, from: s.position, to: now });
        s.position = now;
      }
      // else: instants up to the position were handled already; nothing repeats.
    } else if (!job.enabled) {
      s.position = now; // enabling it later does not make up for the time it was off
    } else {
      const first = nextFiring(job.schedule, new Date(s.position))?.getTime();
      if (first !== undefined && first <= now) {
        const tolerance = now - this.#o.lateToleranceMs;
        const onTime = first > tolerance ? first : nextFiring(job.schedule, new Date(Math.max(s.position, tolerance)))?.getTime();
        const due = onTime !== undefined && onTime <= now ? onTime : undefined;
        // Missed: older than the tolerance, and past the high-water mark (handled before a long step back of the clock).
        const missedFirst = first <= tolerance && s.high > s.position ? nextFiring(job.schedule, new Date(s.high))?.getTime() : first;
        if (missedFirst !== undefined && missedFirst <= tolerance && (due === undefined || missedFirst < due)) {
          const last = lastBefore(job.schedule, missedFirst, due ?? now, tolerance);
          this.#o.record({ type: 'missed', job: job.name, first: missedFirst, last, policy: job.missed ?? 'skip' });
          if (due === undefined && job.missed === 'run-once') this.#fire(s, last, 'missed');
        }
        if (due !== undefined) this.#fire(s, due, 'schedule');
      }
      s.position = now;
    }
    s.high = Math.max(s.high, s.position);
    s.next = job.enabled ? nextFiring(job.schedule, new Date(Math.max(s.position, now)))?.getTime() : undefined;
    s.ended = job.enabled && s.next === undefined;
  }

  #delay(ms: number): Promise<void> {
    return new Promise<void>((res) => {
      const d = {
        timer: undefined as unknown,
        end: (): void => {
          this.#delays.delete(d);
          res();
        },
      };
      d.timer = this.#o.clock.setTimeout(d.end, ms);
      this.#delays.add(d);
    });
  }

  #fire(s: JobState, scheduledAt: number, reason: Firing['reason']): void {
    const name = s.job.name;
    if (s.active > 0 && (s.job.overlap ?? 'skip') === 'skip') {
      this.#o.record({ type: 'skip', job: name, scheduledAt, why: 'overlap' });
      return;
    }
    if (s.active >= MAX_ALLOWED_OVERLAP) {
      this.#o.record({ type: 'skip', job: name, scheduledAt, why: 'overlap-limit' });
      return;
    }
    const delayMs = Math.floor(this.#o.random() * (s.job.randomDelayS ?? 0) * 1000);
    s.active++;
    const firing: Firing = { job: name, scheduledAt, reason, delayMs };
    const run = (async (): Promise<void> => {
      if (delayMs > 0) await this.#delay(delayMs);
      if (!this.#running) {
        this.#giveBack(s, scheduledAt - 1); // stopped during its delay: found missed at the next start, not lost
        return;
      }
      this.#o.record({ type: 'fire', ...firing });
      await this.#o.fire(firing);
    })()
      .catch((err: unknown) => this.#o.record({ type: 'error', job: name, message: (err as Error).message }))
      .finally(() => {
        s.active--;
        this.#inFlight.delete(run);
      });
    this.#inFlight.add(run);
  }
}

/** The latest firing in [first, limit) that is at most `tolerance` (older than it counts as missed); `first` when there is none later. */
function lastBefore(s: Schedule, first: number, limit: number, tolerance: number): number {
  const last = previousFiring(s, new Date(Math.min(tolerance + 1, limit)))?.getTime();
  return last !== undefined && last >= first ? last : first;
}
