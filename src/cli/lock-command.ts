import { constants } from 'node:os';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { FussyError, withLock } from '../index.js';
import type { Io, OutputFlags } from './io.js';
import { integer } from './parse.js';
import type { CommandResult } from './render.js';

interface LockFlags extends OutputFlags {
  timeout?: number;
  dir?: string;
}

/** `fussy lock NAME [--timeout S] [--dir DIR] [-q] -- COMMAND...` (Fussy's cronlock). */
export function lockCommand(io: Io, done: (r: CommandResult) => void): Command {
  return new Command('lock')
    .description('run COMMAND unless another one holds lock NAME (exit 75); kill its process group after --timeout (exit 124)')
    .argument('<name>', 'lock name, e.g. nightly-backup')
    .argument('<command...>', 'the command and its arguments (after --)')
    .addOption(new Option('--timeout <s>', 'seconds before the command\'s whole process group is terminated').argParser(integer('--timeout', 1)))
    .option('--dir <dir>', 'where the lock files live (default /run/lock/fussy for root, /run/lock/fussy-UID for other users); may be shared by several users if sticky like /tmp')
    .option('-q, --quiet', 'no message when the lock is busy')
    .action(async (name: string, command: string[], f: LockFlags) => done(await runLock(io, name, command, f)));
}

async function runLock(io: Io, name: string, command: string[], f: LockFlags): Promise<CommandResult> {
  const { startProgram } = await import('../util/run.js');
  const [cmd, ...args] = command;
  if (cmd === undefined) throw new FussyError('USAGE', 'fussy lock needs a command to run', { hint: 'fussy lock NAME -- CMD [ARGS...]' });
  let r;
  try {
    r = await withLock(name, { dir: f.dir === undefined ? undefined : resolve(io.cwd, f.dir), what: command.join(' ').slice(0, 200), now: io.now() }, async (lock) => {
      // Its own process group, killed whole: SIGTERM at the timeout, SIGKILL 5 s later (timeout(1) -k).
      const running = await startProgram(cmd, args, {
        env: io.env,
        extendEnv: false,
        cwd: io.cwd,
        stdin: 'inherit',
        output: 'inherit',
        group: true,
        timeoutMs: f.timeout === undefined ? undefined : f.timeout * 1000,
        timeoutSignal: 'SIGTERM',
        forwardSignals: true,
      });
      // The command holds the lock while it runs, so killing fussy does not free it early.
      if (running.pid !== undefined) void lock.transfer(running.pid).catch((err: unknown) => io.stderr.write(`fussy lock: the lock stays with fussy itself: ${(err as Error).message}\n`));
      return running.result;
    });
  } catch (err) {
    // Busy with --quiet: cron wants the status, not a mail about it.
    if (f.quiet === true && err instanceof FussyError && err.code === 'LOCKED') return { json: {}, summary: [], exitCode: err.exitCode };
    throw err;
  }
  if (r.startError !== undefined) throw new FussyError('COMMAND_NOT_STARTED', `cannot run ${cmd}: ${r.startError}`, { hint: 'check the command name and PATH' });
  if (r.timedOut) throw new FussyError('LOCK_TIMEOUT', `${cmd} ran longer than ${f.timeout} s; its process group was terminated`, { hint: 'raise --timeout or find out why it hangs' });
  const status = r.exitCode ?? (r.signal === undefined ? 1 : 128 + (signalNumber(r.signal) ?? 0));
  return { json: { exitCode: status }, summary: [], exitCode: status };
}

function signalNumber(name: string): number | undefined {
  return (constants.signals as Record<string, number | undefined>)[name];
}
