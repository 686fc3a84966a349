import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { formatBytes, Reporter, type Io, type OutputFlags } from './io.js';
import { DEFAULT_TARGET } from './install-command.js';
import { integer } from './parse.js';
import type { CommandResult } from './render.js';

export interface CleanFlags extends OutputFlags {
  target: string;
  keep: number;
  dryRun?: boolean;
  wait?: boolean;
  hookTimeout: number;
}

export function addCleanOptions(cmd: Command): Command {
  return cmd
    .option('-t, --target <dir>', 'firmware directory holding current, failsafe and the releases', DEFAULT_TARGET)
    .addOption(new Option('--keep <n>', 'previous releases to keep besides current and failsafe').default(1).argParser(integer('--keep', 0)))
    .option('-n, --dry-run', 'show what would be removed; remove nothing')
    .option('--wait', 'wait for a running install instead of exiting 75')
    .addOption(new Option('--hook-timeout <s>', 'for recovering an interrupted install first').default(600).argParser(integer('--hook-timeout', 1)))
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print nothing but errors');
}

export function cleanCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addCleanOptions(new Command('clean'))
    .description('remove old releases, keeping current, failsafe and the newest --keep others')
    .action(async (f: CleanFlags) => done(await runClean(io, f)));
}

export async function runClean(io: Io, f: CleanFlags): Promise<CommandResult> {
  const reporter = new Reporter(io, f);
  const { clean } = await import('../install/clean.js');
  const r = await clean({
    target: resolve(io.cwd, f.target),
    keep: f.keep,
    dryRun: f.dryRun,
    wait: f.wait,
    now: io.now(),
    env: io.env,
    cwd: io.cwd,
    hookTimeoutMs: f.hookTimeout * 1000,
    emit: (e) => {
      reporter.event(e);
      if (e.type === 'log') reporter.info(e.message);
    },
  });
  const verb = r.dryRun ? 'would remove' : 'removed';
  const summary = [
    r.removed.length === 0 ? 'nothing to remove' : `${verb} ${r.removed.join(', ')}: ${formatBytes(r.freedBytes)} ${r.dryRun ? 'would be' : ''} freed`.replace('  ', ' '),
    `kept: current -> ${r.current ?? '(none)'}, failsafe${r.kept.length > 0 ? `, ${r.kept.join(', ')}` : ''}`,
    ...r.foreign.map((n) => `left alone (not a release): ${n}`),
  ];
  return { json: { ...r }, summary };
}
