import { basename } from 'node:path';
import { FussyError } from '../../errors.js';
import type { RunEngine, Submission, Submitted } from '../runs/engine.js';
import type { Trigger } from '../runs/records.js';
import type { ScriptStore } from '../scripts.js';
import type { Log } from '../server.js';
import { MAX_ALLOWED_OVERLAP, type Firing, type LoopEvent } from './loop.js';
import { afterRun, notifyPayload, type JobOutcome } from './notify.js';
import type { Job } from './scheduler.js';
import type { JobState } from './store.js';
import { outcomeOf, relativeTo, tailText } from './views.js';

/** What the runner needs of the scheduler and the daemon. */
export interface RunnerHost {
  engine: RunEngine;
  scripts: ScriptStore;
  /** The notify command of jobs that name none (a stored script). */
  notify?: string;
  log: Log;
  now: () => number;
  /** A job's state, made when missing; undefined when the job is gone (removed, or dropped by a release). Changes are written by saveSoon(). */
  stateOf: (key: string) => JobState | undefined;
  saveSoon: () => Promise<void>;
}

/**
 * A job's runs (docs/daemon.md, "Schedules"): each firing submitted to the run engine like any
 * run (an operator job's stored script, a firmware job's program in its release), followed to its
 * end for the job's streak and last run, and the notify run at a failure and at a recovery
 * (notify.ts). What the scheduler decided not to run is recorded in the run history too.
 */
export class JobRunner {
  readonly #h: RunnerHost;
  /** Runs followed (their end updates a streak, or they are notify runs): the scheduler's stop() waits for them. */
  readonly following = new Set<Promise<unknown>>();
  /** Jobs whose run in progress had a firing skipped already (recorded in the history once a run). */
  readonly #skipping = new Set<string>();

  constructor(h: RunnerHost) {
    this.#h = h;
  }

  /** What the loop reports: in the log; a skip or a missed firing in the history too. */
  event(job: Job | undefined, e: LoopEvent): void {
    const name = job?.spec.name ?? e.job;
    const iso = (ms: number): string => new Date(ms).toISOString();
    switch (e.type) {
      case 'fire':
        this.#h.log({ event: 'schedule-fire', job: name, origin: job?.spec.origin, scheduledAt: iso(e.scheduledAt), reason: e.reason, delayMs: e.delayMs });
        return;
      case 'skip': {
        // One record a run in progress: a run of hours under a job of every minute would otherwise fill the history (history-keep) with skips. The log has each.
        const first = !this.#skipping.has(e.job);
        this.#skipping.add(e.job);
        const why = e.why === 'overlap' ? 'a run of the job was in progress (overlap: skip)' : `${MAX_ALLOWED_OVERLAP} runs of the job were in progress, the most its overlap allows`;
        this.notRun(job, 'skipped', `the firing of ${iso(e.scheduledAt)} came while ${why}`, e.scheduledAt, { history: first });
        return;
      }
      case 'missed':
        this.notRun(job, 'missed', `firings from ${iso(e.first)} to ${iso(e.last)} were missed (fussyd or the device was down, or the clock jumped); missed: ${e.policy}${e.policy === 'run-once' ? ', run once now' : ''}`, e.last);
        return;
      case 'clock':
        this.#h.log({ event: 'schedule-clock-back', job: name, from: iso(e.from), to: iso(e.to) });
        void this.#h.saveSoon();
        return;
      case 'error':
        this.#h.log({ event: 'schedule-error', job: name, error: e.message });
    }
  }

  /** A run of the job starts: a firing skipped during it is recorded in the history again. */
  running(key: string): void {
    this.#skipping.delete(key);
  }

  /** A skipped or missed firing: in the log, and in the history (with the job's script or command) unless `history` is false. */
  notRun(job: Job | undefined, status: 'skipped' | 'missed', reason: string, at: number, o: { history?: boolean } = {}): void {
    void this.#h.saveSoon();
    if (job === undefined) return;
    this.#h.log({ event: `schedule-${status}`, job: job.spec.name, origin: job.spec.origin, reason });
    if (o.history === false) return;
    const trigger: Trigger = { kind: 'schedule', job: job.spec.name, origin: job.spec.origin, reason: 'schedule', scheduledAt: new Date(at).toISOString() };
    this.#h.engine.record({ trigger, ...this.#what(job), args: job.spec.args, priority: job.spec.priority, status, reason }).catch((err: unknown) => this.#h.log({ event: 'schedule-history-failed', error: (err as Error).message }));
  }

  /** The history's script (and release) of a job's runs. */
  #what(job: Job): { script: { name: string; id: string }; release?: string } {
    const { command, script } = job.spec;
    if (job.releaseDir !== undefined) return { script: { name: command === undefined ? job.spec.name : relativeTo(job.releaseDir, command), id: '' }, release: basename(job.releaseDir) };
    const stored = this.stored(script ?? '');
    return { script: stored ?? { name: script ?? '', id: '' } };
  }

  /** A stored script by name or id, or undefined. */
  stored(nameOrId: string): { name: string; id: string } | undefined {
    try {
      const r = this.#h.scripts.resolve(nameOrId);
      return { name: r.name, id: r.id };
    } catch (err) {
      if (err instanceof FussyError && (err.code === 'NOT_FOUND' || err.code === 'BAD_NAME')) return undefined;
      throw err;
    }
  }

  /** A firing's run, followed to its end (its position is on disk already: the scheduler wrote it); `never-started` when fussyd stopped before it started. */
  async fire(job: Job, f: Firing): Promise<'ended' | 'never-started'> {
    const trigger: Trigger = { kind: 'schedule', job: job.spec.name, origin: job.spec.origin, reason: f.reason, scheduledAt: new Date(f.scheduledAt).toISOString() };
    let submitted: Submitted;
    try {
      submitted = this.submit(job, trigger);
    } catch (err) {
      if (!(err instanceof FussyError)) throw err;
      if (err.code === 'INTERRUPTED') return 'never-started'; // fussyd is stopping: not the job's failure
      // The script was removed, the time limit is past max-run-timeout now: not started, and a failure of the job.
      const rec = await this.#h.engine.record({ trigger, ...this.#what(job), args: job.spec.args, priority: job.spec.priority, status: 'not-started', reason: err.message });
      this.#ended(job, { runId: rec.runId, outcome: 'not-started', stdout: '', stderr: rec.startError ?? err.message });
      return 'ended';
    }
    return (await this.follow(job, submitted)) === 'cancelled' ? 'never-started' : 'ended';
  }

  submit(job: Job, trigger: Trigger): Submitted {
    const s = job.spec;
    const base: Omit<Submission, 'script' | 'program'> = { args: s.args, priority: s.priority, trigger, ...(s.timeoutS === undefined ? {} : { timeoutMs: s.timeoutS * 1000 }) };
    return this.#h.engine.submit({ ...base, ...this.#source(job, s.origin === 'firmware' ? s.command : s.script) });
  }

  /** A stored script (operator jobs, the default notify) or a program of the job's release. */
  #source(job: Job, what: string | undefined): Pick<Submission, 'script' | 'program'> {
    if (job.spec.origin === 'firmware' && what !== undefined && job.releaseDir !== undefined && what.startsWith('/')) {
      return { program: { path: what, name: relativeTo(job.releaseDir, what), releaseDir: job.releaseDir, release: basename(job.releaseDir) } };
    }
    return { script: what };
  }

  /** Wait for a job's run to end; its streak, last run, and notify. Resolves with the run's status (undefined: not recorded); never rejects. */
  follow(job: Job, submitted: Submitted): Promise<string | undefined> {
    const p = submitted.done
      .then((rec) => {
        const outcome = outcomeOf(rec);
        // fussyd stopped it (interrupted, cancelled): not the job's failure
        if (outcome !== undefined) this.#ended(job, { runId: rec.runId, outcome, exitCode: rec.exitCode, signal: rec.signal, stdout: tailText(rec.output.stdout), stderr: tailText(rec.output.stderr) + (typeof rec.error === 'string' ? rec.error : '') + (rec.startError ?? '') });
        return rec.status as string;
      })
      .catch((err: unknown) => {
        this.#h.log({ event: 'schedule-run-unrecorded', job: job.spec.name, runId: submitted.runId, error: err instanceof Error ? err.message : String(err) });
        return undefined;
      });
    this.following.add(p);
    void p.finally(() => this.following.delete(p));
    return p;
  }

  #ended(job: Job, r: { runId: string; outcome: JobOutcome; exitCode?: number; signal?: string; stdout: string; stderr: string }): void {
    const state = this.#h.stateOf(job.key);
    if (state === undefined) return; // removed (or dropped by a release) while it ran: a job of the same name later starts afresh
    const before = state.failures;
    const { streak, notify } = afterRun({ failures: before }, r.outcome);
    state.failures = streak.failures;
    state.last = { runId: r.runId, at: new Date(this.#h.now()).toISOString(), outcome: r.outcome, ...(r.exitCode === undefined ? {} : { exitCode: r.exitCode }) };
    void this.#h.saveSoon();
    if (notify === undefined) return;
    const command = job.spec.notify ?? this.#h.notify;
    if (command === undefined) return;
    const { env, stdin } = notifyPayload({ job: job.spec.name, event: notify, outcome: r.outcome, ...(r.exitCode === undefined ? {} : { exitStatus: r.exitCode }), ...(r.signal === undefined ? {} : { signal: r.signal }), runId: r.runId, failures: notify === 'recovery' ? before : streak.failures, stdoutTail: r.stdout, stderrTail: r.stderr });
    const trigger: Trigger = { kind: 'notify', job: job.spec.name, origin: job.spec.origin, event: notify };
    // The job's own notify is of its origin (a firmware job's: a program of its release); the default is a stored script.
    const source = job.spec.notify === undefined ? { script: command } : this.#source(job, command);
    try {
      const run = this.#h.engine.submit({ ...source, priority: job.spec.priority, trigger, stdin, env });
      // Its end is in the history; a notify run's failure is never notified about (no loop).
      const p = run.done
        .then((rec) => this.#h.log({ event: 'schedule-notified', job: job.spec.name, notify: notify, runId: rec.runId, status: rec.status, exitCode: rec.exitCode }))
        .catch((err: unknown) => this.#h.log({ event: 'schedule-run-unrecorded', job: job.spec.name, runId: run.runId, error: err instanceof Error ? err.message : String(err) }));
      this.following.add(p);
      void p.finally(() => this.following.delete(p));
    } catch (err) {
      if (!(err instanceof FussyError)) throw err;
      this.#h.log({ event: 'schedule-notify-not-started', job: job.spec.name, error: err.message });
      this.#h.engine.record({ trigger, script: { name: command, id: '' }, status: 'not-started', reason: err.message }).catch((e: unknown) => this.#h.log({ event: 'schedule-history-failed', error: (e as Error).message }));
    }
  }
}
