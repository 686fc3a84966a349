import { FussyError, isSystemError } from '../../errors.js';
import type { RunEngine, Submitted } from '../runs/engine.js';
import type { Trigger } from '../runs/records.js';
import type { ScriptStore } from '../scripts.js';
import type { Log } from '../server.js';
import { currentJobs, currentSignature, FIRMWARE_JOBS_FILE, type CurrentJobs, type JobSpec } from './jobs.js';
import { ScheduleLoop, systemClock, type Firing, type SchedulerClock } from './loop.js';
import { JobRunner } from './runner.js';
import { JobStore, stateKey, type JobState, type LastRun } from './store.js';
import { jobView, type JobView } from './views.js';

export interface SchedulerOptions {
  stateDir: string;
  engine: RunEngine;
  scripts: ScriptStore;
  /** The firmware target: its `current` release's etc/fussy/jobs.json declares the firmware's jobs. */
  target?: string;
  /** The notify command of jobs that name none (fussyd.conf's schedule-notify): a stored script. */
  notify?: string;
  log: Log;
  clock?: SchedulerClock;
  random?: () => number;
  /** How often `current` is looked at for a swap (2000 ms). */
  watchIntervalMs?: number;
  maxJobs?: number;
  /** max-run-timeout (s): a job asking more is refused when read. */
  maxTimeoutS?: number;
}

export interface Job {
  key: string;
  spec: JobSpec;
  /** Firmware jobs: the release they were read from. */
  releaseDir?: string;
}

const MAX_NEXT = 100;
/** Next firings evaluated for one `cron ls` beyond the one the loop keeps per job (~16 us each): a viewer cannot make a list of 1,000 jobs cost seconds. */
const LIST_EVALUATIONS = 1000;

export type { JobView } from './views.js';

/**
 * The scheduler of fussyd (docs/daemon.md, "Schedules"): the operator's jobs (schedule.json) and
 * the current release's (etc/fussy/jobs.json) in one loop (loop.ts), each firing a run of the
 * engine like any other (same queue, limits, history), the job's streak of failures and its
 * notify runs (notify.ts), and a reload of the firmware's jobs at each swap of `current`.
 *
 * Durability: a firing's position is written (schedule.json) before its run is submitted, so a
 * crash never runs a firing twice; the writes of firings that fall together are one write.
 * Nothing is written while nothing fires.
 */
export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #store: JobStore;
  readonly #loop: ScheduleLoop;
  readonly #clock: SchedulerClock;
  readonly #jobs = new Map<string, Job>();
  #state: Record<string, JobState>;
  #firmware: CurrentJobs = { seen: '', jobs: [], problems: [] };
  #operatorProblems: string[] = [];
  #pendingSave: Promise<void> | undefined;
  #watch: NodeJS.Timeout | undefined;
  readonly #runner: JobRunner;

  private constructor(o: SchedulerOptions, store: JobStore) {
    this.#o = o;
    this.#store = store;
    this.#state = store.states();
    this.#clock = o.clock ?? systemClock;
    this.#loop = new ScheduleLoop({ clock: this.#clock, random: o.random, fire: (f) => this.#fired(f), record: (e) => this.#runner.event(this.#jobs.get(e.job), e) });
    this.#runner = new JobRunner({ engine: o.engine, scripts: o.scripts, notify: o.notify, log: o.log, now: () => this.#clock.now(), stateOf: (key) => (this.#jobs.has(key) ? this.#stateOf(key) : undefined), saveSoon: () => this.#saveSoon() });
  }

  /** Open the job store, read the current release's jobs, and set the loop (start() starts it). */
  static async open(o: SchedulerOptions): Promise<Scheduler> {
    const clock = o.clock ?? systemClock;
    const store = await JobStore.open(o.stateDir, () => new Date(clock.now()), o.maxJobs, { maxTimeoutS: o.maxTimeoutS });
    for (const p of store.problems) o.log({ event: 'schedule-store-damaged', problem: p });
    const s = new Scheduler(o, store);
    s.#loadFirmware('fussyd started');
    s.#apply(true);
    return s;
  }

  start(): void {
    this.#loop.start();
    if (this.#o.target !== undefined) {
      this.#watch = setInterval(() => this.checkCurrent(), this.#o.watchIntervalMs ?? 2000);
      this.#watch.unref();
    }
  }

  /** Stop firing; wait for the runs it follows (the engine's close ends them) and write the state. */
  async stop(): Promise<void> {
    clearInterval(this.#watch);
    const stopped = this.#loop.stop();
    return Promise.allSettled([stopped, ...this.#runner.following]).then(() => this.#save());
  }

  /** Stop firing new runs now, without waiting for those in progress (fussyd is closing: the engine's close ends them; stop() after it). */
  quiesce(): void {
    clearInterval(this.#watch);
    void this.#loop.stop();
  }

  /**
   * Read the firmware's jobs again if `current` points at another release than when last read
   * (an install, a rollback, a recovery); with `force` (SIGHUP) in any case.
   */
  checkCurrent(force?: string): void {
    try {
      if (force === undefined && currentSignature(this.#o.target) === this.#firmware.seen) return;
      this.#loadFirmware(force ?? 'current changed');
      this.#apply(false);
    } catch (err) {
      // An I/O error looking at the target (EIO, EPERM) keeps the jobs in use; the next look tries again.
      if (!isSystemError(err) && !(err instanceof FussyError)) throw err;
      this.#o.log({ event: 'schedule-reload-failed', why: force ?? 'current changed', error: err.message });
    }
  }

  /**
   * Every job, operator's and firmware's, with up to `count` next firings; and what is wrong. The
   * first next firing is the loop's own; at most LIST_EVALUATIONS more are computed for the whole
   * list (with 1,000 jobs, two a job: `cron next NAME` gives more of one).
   */
  list(count = 3): { jobs: JobView[]; problems: string[]; release?: string } {
    const now = new Date(this.#clock.now());
    const extra = Math.min(Math.max(count, 1), MAX_NEXT) - 1;
    const each = Math.min(extra, Math.floor(LIST_EVALUATIONS / Math.max(1, this.#jobs.size)));
    const jobs = [...this.#jobs.values()].map((j) => this.#view(j, now, 1 + each, this.#loop.nextOf(j.key)));
    return { jobs, problems: this.problems(), ...(this.#firmware.release === undefined ? {} : { release: this.#firmware.release }) };
  }

  /** The status summary: jobs, those failing (with their streaks), problems. */
  status(): { jobs: number; enabled: number; failing: Array<{ name: string; origin: string; failures: number; last?: LastRun }>; problems: string[] } {
    const all = [...this.#jobs.values()];
    const failing = all.filter((j) => (this.#state[j.key]?.failures ?? 0) > 0).map((j) => ({ name: j.spec.name, origin: j.spec.origin, failures: this.#state[j.key]?.failures ?? 0, ...(this.#state[j.key]?.last === undefined ? {} : { last: this.#state[j.key]?.last }) }));
    return { jobs: all.length, enabled: all.filter((j) => this.#enabled(j)).length, failing, problems: this.problems() };
  }

  problems(): string[] {
    return [...this.#store.problems, ...this.#operatorProblems, ...this.#firmware.problems];
  }

  /** The next `count` firings of one job. */
  next(name: string, count: number, origin?: JobSpec['origin']): { job: JobView; next: string[] } {
    const job = this.#find(name, origin);
    const view = this.#view(job, new Date(this.#clock.now()), Math.min(Math.max(count, 1), MAX_NEXT));
    return { job: view, next: view.next };
  }

  /** Add an operator job: its fields checked (jobs.ts), its script (and notify script) must be stored. */
  async add(raw: Record<string, unknown>): Promise<JobView> {
    for (const field of ['script', 'notify'] as const) {
      const v = raw[field];
      if (typeof v === 'string' && this.#runner.stored(v) === undefined) throw new FussyError('NOT_FOUND', `job ${String(raw.name)}: no stored script is named ${v} ("${field}")`, { hint: 'store it first (fussy remote put FILE), or name one that fussy remote ls lists' });
    }
    const spec = await this.#store.add(raw, new Date(this.#clock.now()));
    this.#apply(false);
    return this.#view(this.#jobs.get(stateKey(spec)) as Job, new Date(this.#clock.now()), 3);
  }

  async remove(name: string): Promise<void> {
    await this.#store.remove(name);
    this.#apply(false);
  }

  /** Enable or disable a job; a firmware job's choice is kept in its state while its release declares it. */
  async setEnabled(name: string, enabled: boolean, origin?: JobSpec['origin']): Promise<JobView> {
    const job = this.#find(name, origin);
    if (job.spec.origin === 'operator') await this.#store.setEnabled(name, enabled);
    else {
      // Written first: a write that fails changes nothing, now or at the next reload.
      await this.#store.saveState({ ...this.#state, [job.key]: { ...this.#stateOf(job.key), enabled } });
      // Set on the state as it is now: a run that ended during the write changed its streak and last run.
      if (this.#jobs.has(job.key)) this.#stateOf(job.key).enabled = enabled;
    }
    this.#apply(false);
    return this.#view(this.#jobs.get(job.key) as Job, new Date(this.#clock.now()), 3);
  }

  /**
   * Run a job now (`cron run`): a run like its firings (its streak, its notify), triggered by
   * `cn`. Refused (JOB_BUSY) while a run of it is in progress, unless its overlap is `allow`.
   */
  runNow(name: string, cn: string, origin?: JobSpec['origin']): { job: JobView; submitted: Submitted } {
    const job = this.#find(name, origin);
    if (this.#loop.active(job.key) > 0 && job.spec.overlap === 'skip') throw new FussyError('JOB_BUSY', `job ${name} has a run in progress`, { hint: 'wait for it to end (fussy remote cron ls shows it), or set the job\'s overlap to allow' });
    const submitted = this.#runner.submit(job, { kind: 'schedule', job: job.spec.name, origin: job.spec.origin, reason: 'manual', cn });
    this.#runner.running(job.key); // a firing skipped during this run is recorded again
    const followed = this.#runner.follow(job, submitted);
    this.#loop.hold(job.key, followed);
    return { job: this.#view(job, new Date(this.#clock.now()), 1), submitted };
  }

  #view(j: Job, now: Date, count: number, first?: number): JobView {
    return jobView(j, { state: this.#state[j.key], enabled: this.#enabled(j), running: this.#loop.active(j.key), now, count, first });
  }

  #find(name: string, origin: JobSpec['origin'] | undefined): Job {
    const job = origin === undefined ? (this.#jobs.get(`operator:${name}`) ?? this.#jobs.get(`firmware:${name}`)) : this.#jobs.get(`${origin}:${name}`);
    if (job === undefined) throw new FussyError('NOT_FOUND', `no ${origin === undefined ? '' : `${origin} `}job is named ${name}`, { hint: 'fussy remote cron ls lists the jobs' });
    return job;
  }

  #stateOf(key: string): JobState {
    this.#state[key] ??= { failures: 0 };
    return this.#state[key];
  }

  #enabled(j: Job): boolean {
    return j.spec.origin === 'firmware' ? (this.#state[j.key]?.enabled ?? j.spec.enabled) : j.spec.enabled;
  }

  /** Read the jobs of the release `current` points at; what is wrong with them is logged, in the status and in the history. */
  #loadFirmware(why: string): void {
    this.#firmware = currentJobs(this.#o.target, new Date(this.#clock.now()), { maxTimeoutS: this.#o.maxTimeoutS });
    const { release, jobs, problems } = this.#firmware;
    this.#o.log({ event: 'schedule-firmware-jobs', why, release: release ?? null, jobs: jobs.map((j) => j.name), problems });
    if (problems.length > 0) {
      const trigger: Trigger = { kind: 'schedule', job: FIRMWARE_JOBS_FILE, origin: 'firmware' };
      this.#o.engine.record({ trigger, script: { name: FIRMWARE_JOBS_FILE, id: '' }, ...(release === undefined ? {} : { release }), status: 'invalid', reason: problems.join('\n') }).catch((err: unknown) => this.#o.log({ event: 'schedule-history-failed', error: (err as Error).message }));
    }
  }

  /** Give the loop the jobs as they are now; drop the state of jobs that are gone. */
  #apply(atStart: boolean): void {
    const { jobs: operator, problems } = this.#store.jobs(new Date(this.#clock.now()));
    this.#operatorProblems = problems;
    this.#jobs.clear();
    for (const spec of operator) this.#jobs.set(stateKey(spec), { key: stateKey(spec), spec });
    for (const spec of this.#firmware.jobs) this.#jobs.set(stateKey(spec), { key: stateKey(spec), spec, releaseDir: this.#firmware.dir });
    this.#loop.set(
      [...this.#jobs.values()].map((j) => ({
        name: j.key,
        schedule: j.spec.schedule,
        enabled: this.#enabled(j),
        overlap: j.spec.overlap,
        missed: j.spec.missed,
        randomDelayS: j.spec.randomDelayS,
        // Across a restart, each job goes on from where it was (missed firings are found); a job
        // new to this fussyd starts now.
        ...(atStart ? { handledUpTo: this.#state[j.key]?.handledUpTo } : {}),
      })),
    );
    for (const key of Object.keys(this.#state)) {
      const operatorName = key.startsWith('operator:') ? key.slice('operator:'.length) : undefined;
      if (!this.#jobs.has(key) && !(operatorName !== undefined && this.#store.has(operatorName))) delete this.#state[key];
    }
    if (!atStart) void this.#saveSoon();
  }

  /** A firing: its position on disk first (no firing runs twice after a crash), then its run. */
  async #fired(f: Firing): Promise<void> {
    const job = this.#jobs.get(f.job);
    if (job === undefined) return;
    this.#runner.running(f.job);
    await this.#saveSoon();
    // A run that never started (fussyd stopped while it waited for a slot) is given back: the next start finds it missed, and run-once runs it.
    if ((await this.#runner.fire(job, f)) === 'never-started') this.#loop.rewind(f.job, f.scheduledAt - 1);
  }

  /** Write the positions and states soon: the writes asked for within one turn of the event loop are one write. */
  #saveSoon(): Promise<void> {
    this.#pendingSave ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.#pendingSave = undefined;
      return this.#save();
    });
    return this.#pendingSave;
  }

  async #save(): Promise<void> {
    for (const p of this.#loop.positions()) if (this.#jobs.has(p.name)) this.#stateOf(p.name).handledUpTo = p.handledUpTo;
    try {
      await this.#store.saveState(this.#state);
    } catch (err) {
      // Firings go on (a maintenance run matters more than its position); a crash before the next write may repeat one.
      if (!isSystemError(err)) throw err;
      this.#o.log({ event: 'schedule-save-failed', file: this.#store.file, error: err.message });
    }
  }
}
