import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type { FussyEvent } from '../index.js';
import { Reporter, type Io, type OutputFlags } from './io.js';
import { describe } from './install-command.js';
import { addTarget } from './target-flag.js';
import { integer } from './parse.js';

/** Flags of the commands that change a target under its lock (recover, rollback, clean). */
export interface TargetFlags extends OutputFlags {
  target: string;
  hookTimeout: number;
  wait?: boolean;
}

export function addTargetOptions(cmd: Command): Command {
  return addTarget(cmd)
    .addOption(new Option('--hook-timeout <s>', "seconds before a hook's process group is killed").default(600).argParser(integer('--hook-timeout', 1)))
    .option('--wait', 'wait for a running install or clean instead of exiting 75')
    .option('--json', 'print one JSON object; events as NDJSON on stderr');
}

/** The library options those commands share, with events rendered as install renders them. */
export function targetOptions(io: Io, f: TargetFlags) {
  const reporter = new Reporter(io, f);
  return {
    target: resolve(io.cwd, f.target),
    env: io.env,
    cwd: io.cwd,
    hookTimeoutMs: f.hookTimeout * 1000,
    wait: f.wait,
    now: io.now(),
    failpoint: io.env.FUSSY_FAILPOINT, // crash-safety tests only (util/failpoint.ts)
    onEvent: (e: FussyEvent) => {
      reporter.event(e);
      const line = describe(e);
      if (line !== undefined) reporter.info(line);
    },
  };
}
