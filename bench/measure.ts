import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { makeFirmware, type FirmwareOptions } from './make-firmware.js';

export interface Measured {
  seconds: number;
  /** Peak RSS in MB of the largest process (a pipeline's biggest member). */
  rssMb: number;
}

/**
 * Run a command line (through sh, so pipelines work) and measure wall time and the peak RSS of
 * its largest descendant, via getrusage(RUSAGE_CHILDREN) in a tiny python3 wrapper: node cannot
 * read a child's rusage. NODE_EXTRA_CA_CERTS is left out of its environment: it is this machine's,
 * not a device's (docs/performance.md, "Running the benchmarks").
 */
export async function measure(shellCommand: string, opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Measured> {
  const wrapper = [
    'import os, resource, subprocess, sys, time',
    // A device's programs do not get it; node reads and parses the whole bundle at every start
    // (~80 ms on the bench machine, where the sandbox sets it), which no reference tool pays.
    'env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}',
    't = time.monotonic()',
    'rc = subprocess.call(["sh", "-c", sys.argv[1]], stdout=subprocess.DEVNULL, env=env)',
    'dt = time.monotonic() - t',
    'print(rc, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)',
  ].join('\n');
  const r = await execa('python3', ['-c', wrapper, shellCommand], { cwd: opts.cwd, env: opts.env });
  const [rc, dt, kb] = String(r.stdout).trim().split(' ');
  if (rc !== '0') throw new Error(`benchmark command failed (exit ${rc}): ${shellCommand}\n${String(r.stderr)}`);
  return { seconds: Number(dt), rssMb: Number(kb) / 1024 };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

export const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The launcher a device runs (bin/fussy, a sh script that starts node on bin/fussy.js). */
export const fussyBin = join(repo, 'bin', 'fussy');

/** The options both benchmarks take. */
export function benchOptions(defaults: { repeat?: number } = {}): { mb: string; files: string; bigMb: string; repeat: number; work: string } {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '300' },
      files: { type: 'string', default: '3000' },
      'big-mb': { type: 'string', default: '1000' },
      repeat: { type: 'string', default: String(defaults.repeat ?? 3) },
      work: { type: 'string', default: join(repo, 'bench', 'out') },
    },
  });
  return { mb: values.mb as string, files: values.files as string, bigMb: values['big-mb'] as string, repeat: Number(values.repeat), work: resolve(values.work as string) };
}

/**
 * A make-firmware.ts tree under WORK/trees/NAME, made once and reused (same options, same bytes).
 * It is made beside and renamed into place, so an interrupted run leaves no half tree to reuse.
 */
export async function firmwareTree(work: string, name: string, o: FirmwareOptions): Promise<string> {
  const dir = join(work, 'trees', name);
  if (!existsSync(dir)) {
    const part = `${dir}.part`;
    await mkdir(dirname(dir), { recursive: true });
    await rm(part, { recursive: true, force: true });
    makeFirmware(part, o);
    await rename(part, dir);
  }
  return dir;
}

/** The GnuPG homes this run made: gpg (and fussy's gpg for a GnuPG-home keyring) start an agent in each. */
const homes = new Set<string>();

/**
 * An empty GnuPG home at `home`. The agent an earlier run started there is stopped first: it
 * outlives the deleted directory and its socket, and the next key generation fails with
 * "No agent running". The home's agent is stopped again when the run ends (runBench).
 */
export async function freshGnupgHome(home: string): Promise<void> {
  homes.add(home);
  await execa('gpgconf', ['--homedir', home, '--kill', 'all'], { reject: false });
  await rm(home, { recursive: true, force: true });
  await mkdir(home, { recursive: true, mode: 0o700 });
}

/** gpg in `home`, unattended (no passphrase, no pinentry); its output as bytes. */
export type BenchGpg = (args: string[]) => Promise<{ stdout: Uint8Array }>;

/**
 * A fresh GnuPG home with the bench's build (signing) key, and a fresh keyring directory `keyring`
 * holding its public half as `build.gpg`: what every benchmark's device trusts.
 */
export async function buildKeyHome(home: string, keyring: string): Promise<BenchGpg> {
  await freshGnupgHome(home);
  await rm(keyring, { recursive: true, force: true });
  await mkdir(keyring, { recursive: true });
  const gpg: BenchGpg = async (args) => execa('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { encoding: 'buffer', stripFinalNewline: false });
  await gpg(['--quick-gen-key', 'Bench Build <build@bench.example>', 'ed25519', 'sign', 'never']);
  await writeFile(join(keyring, 'build.gpg'), (await gpg(['--export', 'build@bench.example'])).stdout);
  return gpg;
}

/** Stop the agent of every home freshGnupgHome made (gpgconf(1) --kill all); synchronous, so a signal handler can use it. */
function stopAgents(): void {
  for (const home of homes) {
    const r = spawnSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore' });
    if (r.error !== undefined || r.status !== 0) process.stderr.write(`bench: could not stop the gpg-agent of ${home} (gpgconf --homedir ${home} --kill all)\n`);
  }
  homes.clear();
}

/**
 * Run a benchmark's main and stop the gpg-agents it started, whatever happens: they would outlive
 * it, one per GnuPG home (as docs/performance.md says, `pgrep -a gpg-agent` shows none left). On
 * SIGINT, SIGTERM or SIGHUP the agents are stopped and the signal is raised again.
 */
export async function runBench(main: () => Promise<void>): Promise<void> {
  const onSignal = (sig: NodeJS.Signals): void => {
    stopAgents();
    process.kill(process.pid, sig);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.once(sig, onSignal);
  try {
    await main();
  } finally {
    for (const sig of signals) process.removeListener(sig, onSignal);
    stopAgents();
  }
}
