import { Command, InvalidArgumentError, Option } from 'commander';
import type { RemoteClient } from '../remote/client.js';
import { runExitStatus } from '../remote/runs.js';
import { addJob, listJobs, nextFirings, removeJob, runJob, setJobEnabled, type Origin, type RemoteJob } from '../remote/schedule.js';
import { configure } from './configure.js';
import type { Io } from './io.js';
import { integer } from './parse.js';
import type { CommandResult } from './render.js';
import { printRun, textTable, type Run, type Sub } from './remote-runs.js';

interface CronFlags {
  json?: boolean;
  count?: number;
  firmware?: boolean;
}

interface AddFlags extends CronFlags {
  timezone?: string;
  priority?: number;
  timeout?: number;
  overlap?: string;
  missed?: string;
  randomDelay?: number;
  notify?: string;
  disabled?: boolean;
}

/**
 * `fussy remote cron ls|add|rm|enable|disable|run|next` (docs/commands.md): the device's
 * scheduled jobs, the operator's and the firmware's side by side. The device checks everything
 * (roles: viewer reads, operator runs and enables, admin adds and removes); `run` exits with the
 * run's status, as exec does.
 */
export function addCronCommands(sub: Sub, run: Run, io: Io): void {
  const cron = sub('cron', "the device's scheduled jobs: the operator's (added here) and the current firmware's (its etc/fussy/jobs.json)");
  const cmd = (name: string, description: string): Command => {
    const c = configure(new Command(name), io).description(description).option('--json', 'print one JSON object');
    cron.addCommand(c);
    return c;
  };
  const firmware = (): Option => new Option('--firmware', 'the firmware job of this name (when an operator job has the same name)');
  const origin = (f: CronFlags): Origin | undefined => (f.firmware === true ? 'firmware' : undefined);
  cmd('ls', 'every job with its next firings, last outcome and failures in a row; problems (a malformed jobs file) on stderr')
    .option('--count <n>', 'next firings shown per job (3)', integer('--count', 1, 100))
    .action((f: CronFlags) =>
      run<CronFlags>(async (c, _f, json, { io: out }) => {
        const r = await listJobs(c, f.count);
        if (!json) {
          out.stdout.write(jobsTable(r.jobs));
          for (const p of r.problems) out.stderr.write(`fussy remote cron: ${c.host}: ${p}\n`);
        }
        return { json: { host: c.host, ...r }, summary: [] };
      })(f),
    );
  cmd('add', 'add an operator job (admin): NAME, a schedule of five cron fields and an optional year, a stored SCRIPT, its ARGS after --')
    .argument('<name>')
    .argument('<schedule>', 'minute hour day-of-month month day-of-week [year], e.g. "30 2 * * *"')
    .argument('<script>', 'a stored script (fussy remote ls), by name or id')
    .argument('[args...]')
    .option('--timezone <zone>', "an IANA zone, e.g. Europe/Berlin (default: the device's)")
    .option('--priority <n>', 'higher runs first when runs wait for a slot, -100 to 100 (0)', signedInt('--priority', -100, 100))
    .option('--timeout <seconds>', "the run's time limit (default: the device's run-timeout)", integer('--timeout', 1, 7 * 86400))
    .addOption(new Option('--overlap <policy>', 'a firing while a run of the job is in progress: skip it (recorded), or allow a second run').choices(['skip', 'allow']))
    .addOption(new Option('--missed <policy>', 'firings missed while fussyd or the device was down: skip them (recorded), or run once').choices(['skip', 'run-once']))
    .option('--random-delay <seconds>', 'wait a random 0..N s before each run (a fleet does not hit a server at once)', integer('--random-delay', 0, 86400))
    .option('--notify <script>', 'a stored script run when the job fails, and when it recovers')
    .option('--disabled', 'add it disabled')
    .action((name: string, schedule: string, script: string, args: string[], f: AddFlags) =>
      run<AddFlags>(async (c) => {
        const job = await addJob(c, {
          name,
          schedule,
          script,
          ...(args.length === 0 ? {} : { args }),
          ...(f.timezone === undefined ? {} : { timezone: f.timezone }),
          ...(f.priority === undefined ? {} : { priority: f.priority }),
          ...(f.timeout === undefined ? {} : { timeout: f.timeout }),
          ...(f.overlap === undefined ? {} : { overlap: f.overlap }),
          ...(f.missed === undefined ? {} : { missed: f.missed }),
          ...(f.randomDelay === undefined ? {} : { randomDelay: f.randomDelay }),
          ...(f.notify === undefined ? {} : { notify: f.notify }),
          ...(f.disabled === true ? { enabled: false } : {}),
        });
        return { json: { host: c.host, job }, summary: [`added job ${job.name} on ${c.host}${job.next[0] === undefined ? '' : `; next run ${job.next[0]}`}`] };
      })(f),
    );
  cmd('rm', 'remove an operator job (admin; a firmware job is changed by its firmware, or disabled)')
    .argument('<name>')
    .action((name: string, f: CronFlags) =>
      run<CronFlags>(async (c) => {
        await removeJob(c, name);
        return { json: { host: c.host, removed: name }, summary: [`removed job ${name} on ${c.host}`] };
      })(f),
    );
  for (const enabled of [true, false]) {
    cmd(enabled ? 'enable' : 'disable', `${enabled ? 'enable' : 'disable'} a job (operator; a firmware job's choice lasts while its firmware declares it)`)
      .argument('<name>')
      .addOption(firmware())
      .action((name: string, f: CronFlags) =>
        run<CronFlags>(async (c) => {
          const job = await setJobEnabled(c, name, enabled, origin(f));
          return { json: { host: c.host, job }, summary: [`${enabled ? 'enabled' : 'disabled'} ${job.origin} job ${job.name} on ${c.host}`] };
        })(f),
      );
  }
  cmd('run', "run a job now (operator) and exit with its run's status, as exec does")
    .argument('<name>')
    .addOption(firmware())
    .action((name: string, f: CronFlags) =>
      run<CronFlags>(async (c, _f, json, { io: out }) => {
        const r = await runJob(c, name, origin(f), (e) => {
          if (!json && e.type === 'queued') out.stderr.write(`waiting for a free run slot on ${c.host} (${String(e.running)} running)\n`);
        });
        if (!json) printRun(out, r);
        return { json: { host: c.host, ...r }, summary: [], exitCode: runExitStatus(r) };
      })(f),
    );
  cmd('next', "a job's next firings, in UTC (and in the job's time zone when it names one)")
    .argument('<name>')
    .option('--count <n>', 'how many (10)', integer('--count', 1, 100))
    .addOption(firmware())
    .action((name: string, f: CronFlags) =>
      run<CronFlags>(async (c: RemoteClient, _f, json, { io: out }) => {
        const r = await nextFirings(c, name, f.count ?? 10, origin(f));
        if (!json) for (const t of r.next) out.stdout.write(r.job.timezone === undefined ? `${t}\n` : `${t}  ${local(t, r.job.timezone)}\n`);
        return { json: { host: c.host, job: r.job.name, origin: r.job.origin, timezone: r.job.timezone ?? null, next: r.next }, summary: [] } satisfies CommandResult;
      })(f),
    );
}

function signedInt(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} takes a whole number from ${min} to ${max}, not "${v}"`);
    return n;
  };
}

/** A time as the job's zone shows it. */
function local(iso: string, zone: string | undefined): string {
  return new Intl.DateTimeFormat('sv-SE', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', timeZoneName: 'short' }).format(new Date(iso));
}

/** The schedule's part of fussyd's status (daemon/schedule/scheduler.ts, status()). */
export interface ScheduleStatus {
  jobs: number;
  enabled: number;
  failing: Array<{ name: string; origin: string; failures: number; last?: { at: string; outcome: string; exitCode?: number } }>;
  problems: string[];
}

/** Lines for `fussy remote status`: the jobs, each failing one with its streak, each problem. */
export function scheduleLines(s: ScheduleStatus | undefined): string[] {
  if (s === undefined) return [];
  return [
    `schedule: ${s.jobs} job${s.jobs === 1 ? '' : 's'}, ${s.enabled} enabled, ${s.failing.length} failing`,
    ...s.failing.map((f) => `  failing: ${f.name} (${f.origin}): ${f.failures} failure${f.failures === 1 ? '' : 's'} in a row${f.last === undefined ? '' : `, last ${f.last.outcome}${f.last.exitCode === undefined ? '' : ` (exit ${f.last.exitCode})`} at ${f.last.at}`}`),
    ...s.problems.map((p) => `  problem: ${p}`),
  ];
}

/** NAME, ORIGIN, SCHEDULE, RUNS, NEXT, LAST, FAILS: one line a job. */
export function jobsTable(jobs: RemoteJob[]): string {
  const rows = jobs.map((j) => [
    j.name,
    j.origin,
    `${j.schedule}${j.timezone === undefined ? '' : ` ${j.timezone}`}`,
    `${j.script ?? j.command ?? ''}${j.args.length === 0 ? '' : ' ...'}`,
    !j.enabled ? 'disabled' : (j.next[0]?.replace('T', ' ').replace(/:00\.000Z$/, 'Z') ?? 'never'),
    j.last === undefined ? '-' : `${j.last.outcome}${j.last.exitCode === undefined || j.last.outcome === 'ok' ? '' : ` ${j.last.exitCode}`} ${j.last.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}`,
    String(j.failures),
  ]);
  return textTable(['NAME', 'ORIGIN', 'SCHEDULE', 'RUNS', 'NEXT', 'LAST', 'FAILS'], rows);
}
