import { isSystemError } from '../errors.js';
import { ensureTrustedDir } from '../util/trusted-path.js';
import { AuditLog } from './audit.js';
import type { DaemonConfig } from './config.js';
import { DataStore } from './data.js';
import { RunEngine, type EngineOptions } from './runs/engine.js';
import { Scheduler, type SchedulerOptions } from './schedule/scheduler.js';
import { ScriptStore } from './scripts.js';
import type { Log } from './server.js';
import { UploadService } from './upload-service.js';

const DAY_MS = 86_400_000;

/** The daemon's state, each part in its own module: what the routes act on. */
export interface DaemonParts {
  data: DataStore;
  audit: AuditLog;
  scripts: ScriptStore;
  engine: RunEngine;
  uploads: UploadService;
  scheduler: Scheduler;
  /** The daily prune of unused script objects. */
  pruner: NodeJS.Timeout;
}

export interface PartsOptions {
  log: Log;
  now: () => Date;
  engine?: Partial<Pick<EngineOptions, 'drainMs' | 'graceMs' | 'passwd' | 'hosts'>>;
  schedule?: Partial<Pick<SchedulerOptions, 'clock' | 'random' | 'watchIntervalMs'>>;
}

/**
 * Open fussyd's state directory (it must be trusted: fussyd acts in it as root): data, scripts
 * (pruned at start and daily), the run engine (runs a previous fussyd left are ended abandoned
 * and logged), the audit log, uploads, and the scheduler (not started yet).
 */
export async function openParts(config: DaemonConfig, o: PartsOptions): Promise<DaemonParts> {
  const { log, now } = o;
  // As root, fussyd acts in its state dir: nobody else may own or write it, or any dir above it.
  ensureTrustedDir(config.stateDir, { what: 'state directory', mode: 0o750, missingHint: 'check state-dir in fussyd.conf' });
  const data = await DataStore.open(config.stateDir);
  const scripts = await ScriptStore.open(config.stateDir, { maxBytes: config.maxScriptBytes, now });
  // Objects no name points at, unused for history-days: at start and daily (docs/daemon.md).
  const prune = (): Promise<void> =>
    scripts.prune(config.historyDays * DAY_MS).then(
      (ids) => void (ids.length > 0 && log({ event: 'scripts-pruned', ids })),
      (err: unknown) => {
        if (!isSystemError(err)) throw err;
        log({ event: 'scripts-prune-failed', error: err.message });
      },
    );
  await prune();
  const pruner = setInterval(() => void prune(), DAY_MS).unref();
  const { engine, abandoned } = await RunEngine.open({
    stateDir: config.stateDir,
    scripts,
    dataDir: data.dir,
    target: config.target,
    runAs: config.runAs,
    maxRuns: config.maxRuns,
    timeoutMs: config.runTimeout * 1000,
    maxTimeoutMs: config.maxRunTimeout * 1000,
    outputHead: config.outputHead,
    outputTail: config.outputTail,
    historyKeep: config.historyKeep,
    historyDays: config.historyDays,
    now,
    ...o.engine,
  });
  for (const a of abandoned) log({ event: 'run-abandoned', runId: a.runId, script: a.script, trigger: a.trigger, queuedAt: a.queuedAt, killed: a.killed ?? 0 });
  const audit = await AuditLog.open(config.stateDir, now);
  const scheduler = await Scheduler.open({ stateDir: config.stateDir, engine, scripts, target: config.target, notify: config.scheduleNotify, maxTimeoutS: config.maxRunTimeout, log, ...o.schedule });
  // An install through fussyd may swap `current`: the firmware's jobs are read again at once, not at the next look.
  const uploads = UploadService.open(config, { log, now, afterInstall: () => scheduler.checkCurrent() });
  return { data, audit, scripts, engine, uploads, scheduler, pruner };
}

/** Close what openParts opened (fussyd did not get to listen). */
export async function closeParts(p: DaemonParts): Promise<void> {
  clearInterval(p.pruner);
  p.scheduler.quiesce(); // as Daemon.close: no firing, the engine's close ends the runs, then the state is written
  await p.engine.close();
  await p.scheduler.stop();
  await p.audit.close();
  p.data.close();
  p.uploads.close();
}
