import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { isErrno } from '../errors.js';
import type { Io } from './io.js';
import { installCommand } from './install-command.js';
import { keygenCommand } from './keygen-command.js';
import { cleanCommand } from './clean-command.js';
import { historyCommand } from './history-command.js';
import { recoverCommand } from './recover-command.js';
import { rollbackCommand } from './rollback-command.js';
import { lockCommand } from './lock-command.js';
import { linkTreeCommand } from './link-tree-command.js';
import { verifyCommand } from './verify-command.js';
import { statusCommand } from './status-command.js';
import { pkiCommand } from './pki-command.js';
import { addPackOptions, runPack, type PackFlags } from './pack-command.js';
import type { CommandResult } from './render.js';

export const VERSION: string = packageVersion();

/** fussy's version from its package.json, found upwards from this file (dist/src/cli or dist/bundle). */
function packageVersion(): string {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'fussy' && typeof pkg.version === 'string') return pkg.version;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    if (dir.pathname === '/') throw new Error(`fussy's package.json was not found above ${import.meta.url}`);
  }
}

/** Wire commander's output through Io and make it throw instead of exiting (one exit point). */
export function configure(cmd: Command, io: Io): Command {
  return cmd
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)');
}

export function buildProgram(io: Io, done: (r: CommandResult) => void): Command {
  const program = configure(new Command('fussy'), io)
    .description('signed, deduplicated, crash-safe firmware upgrades')
    .version(VERSION, '-V, --version')
    .enablePositionalOptions();

  program.addCommand(
    configure(
      addPackOptions(new Command('pack'))
        .description('pack DIR into a signed (optionally encrypted) <release>.tar.gz.gpg; prints its path last')
        .argument('<dir>', 'firmware directory; its name is the release name')
        .option('--json', 'print one JSON object; progress as NDJSON on stderr')
        .option('-q, --quiet', 'print only the package path')
        .action(async (dir: string, f: PackFlags) => done(await runPack(io, dir, f))),
      io,
    ),
  );
  program.addCommand(configure(installCommand(io, done), io));
  program.addCommand(configure(keygenCommand(io, done), io));
  program.addCommand(configure(recoverCommand(io, done), io));
  program.addCommand(configure(historyCommand(io, done), io));
  program.addCommand(configure(cleanCommand(io, done), io));
  program.addCommand(configure(rollbackCommand(io, done), io));
  program.addCommand(configure(lockCommand(io, done), io));
  program.addCommand(configure(linkTreeCommand(io, done), io));
  program.addCommand(configure(verifyCommand(io, done), io));
  program.addCommand(configure(statusCommand(io, done), io));
  const pki = configure(pkiCommand(io, done), io);
  for (const sub of pki.commands) configure(sub, io);
  program.addCommand(pki);
  return program;
}
