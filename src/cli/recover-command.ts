import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { Reporter, type Io, type OutputFlags } from './io.js';
import { DEFAULT_TARGET } from './install-command.js';
import { integer } from './parse.js';
import type { CommandResult } from './render.js';

interface RecoverFlags extends OutputFlags {
  target: string;
  hookTimeout: number;
  wait?: boolean;
}

/** `fussy recover`: finish or undo a transaction a crash interrupted (install does it too). */
export function recoverCommand(io: Io, done: (r: CommandResult) => void): Command {
  return new Command('recover')
    .description('finish or undo an install that a crash or power cut interrupted (install and clean do this first anyway)')
    .option('-t, --target <dir>', 'firmware directory holding current, failsafe and the releases', DEFAULT_TARGET)
    .addOption(new Option('--hook-timeout <s>', "seconds before a hook's process group is killed").default(600).argParser(integer('--hook-timeout', 1)))
    .option('--wait', 'wait for a running install or clean instead of exiting 75')
    .option('--json', 'print one JSON object; events as NDJSON on stderr')
    .option('-q, --quiet', 'print nothing but errors')
    .action(async (f: RecoverFlags) => done(await runRecover(io, f)));
}

async function runRecover(io: Io, f: RecoverFlags): Promise<CommandResult> {
  const reporter = new Reporter(io, f);
  const { recover } = await import('../install/recover.js');
  const r = await recover({
    target: resolve(io.cwd, f.target),
    env: io.env,
    cwd: io.cwd,
    hookTimeoutMs: f.hookTimeout * 1000,
    wait: f.wait,
    now: io.now(),
    failpoint: io.env.FUSSY_FAILPOINT, // crash-safety tests only (install/failpoint.ts)
    emit: (e) => {
      reporter.event(e);
      if (e.type === 'log') reporter.info(e.message);
      else if (e.type === 'hook') reporter.info(`${e.phase}${e.recovery ? ' (recovery)' : ''}: ${e.line}`);
      else if (e.type === 'switch') reporter.info(`current -> ${e.release}${e.recovery ? ' (recovery)' : ''}`);
    },
  });
  return { json: { ...r }, summary: [r.message] };
}
