import { Command } from 'commander';
import { rollback } from '../index.js';
import type { Io } from './io.js';
import type { CommandResult } from './render.js';
import { addTargetOptions, targetOptions, type TargetFlags } from './target-options.js';

/** `fussy rollback [--to NAME]`: re-enable an installed release with its hooks. */
export function rollbackCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addTargetOptions(new Command('rollback'))
    .description('re-enable the previous release (or --to NAME) with its hooks; prints its path last')
    .option('--to <name>', 'the release to re-enable (default: the one current before this one)')
    .option('-q, --quiet', 'print only the release path')
    .action(async (f: TargetFlags & { to?: string }) => {
      const r = await io.cancellable((signal) => rollback({ ...targetOptions(io, f), to: f.to, signal }));
      done({ json: { ...r }, summary: [`rolled back to ${r.release}${r.previous === undefined ? '' : ` (was ${r.previous})`}`], stdoutLine: r.path });
    });
}
