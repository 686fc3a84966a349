import { constants as FS } from 'node:fs';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../../errors.js';
import type { Captured } from '../../util/capture.js';
import { unlinkIfExists, writeAtomic } from '../../util/fs-atomic.js';
import { bootId } from '../../util/proc.js';
import { readSmallFile } from '../../util/read-small-file.js';
import { killSurvivingGroup } from './orphans.js';
import { summarize, type EndRecord, type HistoryRecord, type RunRecords, type RunSummary } from './records.js';

export interface HistoryOptions {
  /** Ended runs kept (history-keep, 10000) and for how long (history-days, 90). */
  keep?: number;
  days?: number;
  now?: () => Date;
}

/** What a run wrote and returned, as kept in runs/out/RUNID.json. */
export interface RunOutput {
  stdout: Captured;
  stderr: Captured;
  result?: unknown;
  error?: { message: string; stack?: string };
}

export interface HistoryQuery {
  /** Runs of this script name. */
  script?: string;
  /** Runs queued at or after this time. */
  since?: Date;
  /** At most this many (100), newest first. */
  limit?: number;
}

/** The largest output file read back (2 x (1 MiB head + 64 KiB tail) in base64, a result of 1 MiB). */
const MAX_OUTPUT_FILE = 8 * 1024 * 1024;
/** Appends between retention passes. */
const COMPACT_EVERY = 500;

/**
 * The history of runs (docs/daemon.md "Runs"): STATE/runs/history.jsonl, one JSON record a
 * line (records.ts), appended and fsynced: `queued` at submit, `start` as the leader runs,
 * `end` when it ended; the capped output of each run in runs/out/RUNID.json. Retention
 * (count and age) rewrites the file atomically. The runs are also held in memory, bounded by the
 * retention and by what a record may hold (the engine caps args, results and messages).
 */
export class RunHistory {
  private chain: Promise<unknown> = Promise.resolve();
  private sinceCompact = 0;

  private constructor(
    readonly dir: string,
    private fh: FileHandle,
    private readonly runs: Map<string, RunRecords>,
    private readonly o: Required<HistoryOptions>,
  ) {}

  /**
   * Open the history at daemon start: a torn last line (a crash mid-append) is cut off; every
   * run without an end is ended `abandoned`, after its process group, if it provably still runs
   * in this boot (orphans.ts), was SIGKILLed. Returns those runs too.
   */
  static async open(stateDir: string, o: HistoryOptions = {}): Promise<{ history: RunHistory; abandoned: RunSummary[] }> {
    const dir = join(stateDir, 'runs');
    await mkdir(dir, { recursive: true, mode: 0o711 }); // run-as users reach their run directories in runs/work
    await mkdir(join(dir, 'out'), { recursive: true, mode: 0o700 });
    const file = join(dir, 'history.jsonl');
    const runs = await load(file);
    const fh = await open(file, FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT | FS.O_NOFOLLOW, 0o600);
    const h = new RunHistory(dir, fh, runs, { keep: o.keep ?? 10_000, days: o.days ?? 90, now: o.now ?? (() => new Date()) });
    const boot = bootId();
    const abandoned: RunSummary[] = [];
    for (const r of [...runs.values()].filter((x) => x.end === undefined)) {
      const killed = r.start === undefined ? 0 : killSurvivingGroup(r.start, boot);
      await h.append({ type: 'end', runId: r.queued.runId, time: h.o.now().toISOString(), status: 'abandoned', ...(killed > 0 ? { killed } : {}) });
      abandoned.push(h.get(r.queued.runId) as RunSummary);
    }
    await h.compact();
    return { history: h, abandoned };
  }

  /** Append one record, fsynced before this resolves. */
  append(rec: HistoryRecord): Promise<void> {
    return this.serial(async () => {
      await this.fh.write(JSON.stringify(rec) + '\n');
      await this.fh.sync();
      this.remember(rec);
      if (rec.type === 'end' && ++this.sinceCompact >= COMPACT_EVERY) await this.compactNow();
    });
  }

  /** Keep a run's output (before its end record, which names the file). */
  async saveOutput(runId: string, out: RunOutput): Promise<string> {
    const stream = (c: Captured): Record<string, unknown> => ({ head: c.head.toString('base64'), tail: c.tail.toString('base64'), totalBytes: c.totalBytes, truncated: c.truncated });
    const rel = `out/${runId}.json`;
    await writeAtomic(join(this.dir, rel), JSON.stringify({ ...out, stdout: stream(out.stdout), stderr: stream(out.stderr) }) + '\n', { mode: 0o600, purpose: 'output' });
    return rel;
  }

  /** A run's output, or undefined (none kept, or removed by retention). */
  readOutput(runId: string): RunOutput | undefined {
    const rel = this.runs.get(runId)?.end?.outputFile;
    const read = rel === undefined ? undefined : readSmallFile(join(this.dir, rel), MAX_OUTPUT_FILE);
    if (read === undefined || 'problem' in read) return undefined;
    const o = JSON.parse(read.data.toString('utf8')) as RunOutput & { stdout: Record<string, string | number | boolean>; stderr: Record<string, string | number | boolean> };
    const stream = (c: Record<string, string | number | boolean>): Captured => ({ head: Buffer.from(String(c.head), 'base64'), tail: Buffer.from(String(c.tail), 'base64'), totalBytes: Number(c.totalBytes), truncated: c.truncated === true });
    return { ...o, stdout: stream(o.stdout), stderr: stream(o.stderr) };
  }

  get(runId: string): RunSummary | undefined {
    const r = this.runs.get(runId);
    return r === undefined ? undefined : summarize(r);
  }

  /** Runs, newest (last submitted) first. */
  query(q: HistoryQuery = {}): RunSummary[] {
    const out: RunSummary[] = [];
    const limit = q.limit ?? 100;
    const since = q.since?.toISOString();
    for (const r of [...this.runs.values()].reverse()) {
      if (out.length >= limit) break;
      if (q.script !== undefined && r.queued.script.name !== q.script) continue;
      if (since !== undefined && r.queued.time < since) continue;
      out.push(summarize(r));
    }
    return out;
  }

  /** Apply retention now: the oldest ended runs past `keep`, and those ended more than `days` ago, go with their output. */
  compact(): Promise<void> {
    return this.serial(() => this.compactNow());
  }

  close(): Promise<void> {
    return this.serial(() => this.fh.close());
  }

  private async compactNow(): Promise<void> {
    this.sinceCompact = 0;
    const cutoff = new Date(this.o.now().getTime() - this.o.days * 86_400_000).toISOString();
    const ended = [...this.runs.values()].filter((r) => r.end !== undefined);
    const drop = new Set(ended.slice(0, Math.max(0, ended.length - this.o.keep)).map((r) => r.queued.runId));
    for (const r of ended) if ((r.end as EndRecord).time < cutoff) drop.add(r.queued.runId);
    if (drop.size === 0) return;
    const file = join(this.dir, 'history.jsonl');
    const kept = [...this.runs.values()].filter((r) => !drop.has(r.queued.runId));
    const text = kept.map((r) => [r.queued, r.start, r.end].filter((x) => x !== undefined).map((x) => JSON.stringify(x) + '\n').join('')).join('');
    await writeAtomic(file, text, { mode: 0o600, purpose: 'history' });
    await this.fh.close();
    this.fh = await open(file, FS.O_WRONLY | FS.O_APPEND | FS.O_NOFOLLOW);
    for (const id of drop) {
      const rel = this.runs.get(id)?.end?.outputFile;
      this.runs.delete(id);
      if (rel !== undefined) await unlinkIfExists(join(this.dir, rel));
    }
  }

  private remember(rec: HistoryRecord): void {
    if (rec.type === 'queued') this.runs.set(rec.runId, { queued: rec });
    else {
      const r = this.runs.get(rec.runId);
      if (r !== undefined) r[rec.type] = rec as never;
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch((err: unknown) => err);
    return run;
  }
}

/** The runs of a history file; a torn last line (no newline: the crash came mid-append) is cut off the file. */
async function load(file: string): Promise<Map<string, RunRecords>> {
  const runs = new Map<string, RunRecords>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return runs;
    throw err;
  }
  const whole = text.lastIndexOf('\n') + 1;
  if (whole < text.length) {
    const fh = await open(file, FS.O_RDWR | FS.O_NOFOLLOW);
    try {
      await fh.truncate(Buffer.byteLength(text.slice(0, whole)));
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  for (const line of text.slice(0, whole).split('\n')) {
    if (line === '') continue;
    let rec: HistoryRecord;
    try {
      rec = JSON.parse(line) as HistoryRecord;
    } catch (err) {
      if (err instanceof SyntaxError) continue; // a damaged line says nothing about any run
      throw err;
    }
    if (rec.type === 'queued') runs.set(rec.runId, { queued: rec });
    else if ((rec.type === 'start' || rec.type === 'end') && runs.has(rec.runId)) (runs.get(rec.runId) as RunRecords)[rec.type] = rec as never;
  }
  return runs;
}
