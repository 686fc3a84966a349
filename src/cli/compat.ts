import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { FussyError } from '../errors.js';
import type { Io } from './io.js';
import { addPackOptions, runPack, type PackFlags } from './pack-command.js';
import { addCleanOptions, runClean, type CleanFlags } from './clean-command.js';
import { addLinkTreeOptions, runLinkTree, type LinkTreeFlags } from './link-tree-command.js';
import { addInstallOptions, runInstall, type InstallFlags } from './install-command.js';
import { configure, VERSION } from './program.js';
import type { CommandResult } from './render.js';
import { collect } from './parse.js';

interface FussyPackFlags extends PackFlags {
  root: string;
  unsigned?: boolean;
  tarname?: string;
  key?: string;
  fussyExclude: string[];
}

/**
 * `fussy-pack` with the original's flags (Fussy's fussy-pack): -r ROOT
 * (default "firmware"), -x EXCLUDE, -e RECIPIENT, -k KEY (gpg -u), -u (unsigned .tar.gz),
 * -t TARNAME. Like the original it signs with the system gpg unless --signing-key is given,
 * so build scripts keep working unchanged; fussy's own options are accepted too.
 */
export function fussyPackProgram(io: Io, done: (r: CommandResult) => void): Command {
  return configure(addPackOptions(new Command('fussy-pack')), io)
    .version(VERSION, '-V, --version')
    .description('pack a firmware directory (Fussy-compatible launcher of fussy pack)')
    .option('-r, --root <dir>', 'firmware directory to pack', 'firmware')
    .option('-x, --fussy-exclude <pattern>', 'exclude pattern (tar --exclude); repeatable', collect, [])
    .option('-k, --key <id>', 'gpg key to sign with (gpg -u)')
    .option('-u, --unsigned', 'write the unsigned .tar.gz only')
    .option('-t, --tarname <name>', 'archive file name (default <root>.tar.gz)')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print only the package path')
    .action(async (f: FussyPackFlags) => {
      const useGpg = f.signingKey.length === 0;
      const flags: PackFlags = {
        ...f,
        exclude: [...f.fussyExclude, ...f.exclude],
        gpg: useGpg || f.gpg,
        localUser: f.key !== undefined ? [f.key, ...f.localUser] : f.localUser,
      };
      let output = f.output;
      let fileName: string | undefined;
      if (f.tarname !== undefined) {
        if (f.tarname.includes('/')) throw new FussyError('USAGE', `--tarname "${f.tarname}" must be a file name, not a path`, { hint: 'use -o for the directory' });
        fileName = f.unsigned ? f.tarname : `${f.tarname}.gpg`;
        output ??= (await mkdtemp(join(io.env.TMPDIR ?? tmpdir(), 'fussy-pack-'))) + '/';
      }
      done(await runPack(io, f.root, { ...flags, output }, { unsigned: f.unsigned === true, fileName }));
    });
}

/**
 * `fussy-install [-f FILE | FILE] [-k KEYRING] [-t TARGET] [-u] [-l LOGFILE]` (Fussy 2.6). -u was
 * parsed and ignored by the original and is accepted the same way; -l appends the log to a file.
 */
export function fussyInstallProgram(io: Io, done: (r: CommandResult) => void): Command {
  return configure(addInstallOptions(new Command('fussy-install')), io)
    .version(VERSION, '-V, --version')
    .description('verify and install a firmware package (Fussy-compatible launcher of fussy install)')
    .argument('[package]', '.tar.gz.gpg or .tar.gz.asc')
    .option('-f, --file <package>', 'the package (as the original\'s -f)')
    .option('-u, --unpacked', 'accepted and ignored, as by the original')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print only the release path')
    .action(async (pkg: string | undefined, f: InstallFlags & { file?: string }) => {
      const file = f.file ?? pkg;
      if (file === undefined) throw new FussyError('USAGE', 'need a package to install', { hint: 'fussy-install FILE.tar.gz.gpg' });
      done(await runInstall(io, file, f));
    });
}

/** fussy-clean: the same as fussy clean (-t, --keep, --dry-run). */
export function fussyCleanProgram(io: Io, done: (r: CommandResult) => void): Command {
  return configure(addCleanOptions(new Command('fussy-clean')), io)
    .version(VERSION, '-V, --version')
    .description('remove old releases (Fussy-compatible launcher of fussy clean)')
    .action(async (f: CleanFlags) => done(await runClean(io, f)));
}

/** fussy-link-tree: the same as fussy link-tree. */
export function fussyLinkTreeProgram(io: Io, done: (r: CommandResult) => void): Command {
  return configure(addLinkTreeOptions(new Command('fussy-link-tree')), io)
    .version(VERSION, '-V, --version')
    .description('link every file under SOURCE from the same path under DEST (Fussy-compatible launcher of fussy link-tree)')
    .action(async (source: string, dest: string, f: LinkTreeFlags) => done(await runLinkTree(io, source, dest, f)));
}
