import '../util/quiet-warnings.js';
import type { Command } from 'commander';
import { fussyCleanProgram, fussyInstallProgram, fussyLinkTreeProgram, fussyPackProgram } from './compat.js';
import { installGuard } from './guard.js';
import { processIo, type Io, type OutputFlags } from './io.js';
import { buildProgram } from './program.js';
import { renderError, renderResult, type CommandResult } from './render.js';

export { processIo };

export type Launcher = 'fussy' | 'fussy-pack' | 'fussy-install' | 'fussy-clean' | 'fussy-link-tree';

/** Run one command line; returns the exit status (the README's exit codes). Never calls process.exit. */
export async function main(launcher: Launcher, argv: string[], io: Io): Promise<number> {
  const { flags, prog } = invocation(launcher, argv);
  let result: CommandResult | undefined;
  const done = (r: CommandResult): void => {
    result = r;
  };
  let program: Command;
  if (launcher === 'fussy') program = buildProgram(io, done);
  else if (launcher === 'fussy-pack') program = fussyPackProgram(io, done);
  else if (launcher === 'fussy-install') program = fussyInstallProgram(io, done);
  else if (launcher === 'fussy-clean') program = fussyCleanProgram(io, done);
  else program = fussyLinkTreeProgram(io, done);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    return renderError(io, flags, prog, err);
  }
  return result === undefined ? 0 : renderResult(io, flags, result);
}

/** How output is shaped (--json, --quiet) and what messages are prefixed with ("fussy install"). */
function invocation(launcher: Launcher, argv: string[]): { flags: OutputFlags; prog: string } {
  // What follows "--" belongs to someone else (the ARGS of fussy remote exec), not to fussy.
  const ours = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv;
  const flags: OutputFlags = { json: ours.includes('--json'), quiet: ours.includes('--quiet') || ours.includes('-q') };
  const prog = launcher === 'fussy' && argv[0] !== undefined && !argv[0].startsWith('-') ? `fussy ${argv[0]}` : launcher;
  return { flags, prog };
}

export async function runLauncher(launcher: Launcher): Promise<void> {
  dropLauncherTunables(process.env);
  const argv = process.argv.slice(2);
  const io = processIo();
  const { flags, prog } = invocation(launcher, argv);
  installGuard((err) => renderError(io, flags, prog, err));
  process.exitCode = await main(launcher, argv, io);
}

/**
 * The sh launchers in bin/ add a glibc allocator setting for fussy itself (FUSSY_TUNABLES, appended
 * to GLIBC_TUNABLES). Hooks, gpg and anything else fussy starts get the caller's environment as it
 * was: the setting is taken out again here, before anything reads the environment.
 */
export function dropLauncherTunables(env: NodeJS.ProcessEnv): void {
  const ours = env.FUSSY_TUNABLES;
  if (ours === undefined) return;
  delete env.FUSSY_TUNABLES;
  const all = env.GLIBC_TUNABLES;
  if (all === ours) delete env.GLIBC_TUNABLES;
  else if (all?.endsWith(`:${ours}`) === true) env.GLIBC_TUNABLES = all.slice(0, -ours.length - 1);
}
