import { nextFiring, type Schedule } from './expression.js';

/**
 * The loop that fires scheduled jobs (docs/daemon.md, "Schedules: the loop"). It owns time and
 * nothing else: when a firing is due it calls `fire` (the caller submits a run to the engine and
 * resolves when the run has ended) and tells `record` what it did or decided not to do. The
 * clock is injected, so every rule below is tested without waiting.
 *
 * - It sleeps until the earliest next firing of all jobs (no polling each second), but never
 *   longer than `maxSleepMs` (60 s): the wall clock is re-read at least that often, so a clock
 *   step (NTP after boot, a suspend) is noticed within a minute. A wake-up with nothing due
 *   costs one comparison per job (the next firings are kept, evaluated again only when passed).
 * - Each job has a position: every scheduled instant up to it has been handled (fired, skipped
 *   or found missed). A firing is due when its instant is past the position and not in the
 *   future. The caller keeps positions across restarts (`positions()`, and `handledUpTo` when it
 *   sets the jobs), which is how a firing missed while the daemon or the device was down is known.
 * - On time: a due firing at most `lateToleranceMs` (60 s) old fires. Missed: older due firings
 *   (daemon down, device asleep, the clock jumped forward, often by years on a device without an
 *   RTC) never fire one by one: with the missed policy `skip` (the default) they are recorded as
 *   one `missed` event; with `run-once` the job runs once for all of them, unless an on-time
 *   firing runs now anyway.
 * - The clock went back: a step back of at most `backwardResetMs` (24 h: a DST setting applied
 *   late, an NTP correction) never fires an instant at or before a job's position again, so no
 *   run repeats; a longer one (a reset RTC, a clock corrected from years ahead) moves the
 *   positions back to the new time (recorded as a `clock` event), or the jobs would stay silent
 *   for as long as the step.
 * - Overlap: while a job's run (or its random delay, or its wait for a run slot) is in progress,
 *   a firing of it is skipped and recorded (`overlap: 'skip'`, the default), or starts another
 *   run (`'allow'`); a firing is never queued twice.
 */
export interface SchedulerClock {
  /** The wall clock, ms since the epoch (Date.now). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};

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

export type LoopEvent =
  | ({ type: 'fire' } & Firing)
  | { type: 'skip'; job: string; scheduledAt: number; why: 'overlap' }
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
        this.#jobs.set(job.name, { job, position: job.handledUpTo ?? now, active: 0, next: undefined, ended: false });
        continue;
      }
      // The same object: its firings in progress count it down as they end.
      Object.assign(was, { job, position: job.handledUpTo ?? was.position, next: undefined, ended: false });
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

  positions(): JobPosition[] {
    return [...this.#jobs.values()].map((s) => ({ name: s.job.name, handledUpTo: s.position, next: s.next, active: s.active }));
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
        if (first <= tolerance) {
          const last = lastBefore(job.schedule, first, due ?? now, tolerance);
          this.#o.record({ type: 'missed', job: job.name, first, last, policy: job.missed ?? 'skip' });
          if (due === undefined && job.missed === 'run-once') this.#fire(s, last, 'missed');
        }
        if (due !== undefined) this.#fire(s, due, 'schedule');
      }
      s.position = now;
    }
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
    const delayMs = Math.floor(this.#o.random() * (s.job.randomDelayS ?? 0) * 1000);
    s.active++;
    const firing: Firing = { job: name, scheduledAt, reason, delayMs };
    const run = (async (): Promise<void> => {
      if (delayMs > 0) await this.#delay(delayMs);
      if (!this.#running) return;
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

/**
 * The latest firing in [first, limit) that is at most `tolerance` (older than it counts as
 * missed): found by walking forward from `first` a few steps, then by looking just before the
 * tolerance line, so a clock that jumped years ahead costs a handful of evaluations, not one a
 * minute of the gap.
 */
function lastBefore(s: Schedule, first: number, limit: number, tolerance: number): number {
  let last = first;
  for (let i = 0; i < 8; i++) {
    const n = nextFiring(s, new Date(last))?.getTime();
    if (n === undefined || n > tolerance || n >= limit) return last;
    last = n;
  }
  // Many missed firings: the last one is in the last period before the tolerance line.
  for (let back = 60_000; back <= 400 * 24 * 3600_000; back *= 4) {
    const from = Math.max(last, tolerance - back);
    const n = nextFiring(s, new Date(from))?.getTime();
    if (n !== undefined && n <= tolerance && n < limit) {
      let cand = n;
      for (let m = nextFiring(s, new Date(cand))?.getTime(); m !== undefined && m <= tolerance && m < limit; m = nextFiring(s, new Date(cand))?.getTime()) cand = m;
      return cand;
    }
  }
  return last;
}
