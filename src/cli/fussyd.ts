import '../util/quiet-warnings.js';
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { CONFIG_KEYS, DEFAULT_CONFIG_FILE, loadConfig, type Settings } from '../daemon/config.js';
import { Daemon } from '../daemon/server.js';
import { processIo, type Io } from './io.js';
import { installGuard } from './guard.js';
import { configure, VERSION } from './configure.js';
import { renderError } from './render.js';

/**
 * `fussyd [--config FILE] [--KEY VALUE ...]` (docs/daemon.md, docs/commands.md): every key of
 * fussyd.conf is also a flag, and flags win. Runs until SIGTERM or SIGINT (exit 0); SIGHUP
 * re-reads the roles file and the CRL. The daemon's log is JSON lines on stderr (journald).
 */
export async function fussydMain(argv: string[], io: Io, signals: Pick<NodeJS.Process, 'on' | 'off'>): Promise<number> {
  const program = fussydProgram(io);
  let daemon: Daemon | undefined;
  const log = (event: Record<string, unknown>): void => void io.stderr.write(JSON.stringify({ time: io.now().toISOString(), ...event }) + '\n');
  try {
    program.parse(argv, { from: 'user' });
    const opts = program.opts<Record<string, string | undefined>>();
    const flags: Settings = new Map();
    for (const name of Object.keys(CONFIG_KEYS)) {
      const value = opts[camel(name)];
      if (value !== undefined) flags.set(name, { value, where: `--${name}` });
    }
    const config = loadConfig({ file: opts.config, flags, exists: existsSync });
    daemon = await Daemon.start(config, { log, now: io.now });
  } catch (err) {
    return renderError(io, {}, 'fussyd', err);
  }
  const running = daemon;
  const hup = (): void => running.reload('SIGHUP', { firmware: true });
  signals.on('SIGHUP', hup);
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      signals.off('SIGTERM', term);
      signals.off('SIGINT', int);
      signals.off('SIGHUP', hup);
      log({ event: 'stopping', signal: sig });
      void running.close().then(resolve, (err: unknown) => {
        log({ event: 'stop-failed', error: err instanceof Error ? err.message : String(err) });
        resolve();
      });
    };
    const term = (): void => stop('SIGTERM');
    const int = (): void => stop('SIGINT');
    signals.on('SIGTERM', term);
    signals.on('SIGINT', int);
  });
  return 0;
}

/** fussyd's options: `--config`, and every key of fussyd.conf as a flag (also its man page's source). */
export function fussydProgram(io: Io): Command {
  const program = configure(new Command('fussyd'), io)
    .description('the device daemon: scripts, data files, runs, scheduled jobs and firmware uploads over HTTPS with client certificates (docs/daemon.md); every option is also a key of the configuration file')
    .version(VERSION, '-V, --version')
    .option('-c, --config <file>', `the configuration file (default ${DEFAULT_CONFIG_FILE} when it exists)`);
  for (const [name, key] of Object.entries(CONFIG_KEYS)) program.addOption(new Option(`--${name} <value>`, key.help));
  return program;
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** bin/fussyd.js */
export async function runFussyd(): Promise<void> {
  const io = processIo();
  installGuard((err) => renderError(io, {}, 'fussyd', err));
  process.exitCode = await fussydMain(process.argv.slice(2), io, process);
}
