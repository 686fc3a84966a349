import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { isErrno } from '../errors.js';
import type { Io } from './io.js';

// What every program (fussy, the compat launchers, fussyd) sets up the same way; apart from
// program.ts so that fussyd does not load every fussy command.

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
