import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { FussyError } from '../index.js';
import type { RemoteClient } from '../remote/client.js';
import { execRun, listRuns, outputBytes, parseSince, runExitStatus, type RemoteOutput, type RemoteRun } from '../remote/runs.js';
import { putScript } from '../remote/scripts.js';
import { formatBytes, type Io } from './io.js';
import { integer } from './parse.js';
import type { CommandResult } from './render.js';
import type { Where } from './remote-hosts.js';

/** The subcommand factory and runner of remote-command.ts. */
export type Sub = (name: string, description: string) => Command;
export type Run = <F extends { json?: boolean }>(fn: (c: RemoteClient, f: F, json: boolean, at: Where) => Promise<CommandResult>, o?: { oneHost?: string }) => (f: F) => Promise<void>;

interface ExecFlags {
  timeout?: number;
  json?: boolean;
}

interface HistoryFlags {
  script?: string;
  since?: string;
  limit?: number;
  json?: boolean;
}

/**
 * `exec NAME|FILE [--timeout S] [-- ARGS...]` and `history [--script NAME] [--since T] [--json]`
 * (docs/commands.md). exec prints the run's stdout on stdout and its stderr on stderr, then a
 * js/Viri result as JSON on stdout, and exits with runExitStatus (the script's own status).
 */
export function addRunCommands(sub: Sub, run: Run): void {
  sub('exec', 'run a script on the device (a local FILE is stored first) and exit with its status')
    .argument('<script>', 'a script name or id on the device, or a local file (one holding a "/" or existing here)')
    .argument('[args...]', 'the arguments of the script, after --')
    .option('--timeout <seconds>', "the run's time limit (default: the device's run-timeout)", seconds)
    .action((script: string, args: string[], f: ExecFlags) =>
      run<ExecFlags>(async (c, _f, json, { io }) => {
        let target = script;
        const local = resolve(io.cwd, script);
        if (script.includes('/') || existsSync(local)) {
          if (!existsSync(local)) throw new FussyError('USAGE', `${script} does not exist here`, { hint: 'a name with no "/" runs the script of that name on the device' });
          const put = await putScript(c, local, basename(local));
          if (!json) io.stderr.write(`stored ${put.name} as ${put.id.slice(0, 12)} on ${c.host}\n`);
          target = put.id;
        }
        const r = await execRun(c, {
          script: target,
          args,
          ...(f.timeout === undefined ? {} : { timeoutSec: f.timeout }),
          onEvent: (e) => {
            if (!json && e.type === 'queued') io.stderr.write(`waiting for a free run slot on ${c.host} (${String(e.running)} running)\n`);
          },
        });
        if (!json) printRun(io, r);
        return { json: { host: c.host, ...r }, summary: [], exitCode: runExitStatus(r) };
      })(f),
    );
  sub('history', 'the runs on the device, newest first')
    .option('--script <name>', 'runs of this script name only')
    .option('--since <time>', 'runs queued since this time (2025-01-31T12:00:00Z) or this long ago (90m, 2h, 7d)')
    .option('--limit <n>', 'at most this many runs (100)', integer('--limit', 1, 10_000))
    .action((f: HistoryFlags) =>
      run<HistoryFlags>(async (c, _f, json, { io }) => {
        const runs = await listRuns(c, { script: f.script, since: f.since === undefined ? undefined : parseSince(f.since, io.now()), limit: f.limit });
        if (!json) io.stdout.write(historyTable(runs));
        return { json: { host: c.host, runs }, summary: [] };
      })(f),
    );
}

function seconds(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(n > 0)) throw new InvalidArgumentError(`--timeout takes seconds above 0, not "${v}"`);
  return n;
}

/** The run's output where it belongs, its result as JSON, and why it ended when that was not an exit. */
export function printRun(io: Io, r: RemoteRun): void {
  stream(io, io.stdout, 'stdout', r.stdout);
  stream(io, io.stderr, 'stderr', r.stderr);
  if ('result' in r) io.stdout.write(JSON.stringify(r.result, null, 2) + '\n');
  if (typeof r.error === 'object') io.stderr.write(`${r.error.stack ?? r.error.message}\n`);
  else if (typeof r.error === 'string') io.stderr.write(`${r.error}\n`);
  if (r.startError !== undefined) io.stderr.write(`fussy remote exec: ${r.script.name} did not start: ${r.startError}\n`);
  if (r.status === 'timeout') io.stderr.write(`fussy remote exec: ${r.script.name} reached its time limit (run ${r.runId})\n`);
  else if (r.status === 'signaled') io.stderr.write(`fussy remote exec: ${r.script.name} was killed by ${r.signal ?? 'a signal'}\n`);
  else if (!['exited', 'not-started'].includes(r.status)) io.stderr.write(`fussy remote exec: run ${r.runId} ended ${r.status}: fussyd stopped before the script did\n`);
}

function stream(io: Io, sink: NodeJS.WritableStream, what: string, o: RemoteRun['stdout']): void {
  if (o === undefined || !('encoding' in o)) return;
  const { head, tail } = outputBytes(o as RemoteOutput);
  sink.write(head);
  if (o.truncated) io.stderr.write(`\n[fussy remote: ${formatBytes(o.totalBytes - head.length - tail.length)} of ${what} not kept by the device (output-head, output-tail)]\n`);
  sink.write(tail);
}

/** time, who, script, args, status, duration: one line a run. */
export function historyTable(runs: RemoteRun[]): string {
  const rows = runs.map((r) => [
    r.queuedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.trigger.kind === 'user' ? r.trigger.cn : `${r.trigger.kind}:${r.trigger.job}`,
    `${r.script.name} (${r.script.id.slice(0, 12)})`,
    clip(r.args.map((a) => (/^[\w./:=@%+,-]+$/.test(a) ? a : JSON.stringify(a))).join(' '), 40),
    statusText(r),
    r.durationMs === undefined ? '-' : `${(r.durationMs / 1000).toFixed(1)}s`,
  ]);
  return textTable(['TIME', 'WHO', 'SCRIPT', 'ARGS', 'STATUS', 'DURATION'], rows);
}

/** Columns padded to their widest cell, two spaces apart; the last one unpadded. */
export function textTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  return [head, ...rows].map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  ')).join('\n') + '\n';
}

function statusText(r: RemoteRun): string {
  if (r.status === 'exited') return `exit ${r.exitCode ?? '?'}`;
  if (r.status === 'signaled') return `killed ${r.signal ?? ''}`.trim();
  return r.status;
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}
