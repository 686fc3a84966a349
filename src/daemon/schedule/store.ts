import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError, isErrno } from '../../errors.js';
import { writeAtomic } from '../../util/fs-atomic.js';
import { parseJob, type JobLimits, type JobSpec } from './jobs.js';

/** What the scheduler keeps of each job between runs of fussyd: its position (loop.ts), its failure streak (notify.ts), its last run. */
export interface JobState {
  handledUpTo?: number;
  failures: number;
  /** A firmware job an operator enabled or disabled (`cron enable|disable`): wins over its jobs.json while the release declares it. */
  enabled?: boolean;
  last?: LastRun;
}

/** A job's last run, as `cron ls` shows it. */
export interface LastRun {
  runId: string;
  /** When it ended (ISO). */
  at: string;
  outcome: string;
  exitCode?: number;
}

/** The key of a job's state: operator and firmware jobs may share a name. */
export const stateKey = (j: Pick<JobSpec, 'origin' | 'name'>): string => `${j.origin}:${j.name}`;

/** Operator jobs kept at most (the scheduler's idle cost is measured with 1,000 jobs: docs/performance.md). */
export const MAX_OPERATOR_JOBS = 1000;

interface StoreFile {
  version: 1;
  /** Operator jobs as they were given (checked again at each load: a time zone may have gone). */
  jobs: Record<string, unknown>[];
  state: Record<string, JobState>;
}

/**
 * The operator's jobs and every job's state, in STATE/schedule.json (0600 in fussyd's 0700 state
 * directory), replaced atomically and durably at each change (positions at most once a minute, by
 * the caller). A file that cannot be read is moved aside, named in the problems, never
 * overwritten: the jobs in it are the operator's work.
 */
export class JobStore {
  readonly problems: string[] = [];
  #raw: Record<string, unknown>[] = [];
  #state: Record<string, JobState> = {};
  /** Changes one after another: each reads what the one before it committed. */
  #queue: Promise<unknown> = Promise.resolve();

  /** Jobs checked before, by their JSON: a reload (an enable, a swap of current) does not parse 1,000 schedules again. */
  #parsed = new Map<string, JobSpec>();

  private constructor(
    readonly file: string,
    private readonly maxJobs: number,
    private readonly limits: JobLimits,
  ) {}

  static async open(stateDir: string, now: () => Date = () => new Date(), maxJobs = MAX_OPERATOR_JOBS, limits: JobLimits = {}): Promise<JobStore> {
    const store = new JobStore(join(stateDir, 'schedule.json'), maxJobs, limits);
    let text: string;
    try {
      text = await readFile(store.file, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return store;
      throw err;
    }
    try {
      const doc = JSON.parse(text) as Partial<StoreFile>;
      if (doc.version !== 1 || !Array.isArray(doc.jobs) || typeof doc.state !== 'object' || doc.state === null) throw new Error('not a version 1 schedule file');
      store.#raw = doc.jobs;
      store.#state = doc.state;
    } catch (err) {
      const aside = `${store.file}.damaged-${now().toISOString().replace(/[-:.]/g, '')}`;
      await rename(store.file, aside);
      store.problems.push(`${store.file} could not be read (${(err as Error).message}); it was moved to ${aside}, and the operator's jobs start empty`);
    }
    return store;
  }

  /** The operator's jobs, checked; a stored job that no longer passes (an unknown time zone after a tzdata change) is left out with its problem. */
  jobs(now?: Date): { jobs: JobSpec[]; problems: string[] } {
    const jobs: JobSpec[] = [];
    const problems: string[] = [];
    const parsed = new Map<string, JobSpec>();
    for (const raw of this.#raw) {
      const key = JSON.stringify(raw);
      try {
        const job = this.#parsed.get(key) ?? parseJob(raw, { origin: 'operator', now, stored: true, limits: this.limits });
        parsed.set(key, job);
        jobs.push(job);
      } catch (err) {
        if (!(err instanceof FussyError)) throw err;
        problems.push(err.message);
      }
    }
    this.#parsed = parsed;
    return { jobs, problems };
  }

  /** Add an operator job (checked by parseJob); ALREADY_EXISTS if one has its name. */
  add(raw: Record<string, unknown>, now?: Date): Promise<JobSpec> {
    return this.#serial(async () => {
      const job = parseJob(raw, { origin: 'operator', now, limits: this.limits });
      if (this.#raw.some((r) => r.name === job.name)) throw new FussyError('ALREADY_EXISTS', `job ${job.name} exists`, { hint: `remove it first (fussy remote cron rm ${job.name}), or give the new one another name` });
      if (this.#raw.length >= this.maxJobs) throw new FussyError('TOO_LARGE', `fussyd keeps at most ${this.maxJobs} operator jobs, and has them`, { hint: 'remove jobs no longer needed (fussy remote cron rm NAME)', details: { status: 409 } });
      await this.#commit([...this.#raw, raw], this.#state);
      return job;
    });
  }

  remove(name: string): Promise<void> {
    return this.#serial(async () => {
      this.#index(name);
      const { [stateKey({ origin: 'operator', name })]: _gone, ...state } = this.#state;
      await this.#commit(
        this.#raw.filter((r) => r.name !== name),
        state,
      );
    });
  }

  setEnabled(name: string, enabled: boolean): Promise<void> {
    return this.#serial(async () => {
      const i = this.#index(name);
      await this.#commit(
        this.#raw.map((r, j) => (j === i ? { ...r, enabled } : r)),
        this.#state,
      );
    });
  }

  /** Whether an operator job of this name is stored (checked or not). */
  has(name: string): boolean {
    return this.#raw.some((r) => r.name === name);
  }

  state(key: string): JobState {
    return this.#state[key] ?? { failures: 0 };
  }

  /** Every job's state as it was saved last. */
  states(): Record<string, JobState> {
    return { ...this.#state };
  }

  /** Replace every job's state (the scheduler holds it, and drops the state of jobs that are gone). */
  saveState(all: Record<string, JobState>): Promise<void> {
    return this.#serial(() => this.#commit(this.#raw, all));
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #index(name: string): number {
    const i = this.#raw.findIndex((r) => r.name === name);
    if (i < 0) throw new FussyError('NOT_FOUND', `no operator job is named ${name}`, { hint: 'fussy remote cron ls lists the jobs (a firmware job is changed by its firmware, not here)' });
    return i;
  }

  /** Write the new content, then take it: a write that fails (a full disk) leaves the file and what this store holds as they were. */
  async #commit(raw: Record<string, unknown>[], state: Record<string, JobState>): Promise<void> {
    const doc: StoreFile = { version: 1, jobs: raw, state };
    await writeAtomic(this.file, `${JSON.stringify(doc)}\n`, { mode: 0o600 });
    this.#raw = raw;
    this.#state = state;
  }
}
