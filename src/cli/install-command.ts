import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import type { InstallEvent } from '../install/install.js';
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

export const DEFAULT_KEYRING = '/etc/fussy/keys';
export const DEFAULT_TARGET = '/opt/firmware';

export function addInstallOptions(cmd: Command): Command {
  return cmd
    .option('-k, --keyring <dir>', 'trusted keys (a GnuPG home and/or key files)', DEFAULT_KEYRING)
    .option('-t, --target <dir>', 'firmware directory holding current, failsafe and the releases', DEFAULT_TARGET)
    .addOption(new Option('--hook-timeout <s>', 'seconds before a hook\'s process group is killed').default(600).argParser(integer('--hook-timeout', 1)))
    .addOption(new Option('--reserve <mb>', 'MiB to leave free after installing').default(16).argParser(integer('--reserve')))
    .option('--wait', 'wait for a running install or clean instead of exiting 75')
    .option('--allow-downgrade', "install a release older than the device's recorded sequence")
    .option('--device-type <type>', "this device's type, for packages built for some types only (default: KEYRING/device-type)");
}

/** One line per event for humans; hook output is the part an operator reads after a failure. */
export function describe(e: InstallEvent): string | undefined {
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
  const log = (line: string): void => {
    reporter.info(line);
    if (f.log !== undefined && f.log !== '') appendFileSync(f.log, `${new Date().toISOString()} ${line}\n`);
  };
  // Started before the install module loads, so that it runs while start-up keeps one core busy.
  // If the install ends before it needs the digest (target busy, keyring missing), it is stopped.
  const { packageDigest } = await import('../install/history.js');
  const early = new AbortController();
  const digest = packageDigest(resolve(io.cwd, pkg), early.signal);
  // Loaded here, not at the top: each command pays only for its own modules at start-up.
  const { install } = await import('../install/install.js');
  let r;
  try {
    r = await install({
      package: resolve(io.cwd, pkg),
      packageDigest: digest,
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
      failpoint: io.env.FUSSY_FAILPOINT, // crash-safety tests only (install/failpoint.ts)
      onEvent: (e) => {
        reporter.event(e);
        const line = describe(e);
        if (line !== undefined) log(line);
      },
    });
  } finally {
    early.abort();
  }
  reporter.clearBar();
  const summary = `installed ${r.release}: ${r.files} files, ${formatBytes(r.writtenBytes)} written, ${formatBytes(r.deduplicatedBytes)} shared with older releases, in ${(r.durationMs / 1000).toFixed(1)} s; signed by ${r.signers.map((s) => s.slice(-16)).join(', ')}`;
  if (f.log !== undefined && f.log !== '') appendFileSync(f.log, `${new Date().toISOString()} ${summary}\n`);
  return { json: { ...r }, summary: [summary], stdoutLine: r.path };
}

export function installCommand(io: Io, done: (r: CommandResult) => void): Command {
  return addInstallOptions(new Command('install'))
    .description('verify and install a package; prints the installed release path last')
    .argument('<package>', '.tar.gz.gpg or .tar.gz.asc')
    .option('--json', 'print one JSON object; progress as NDJSON on stderr')
    .option('-q, --quiet', 'print only the release path')
    .action(async (pkg: string, f: InstallFlags) => done(await runInstall(io, pkg, f)));
}
