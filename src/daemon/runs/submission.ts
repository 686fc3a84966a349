import type { RunOutput } from './history.js';
import type { EndStatus, RunSummary, Trigger } from './records.js';

/** What goes into the run engine (engine.ts) and what comes out of it. */

export interface Submission {
  /** A stored script's name or id (ScriptStore.resolve); or, instead, a firmware job's program. */
  script?: string;
  program?: FirmwareProgram;
  args?: string[];
  timeoutMs?: number;
  /** Higher runs first (0). */
  priority?: number;
  trigger: Trigger;
  /** Its stdin (default /dev/null) and variables added to its environment: a notify run's input. */
  stdin?: Buffer;
  env?: Record<string, string>;
}

/** A program of the current release (a firmware job's command or notify): run in place, from the release's root. */
export interface FirmwareProgram {
  /** Its absolute path (checked by schedule/jobs.ts: inside the release, a trusted path). */
  path: string;
  /** As the job names it, relative to the release root: the history's script name. */
  name: string;
  /** The release directory (its cwd) and the release's name (the history's `release`). */
  releaseDir: string;
  release: string;
}

/** What the scheduler records without a run (records.ts, EndStatus). */
export interface NotRun {
  trigger: Trigger;
  script: { name: string; id: string };
  release?: string;
  args?: string[];
  priority?: number;
  status: 'skipped' | 'missed' | 'invalid' | 'not-started';
  reason: string;
}

export interface RunStarted {
  runId: string;
  /** The leader's pid; undefined when the run never started (cancelled, or it could not start). */
  pid?: number;
  waitMs: number;
}

/** A finished run: its history summary, plus the whole of its output and result. */
export interface RunRecord extends RunSummary {
  status: EndStatus;
  output: RunOutput;
}

export interface Submitted {
  runId: string;
  /** Resolves as the run leaves the queue; never rejects. */
  started: Promise<RunStarted>;
  /** Resolves once the run is recorded and queued: true when it waits for a free slot (max-runs), false when it started at once or never will. */
  waiting: Promise<boolean>;
  /** Resolves when the run ended and its end is recorded; rejects only if the history cannot be written. */
  done: Promise<RunRecord>;
}
