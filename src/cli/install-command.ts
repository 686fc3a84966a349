import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { FussyError, install, openPackage, type FussyEvent, type InstallResult, type PackageSource } from '../index.js';
import { openInstallLog, type InstallLog } from './install-log.js';
import { addTarget, DEFAULT_KEYRING } from './target-flag.js';
import { formatBytes, Reporter, type Io, type OutputFlags } from './io.js';
import type { CommandResult } from './render.js';
import { integer } from './parse.js';

export interface InstallFlags extends OutputFlags {
  keyring: string;
  target: string;
  hookTimeout: number;
  reserve: number;
  wait?: boolean;
  log?: string;
  allowDowngrade?: boolean;
  deviceType?: string;
}

export { DEFAULT_KEYRING, DEFAULT_TARGET } from './target-flag.js';

export function addInstallOptions(cmd: Command): Command {
  return addTarget(cmd)
    .option('-k, --keyring <dir>', 'trusted keys (a GnuPG home and/or key files)', DEFAULT_KEYRING)
    .addOption(new Option('--hook-timeout <s>', 'seconds before a hook\'s process group is killed').default(600).argParser(integer('--hook-timeout', 1)))
    .addOption(new Option('--reserve <mb>', 'MiB to leave free after installing').default(16).argParser(integer('--reserve')))
    .option('--wait', 'wait for a running install or clean instead of exiting 75')
    .option('-l, --log <file>', 'also append the log to this file (its directory must exist)')
    .option('--allow-downgrade', "install a release older than the device's recorded sequence")
    .option('--device-type <type>', "this device's type, for packages built for some types only (default: KEYRING/device-type)");
}

/** One line per event for humans; hook output is the part an operator reads after a failure. */
export function describe(e: FussyEvent): string | undefined {
  switch (e.type) {
    case 'hook':
      return `${e.phase}${e.recovery ? ' (recovery)' : ''}: ${e.line}`;
    case 'switch':
      return `current -> ${e.release}${e.recovery ? ' (recovery)' : ''}`;
    case 'recover':
      return `recovering: re-enabling ${e.release} (${e.reason})`;
    case 'log':
      return e.message;
    default:
      return undefined;
  }
}

export async function runInstall(io: Io, pkg: string, f: InstallFlags): Promise<CommandResult> {
  const reporter = new Reporter(io, f);
  // The log and the package are opened before anything else, so before the lock: either one that
  // cannot be used is refused (40 / 2) with nothing changed. `-` is the package piped to stdin.
  const logFile = f.log === undefined || f.log === '' ? undefined : openInstallLog(resolve(io.cwd, f.log), io.now, (m) => warn(io, f, m));
  let source: PackageSource;
  try {
    source = openPackage(pkg === '-' ? pkg : resolve(io.cwd, pkg));
  } catch (err) {
    logFile?.line(`fussy install: ${(err as Error).message}`);
    logFile?.close();
    throw err;
  }
  try {
    return await installFrom(io, source, f, reporter, logFile);
  } catch (err) {
    logFile?.line(`fussy install: ${err instanceof FussyError ? err.message : `internal error: ${String((err as Error | undefined)?.message ?? err)}`}`);
    throw err;
  } finally {
    reporter.clearBar();
    source.close();
    logFile?.close();
  }
}

async function installFrom(io: Io, source: PackageSource, f: InstallFlags, reporter: Reporter, logFile: InstallLog | undefined): Promise<CommandResult> {
  const log = (line: string): void => {
    reporter.info(line);
    logFile?.line(line);
  };
  const r = await io.cancellable((signal) =>
    install({
      package: source,
      signal,
      keyring: resolve(io.cwd, f.keyring),
      target: resolve(io.cwd, f.target),
      env: io.env,
      cwd: io.cwd,
      hookTimeoutMs: f.hookTimeout * 1000,
      reserveBytes: f.reserve * 1024 * 1024,
      wait: f.wait,
      allowDowngrade: f.allowDowngrade,
      deviceType: f.deviceType,
      owner: io.owner,
      now: io.now(),
      failpoint: io.env.FUSSY_FAILPOINT, // crash-safety tests only (util/failpoint.ts)
      onEvent: (e) => {
        reporter.event(e);
        const line = describe(e);
        if (line !== undefined) log(line);
      },
    }),
  );
  reporter.clearBar();
  const summary = installSummary(r);
  logFile?.line(summary);
  return { json: { ...r }, summary: [summary], stdoutLine: r.path };
}

/** The line `fussy install` (and `fussy remote install`) ends with. */
export function installSummary(r: InstallResult): string {
  return `installed ${r.release}: ${r.files} files, ${formatBytes(r.writtenBytes)} written, ${formatBytes(r.deduplicatedBytes)} shared with older releases, in ${(r.durationMs / 1000).toFixed(1)} s; signed by ${r.signers.map((s) => s.slice(-16)).join(', ')}`;
}

/** A problem that does not stop the install, once, on stderr (an NDJSON event with --json). */
function warn(io: Io, f: OutputFlags, message: string): void {
  io.stderr.write(f.json === true ? JSON.stringify({ type: 'warning', message, time: new Date().toISOString() }) + '\n' : `fussy install: warning: ${message}\n`);
}

export function installCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addInstallOptions(new Command('install'))
    .description('verify and install a package; prints the installed release path last')
    .argument('<package>', '.tar.gz.gpg or .tar.gz.asc; - reads it from stdin')
    .option('--json', 'print one JSON object; progress as NDJSON on stderr')
    .option('-q, --quiet', 'print only the release path')
    .action(async (pkg: string, f: InstallFlags) => done(await runInstall(io, pkg, f)));
}
