import { Command, Option } from 'commander';
import { clean } from '../index.js';
import { formatBytes, type Io } from './io.js';
import { integer } from './parse.js';
import type { CommandResult } from './render.js';
import { addTargetOptions, targetOptions, type TargetFlags } from './target-options.js';

export interface CleanFlags extends TargetFlags {
  keep: number;
  dryRun?: boolean;
}

export function addCleanOptions(cmd: Command): Command {
  return addTargetOptions(cmd)
    .addOption(new Option('--keep <n>', 'previous releases to keep besides current and failsafe').default(1).argParser(integer('--keep', 0)))
    .option('-n, --dry-run', 'show what would be removed; remove nothing')
    .option('-q, --quiet', 'print nothing but errors');
}

export function cleanCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addCleanOptions(new Command('clean'))
    .description('remove old releases, keeping current, failsafe and the newest --keep others')
    .action(async (f: CleanFlags) => done(await runClean(io, f)));
}

export async function runClean(io: Io, f: CleanFlags): Promise<CommandResult> {
  const r = await clean({ ...targetOptions(io, f), keep: f.keep, dryRun: f.dryRun });
  const verb = r.dryRun ? 'would remove' : 'removed';
  const summary = [
    r.removed.length === 0 ? 'nothing to remove' : `${verb} ${r.removed.join(', ')}: ${formatBytes(r.freedBytes)} ${r.dryRun ? 'would be' : ''} freed`.replace('  ', ' '),
    `kept: current -> ${r.current ?? '(none)'}, failsafe${r.kept.length > 0 ? `, ${r.kept.join(', ')}` : ''}`,
    ...r.foreign.map((n) => `left alone (not a release): ${n}`),
  ];
  return { json: { ...r }, summary };
}
