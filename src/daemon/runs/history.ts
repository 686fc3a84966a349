import { constants as FS } from 'node:fs';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../../errors.js';
import type { Captured } from '../../util/capture.js';
import { unlinkIfExists, writeAtomic } from '../../util/fs-atomic.js';
import { bootId } from '../../util/proc.js';
import { readSmallFile } from '../../util/read-small-file.js';
import { killSurvivingGroup } from './orphans.js';
import { summarize, type EndRecord, type HistoryRecord, type RunRecords, type RunSummary, type StoredOutput, type StoredStream } from './records.js';

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

/**
 * An output whose JSON is at most this long goes into the end record itself: one fsync (the
 * record's) instead of three (the output file, its directory, the record). Small, as it is also
 * held in memory with the run (history-keep runs at most: 10,000 x 1 KiB).
 */
const OUTPUT_INLINE = 1024;
/** The largest output file read back (2 x (1 MiB head + 64 KiB tail) in base64, a result of 1 MiB). */
const MAX_OUTPUT_FILE = 8 * 1024 * 1024;
/** Appends between retention passes. */
const COMPACT_EVERY = 500;

/**
 * The history of runs (docs/daemon.md "Runs"): STATE/runs/history.jsonl, one JSON record a
 * line (records.ts), appended with one write(2) each: `queued` at submit, `start` as the leader
 * runs, `end` when it ended. A written record survives fussyd's own crash (it is in the page
 * cache); `sync()` makes it survive a power cut too. The engine syncs before a run is spawned
 * and with each `end`. The capped output of each run is in its end record when small, else in
 * runs/out/RUNID.json. Retention (count and age) rewrites the file atomically. The runs are
 * also held in memory, bounded by the retention and by what a record may hold (the engine caps
 * args, results, messages and inline output).
 */
export class RunHistory {
  private chain: Promise<unknown> = Promise.resolve();
  private sinceCompact = 0;
  /** Records written, and how many of them are known to be on disk (fsync(2) returned after they were written). */
  private written = 0;
  private synced = 0;
  private syncing: Promise<void> | undefined;

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
      await h.append({ type: 'end', runId: r.queued.runId, time: h.o.now().toISOString(), status: 'abandoned', ...(killed > 0 ? { killed } : {}) }, { durable: false });
      abandoned.push(h.get(r.queued.runId) as RunSummary);
    }
    await h.sync();
    await h.compact();
    return { history: h, abandoned };
  }

  /**
   * Append one record (one write(2), O_APPEND): written when this resolves, so it survives
   * fussyd's crash; fsynced too, so it survives a power cut, unless `durable` is false (then a
   * later sync() or durable append makes it so: fsync(2) flushes the whole file).
   */
  append(rec: HistoryRecord, o: { durable?: boolean } = {}): Promise<void> {
    const written = this.serial(async () => {
      await this.fh.write(JSON.stringify(rec) + '\n');
      this.remember(rec);
      const n = ++this.written;
      if (rec.type === 'end' && ++this.sinceCompact >= COMPACT_EVERY) await this.compactNow();
      return n;
    });
    return o.durable === false ? written.then(() => undefined) : written.then((n) => this.syncTo(n));
  }

  /** fsync every record written so far. */
  async sync(): Promise<void> {
    await this.syncTo(await this.serial(async () => this.written));
  }

  /**
   * Until record `n` is on disk. One fsync at a time, and one covers every record written before
   * it started: runs that end together share it (group commit).
   */
  private async syncTo(n: number): Promise<void> {
    while (this.synced < n) {
      if (this.syncing === undefined) {
        const upTo = this.written;
        this.syncing = this.fh.sync().then(
          () => {
            this.synced = Math.max(this.synced, upTo);
            this.syncing = undefined;
          },
          (err: unknown) => {
            this.syncing = undefined;
            throw err;
          },
        );
      }
      await this.syncing;
    }
  }

  /**
   * A run's output as its end record keeps it: in the record when its JSON is small
   * (OUTPUT_INLINE), else written to runs/out/RUNID.json (atomic, durable) before the record that
   * names it.
   */
  async saveOutput(runId: string, out: RunOutput): Promise<{ output: StoredOutput } | { outputFile: string }> {
    const stream = (c: Captured): StoredStream => ({ head: c.head.toString('base64'), tail: c.tail.toString('base64'), totalBytes: c.totalBytes, truncated: c.truncated });
    const stored: StoredOutput = { ...out, stdout: stream(out.stdout), stderr: stream(out.stderr) };
    const json = JSON.stringify(stored);
    if (json.length <= OUTPUT_INLINE) return { output: stored };
    const rel = `out/${runId}.json`;
    await writeAtomic(join(this.dir, rel), json + '\n', { mode: 0o600, purpose: 'output' });
    return { outputFile: rel };
  }

  /** A run's output, or undefined (none kept, or removed by retention). */
  readOutput(runId: string): RunOutput | undefined {
    const end = this.runs.get(runId)?.end;
    const rel = end?.outputFile;
    let o: StoredOutput | undefined = end?.output;
    if (o === undefined && rel !== undefined) {
      const read = readSmallFile(join(this.dir, rel), MAX_OUTPUT_FILE);
      if (read === undefined || 'problem' in read) return undefined;
      o = JSON.parse(read.data.toString('utf8')) as StoredOutput;
    }
    if (o === undefined) return undefined;
    const stream = (c: StoredStream): Captured => ({ head: Buffer.from(String(c.head), 'base64'), tail: Buffer.from(String(c.tail), 'base64'), totalBytes: Number(c.totalBytes), truncated: c.truncated === true });
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
    // Every record written so far is in the new file, durable: no sync starts on the old handle as it closes.
    this.synced = Math.max(this.synced, this.written);
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
