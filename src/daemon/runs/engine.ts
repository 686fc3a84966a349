import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError, isErrno, isSystemError } from '../../errors.js';
import { bootId, processStart } from '../../util/proc.js';
import { removeTree } from '../../util/remove-tree.js';
import type { ScriptStore } from '../scripts.js';
import { RunHistory, type RunOutput } from './history.js';
import { callerOf, type EndRecord, type EndStatus, type QueuedRecord, type RunSummary } from './records.js';
import type { NotRun, RunRecord, RunStarted, Submission, Submitted } from './submission.js';
import { runScript, type RunHosts, type RunOutcome, type ScriptFile } from './run-script.js';
import { lookupUser, type RunUser } from './users.js';

export interface EngineOptions {
  /** STATE (state-dir): scripts/, data/, runs/. */
  stateDir: string;
  scripts: ScriptStore;
  /** Runs at once (max-runs, 4); the rest wait, highest priority first, then first come. */
  maxRuns?: number;
  /** The user runs are started as (run-as, a passwd(5) name); default: fussyd's own user. */
  runAs?: string;
  passwd?: string;
  /** The data directory (cwd of every run); default STATE/data. */
  dataDir?: string;
  /** The target: FUSSY_FIRMWARE is its `current` release as each run starts. */
  target?: string;
  /** Time limit when a submission names none (run-timeout, 3600 s), and the most one may ask (max-run-timeout, 86400 s). */
  timeoutMs?: number;
  maxTimeoutMs?: number;
  graceMs?: number;
  outputHead?: number;
  outputTail?: number;
  drainMs?: number;
  historyKeep?: number;
  historyDays?: number;
  device?: Record<string, unknown>;
  conf?: Record<string, unknown>;
  hosts?: RunHosts;
  now?: () => Date;
}

export type { FirmwareProgram, NotRun, RunRecord, RunStarted, Submission, Submitted } from './submission.js';

/** Args of a run, as JSON: what a history record may hold. */
const MAX_ARGS_JSON = 4096;
/** A result whose JSON is at most this long is in the end record itself, not only in the output file. */
const RESULT_INLINE = 4096;
const NO_OUTPUT: RunOutput = { stdout: { head: Buffer.alloc(0), tail: Buffer.alloc(0), totalBytes: 0, truncated: false }, stderr: { head: Buffer.alloc(0), tail: Buffer.alloc(0), totalBytes: 0, truncated: false } };

interface Entry {
  seq: number;
  queued: QueuedRecord;
  script: ScriptFile;
  stdin?: Buffer;
  env?: Record<string, string>;
  queuedAtMs: number;
  started: (s: RunStarted) => void;
  done: { resolve: (r: RunRecord) => void; reject: (err: unknown) => void };
}

/**
 * The run engine of fussyd (docs/daemon.md "Runs"): every trigger (an operator's exec, the
 * scheduler) submits here; `maxRuns` run at once, the rest wait in a priority queue. Each run
 * is recorded (history.ts) as it is queued, as it starts and as it ends. Durability: the
 * history is fsynced before a run is spawned (its `queued` record: a run that ran is never
 * missing after a power cut) and with its `end`; the `start` record is written at the spawn,
 * not fsynced (only a surviving fussyd crash needs it, to kill the group; after a power cut no
 * process of the run is left, and its `queued` record ends it `abandoned`).
 */
export class RunEngine {
  private readonly queue: Entry[] = [];
  private readonly active = new Map<string, { abort: AbortController; done: Promise<unknown> }>();
  private seq = 0;
  private closing = false;
  /** This boot's id, for the start records (it does not change while fussyd runs). */
  private readonly boot = bootId();

  private constructor(
    readonly history: RunHistory,
    private readonly o: EngineOptions & { dataDir: string; user?: RunUser; now: () => Date },
  ) {}

  /** Open the state: runs a previous fussyd left behind are ended `abandoned` (their groups killed), their run directories removed. */
  static async open(o: EngineOptions): Promise<{ engine: RunEngine; abandoned: RunSummary[] }> {
    const user = o.runAs === undefined ? undefined : lookupUser(o.runAs, o.passwd);
    const dataDir = o.dataDir ?? join(o.stateDir, 'data');
    mkdirSync(o.stateDir, { recursive: true, mode: 0o755 });
    mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    if (user !== undefined) chownSync(dataDir, user.uid, user.gid);
    const now = o.now ?? (() => new Date());
    const { history, abandoned } = await RunHistory.open(o.stateDir, { keep: o.historyKeep, days: o.historyDays, now });
    const work = join(history.dir, 'work');
    mkdirSync(work, { recursive: true, mode: 0o711 });
    for (const name of readdirSync(work)) await removeTree(join(work, name));
    return { engine: new RunEngine(history, { ...o, dataDir, user, now }), abandoned };
  }

  /** Queue a run. A script that does not resolve, bad args or a time limit past the maximum are refused here, synchronously. */
  submit(s: Submission): Submitted {
    if (this.closing) throw new FussyError('INTERRUPTED', 'fussyd is stopping: no new runs', { hint: 'submit it again once fussyd runs again' });
    let script: ScriptFile;
    if (s.program !== undefined) script = { name: s.program.name, id: '', path: s.program.path, direct: { cwd: s.program.releaseDir } };
    else if (s.script !== undefined) {
      script = this.o.scripts.resolve(s.script);
      this.o.scripts.used(script.id);
    } else throw new Error('RunEngine.submit: neither a script nor a program');
    const args = s.args ?? [];
    if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) throw new FussyError('USAGE', 'the args of a run are a list of strings');
    if (JSON.stringify(args).length > MAX_ARGS_JSON) throw new FussyError('TOO_LARGE', `the args of a run are more than ${MAX_ARGS_JSON} bytes as JSON`, { hint: 'pass large inputs as a data file' });
    const max = this.o.maxTimeoutMs ?? 86_400_000;
    const timeoutMs = s.timeoutMs ?? this.o.timeoutMs ?? 3_600_000;
    if (!(timeoutMs > 0 && timeoutMs <= max)) throw new FussyError('USAGE', `a run's time limit is between 1 ms and ${max} ms, not ${timeoutMs}`, { hint: 'raise max-run-timeout in fussyd.conf for longer runs' });
    const at = this.o.now();
    const runId = newRunId(at);
    const queued: QueuedRecord = { type: 'queued', runId, time: at.toISOString(), trigger: s.trigger, script: { name: script.name, id: script.id }, ...(s.program === undefined ? {} : { release: s.program.release }), args, priority: s.priority ?? 0, timeoutMs };
    let started!: (x: RunStarted) => void;
    const startedP = new Promise<RunStarted>((res) => (started = res));
    let done!: Entry['done'];
    const doneP = new Promise<RunRecord>((resolve, reject) => (done = { resolve, reject }));
    const entry: Entry = { seq: this.seq++, queued, script, stdin: s.stdin, env: s.env, queuedAtMs: at.getTime(), started, done };
    const waiting = this.history.append(queued, { durable: false }).then(
      () => {
        this.queue.push(entry);
        this.pump();
        return this.queue.includes(entry);
      },
      (err: unknown) => {
        started({ runId, waitMs: 0 });
        done.reject(err);
        return false;
      },
    );
    return { runId, started: startedP, waiting, done: doneP };
  }

  /** Record in the history what the scheduler did not run (a skipped or missed firing, a refused jobs file): a queued record and its end at once. */
  async record(n: NotRun): Promise<RunSummary> {
    const at = this.o.now();
    const runId = newRunId(at);
    const time = at.toISOString();
    await this.history.append({ type: 'queued', runId, time, trigger: n.trigger, script: n.script, ...(n.release === undefined ? {} : { release: n.release }), args: n.args ?? [], priority: n.priority ?? 0, timeoutMs: 0 }, { durable: false });
    await this.history.append({ type: 'end', runId, time, status: n.status, ...(n.status === 'not-started' ? { startError: n.reason.slice(0, 4096) } : { reason: n.reason.slice(0, 4096) }) }, { durable: false });
    return this.history.get(runId) as RunSummary;
  }

  /** Run ids running and waiting now. */
  snapshot(): { running: string[]; queued: string[] } {
    return { running: [...this.active.keys()], queued: this.queue.map((e) => e.queued.runId) };
  }

  /**
   * Stop: waiting runs end `cancelled` (they never start), running ones get SIGTERM and, a
   * grace later, SIGKILL to their groups and end `interrupted`; then the history is closed.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const e of this.queue.splice(0)) {
      e.started({ runId: e.queued.runId, waitMs: this.o.now().getTime() - e.queuedAtMs });
      await this.finish(e, 'cancelled', undefined).then(e.done.resolve, e.done.reject);
    }
    const running = [...this.active.values()];
    for (const r of running) r.abort.abort();
    await Promise.allSettled(running.map((r) => r.done));
    await this.history.close();
  }

  private pump(): void {
    while (!this.closing && this.active.size < (this.o.maxRuns ?? 4) && this.queue.length > 0) {
      let best = 0;
      this.queue.forEach((e, i) => {
        const b = this.queue[best] as Entry;
        if (e.queued.priority > b.queued.priority || (e.queued.priority === b.queued.priority && e.seq < b.seq)) best = i;
      });
      const [e] = this.queue.splice(best, 1) as [Entry];
      const abort = new AbortController();
      const done = this.execute(e, abort.signal).then(e.done.resolve, e.done.reject);
      this.active.set(e.queued.runId, { abort, done });
      void done.finally(() => {
        this.active.delete(e.queued.runId);
        this.pump();
      });
    }
  }

  private async execute(e: Entry, signal: AbortSignal): Promise<RunRecord> {
    const runId = e.queued.runId;
    const waitMs = Math.max(0, this.o.now().getTime() - e.queuedAtMs);
    // The queued record reaches the disk while the run is prepared; the spawn waits for it.
    const recorded = this.history.sync();
    recorded.catch((err: unknown) => err); // awaited by beforeSpawn; a run that fails before that reports its own error
    let outcome: RunOutcome;
    try {
      outcome = await runScript({
        runId,
        script: e.script,
        bases: this.bases(),
        args: e.queued.args,
        workRoot: join(this.history.dir, 'work'),
        dataDir: this.o.dataDir,
        firmwareDir: currentRelease(this.o.target),
        caller: callerOf(e.queued.trigger),
        user: this.o.user,
        timeoutMs: e.queued.timeoutMs,
        graceMs: this.o.graceMs,
        outputHead: this.o.outputHead,
        outputTail: this.o.outputTail,
        drainMs: this.o.drainMs,
        device: this.o.device,
        conf: this.o.conf,
        hosts: this.o.hosts,
        signal,
        stdin: e.stdin,
        env: e.env,
        beforeSpawn: () => recorded,
        onSpawn: async (pid) => {
          await this.history.append({ type: 'start', runId, time: this.o.now().toISOString(), waitMs, pid, pidStart: processStart(pid) ?? '', bootId: this.boot }, { durable: false });
          e.started({ runId, pid, waitMs });
        },
      });
    } catch (err) {
      if (!isSystemError(err) && !(err instanceof FussyError)) throw err;
      return await this.finish(e, 'not-started', undefined, `cannot prepare the run: ${err.message}`);
    } finally {
      e.started({ runId, waitMs }); // when it never spawned (onSpawn resolved it otherwise: a promise resolves once)
    }
    return this.finish(e, statusOf(outcome), outcome);
  }

  /** Keep the output, append the end record, and give the whole record. */
  private async finish(e: Entry, status: EndStatus, r: RunOutcome | undefined, startError?: string): Promise<RunRecord> {
    const output: RunOutput = r === undefined ? NO_OUTPUT : { stdout: r.stdout, stderr: r.stderr, ...('result' in r ? { result: r.result } : {}), ...(r.error === undefined ? {} : { error: r.error }) };
    const kept = r === undefined ? undefined : await this.history.saveOutput(e.queued.runId, output);
    const resultJson = r === undefined || !('result' in r) ? undefined : JSON.stringify(r.result);
    const end: EndRecord = {
      type: 'end',
      runId: e.queued.runId,
      time: this.o.now().toISOString(),
      status,
      ...(r?.exitCode === undefined ? {} : { exitCode: r.exitCode }),
      ...(r?.signal === undefined ? {} : { signal: r.signal }),
      ...(r === undefined ? {} : { timedOut: r.timedOut, durationMs: r.durationMs, stdout: size(r.stdout), stderr: size(r.stderr) }),
      ...((r?.startError ?? startError) === undefined ? {} : { startError: r?.startError ?? startError }),
      ...(resultJson === undefined ? {} : resultJson.length <= RESULT_INLINE ? { result: r?.result } : { resultInFile: true }),
      ...(r?.error === undefined ? {} : { error: r.error.message.slice(0, 4096) }),
      ...kept,
    };
    await this.history.append(end);
    const summary = this.history.get(e.queued.runId) as RunSummary;
    return { ...summary, status, ...('result' in output ? { result: output.result } : {}), output };
  }

  /** The `__base__` scripts as they are when a run starts. */
  private bases(): { js?: ScriptFile; py?: ScriptFile } {
    const js = ['__base__.mjs', '__base__.js', '__base__'].find((n) => this.o.scripts.has(n));
    return { ...(js === undefined ? {} : { js: this.o.scripts.resolve(js) }), ...(this.o.scripts.has('__base__.py') ? { py: this.o.scripts.resolve('__base__.py') } : {}) };
  }
}

/** A run's id: its queue time, sortable, and 32 random bits. */
function newRunId(at: Date): string {
  return `${at.toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
}

function statusOf(r: RunOutcome): EndStatus {
  if (r.startError !== undefined) return 'not-started';
  if (r.interrupted) return 'interrupted';
  if (r.timedOut) return 'timeout';
  return r.signal !== undefined ? 'signaled' : 'exited';
}

function size(c: { totalBytes: number; truncated: boolean }): { totalBytes: number; truncated: boolean } {
  return { totalBytes: c.totalBytes, truncated: c.truncated };
}

/** The release `current` points at, or "" when there is none (a device before its first install). */
function currentRelease(target: string | undefined): string {
  if (target === undefined) return '';
  try {
    return realpathSync(join(target, 'current'));
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return '';
    throw err;
  }
}
