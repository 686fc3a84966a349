import { Command } from 'commander';
import { recover } from '../index.js';
import type { Io } from './io.js';
import type { CommandResult } from './render.js';
import { addTargetOptions, targetOptions, type TargetFlags } from './target-options.js';

/** `fussy recover`: finish or undo a transaction a crash interrupted (install does it too). */
export function recoverCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addTargetOptions(new Command('recover'))
    .description('finish or undo an install that a crash or power cut interrupted (install and clean do this first anyway)')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (f: TargetFlags) => {
      const r = await recover(targetOptions(io, f));
      done({ json: { ...r }, summary: [r.message] });
    });
}
