/**
 * The mutation fuzzer of `fussy install` (test/fuzz/mutation-fuzz.test.ts runs it as a child):
 * valid packages, mutated at the package bytes, the gzip stream, the tar stream or the manifest
 * (inner layers re-wrapped and signed with the device's trusted key, or with a broken signature
 * by that key, as an attacker without the key would), installed in process through the library.
 * Every outcome must be an exact install or a clean refusal (exit 20/21/40, in the history,
 * nothing left behind); never an error of another kind, an unhandled rejection or a hang; and
 * the process's peak RSS must stay under the budget. Prints one JSON summary line on stdout.
 *
 *   node dist/test/fuzz/runner.js [--cases N] [--seed S] [--case I] [--keep DIR] [--strict]
 *   (or FUSSY_FUZZ_CASES, FUSSY_FUZZ_SEED, FUSSY_FUZZ_STRICT=1, FUSSY_FUZZ_KEEP=DIR)
 *   FUSSY_FUZZ_PROCS=P: processes running the cases (default: one per core, at most 4)
 *   FUSSY_FUZZ_GC_EVERY=N: a full collection before every N-th install (default 0: V8 decides)
 *
 * A case is determined by the seed and its number alone: `--seed S --case I` runs it again.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { FussyError, isErrno } from '../../src/errors.js';
import { install, type InstallResult } from '../../src/ops/install.js';
import { encryptPackets } from '../helpers/seipd-encrypt.js';
import { buildCorpus, type Corpus, type Seed, type SeedName } from './corpus.js';
import { FuzzDevice } from './device.js';
import { knownIssue } from './known.js';
import { mutateGzip, regzip } from './mutate-gzip.js';
import { mutateManifest } from './mutate-manifest.js';
import { mutateRaw } from './mutate-raw.js';
import { mutateTar } from './mutate-tar.js';
import { caseSeed, parseSeed, Rng } from './rng.js';

export const DEFAULT_SEED = 20261202;
const RSS_BUDGET_MB = 200;
const GC_AT_BUFFERS = Number(process.env.FUSSY_FUZZ_GC_AT_MB ?? 16) * 1024 * 1024;
const REFUSALS = new Set([20, 21, 40]);

type Layer = 'raw' | 'gzip' | 'tar' | 'manifest';

interface Mutant {
  seed: SeedName;
  layer: Layer;
  log: string[];
  bytes: Buffer;
  /** Inner layers: the payload that was signed, and whether that signature is valid. */
  payload?: Buffer;
  wrap?: 'trusted' | 'forged';
}

export interface Failure {
  case: number;
  seed: number;
  package: SeedName;
  layer: Layer;
  mutation: string[];
  symptom: string;
  /** Set when the failure is one the issue names and another engineer is fixing (see known.ts). */
  known?: string;
  repro: string;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : (process.argv[i + 1] ?? '');
}

/** The signed message around a (mutated) payload, the way the seed was wrapped. */
async function wrap(payload: Buffer, seed: Seed, mode: 'trusted' | 'forged', corpus: Corpus): Promise<Buffer> {
  const message = await openpgp.createMessage({ binary: payload, format: 'binary' });
  const signed = Buffer.from((await openpgp.sign({ message, signingKeys: corpus.signingKey, format: 'binary' })) as Uint8Array);
  // No key: the attacker copies the trusted key's id and cannot make the signature value.
  if (mode === 'forged') signed[signed.length - 1] = (signed[signed.length - 1] as number) ^ 0x01;
  const inner = seed.gpg ? Buffer.concat([Buffer.from([0xa3, 0x01]), deflateRawSync(signed)]) : signed;
  return seed.encrypted ? encryptPackets(inner, [corpus.deviceKey]) : inner;
}

async function makeMutant(rng: Rng, corpus: Corpus): Promise<Mutant> {
  const seed = rng.pick(corpus.seeds);
  const layer = rng.weighted<Layer>([[4, 'raw'], [2, 'gzip'], [2.5, 'tar'], [seed.manifest ? 2.5 : 0, 'manifest']]);
  const log: string[] = [];
  if (layer === 'raw') return { seed: seed.name, layer, log, bytes: mutateRaw(seed.bytes, rng, log) };
  let payload = seed.payload;
  const tar = (): Buffer => Buffer.from(seed.tar);
  if (layer === 'gzip') payload = mutateGzip(payload, tar, rng, log);
  else if (layer === 'tar') payload = regzip(mutateTar(tar(), rng, log), rng, seed.manifest, log);
  else payload = regzip(mutateManifest(tar(), rng, log), rng, true, log);
  const mode = rng.chance(0.6) ? 'trusted' : 'forged';
  log.push(`wrapped: ${seed.encrypted ? 'encrypted, ' : ''}${seed.gpg ? 'compressed, ' : ''}signature ${mode}`);
  return { seed: seed.name, layer, log, bytes: await wrap(payload, seed, mode, corpus), payload, wrap: mode };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`HANG: no outcome after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

const describe = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).split('\n')[0]?.slice(0, 300) ?? '';

interface Run {
  seed: number;
  corpus: Corpus;
  root: string;
  keep?: string;
  timeoutMs: number;
  failures: Failure[];
  outcomes: Record<string, number>;
  timing: { mutate: number; install: number; check: number };
  /** Unhandled rejections and uncaught exceptions, blamed on the cases running when they came. */
  late: string[];
  /** Late events with the cases that may have caused them (running, or ended just before). */
  lateEvents: Array<{ message: string; suspects: number[] }>;
  running: Set<number>;
  recent: number[];
  log: (s: string) => void;
  /** A full collection before every gcEvery-th install (0: never; --expose-gc). */
  gcEvery: number;
  sinceGc: number;
  collections: number;
  /**
   * Peak RSS: of each install (VmHWM reset just before it: /proc/self/clear_refs), the three
   * highest, and of the whole process (mutations included). `scope` says 'process' when the
   * kernel would not reset the peak, so every install's figure is the process's.
   */
  peaks: { scope: 'install' | 'process'; processKb: number; top: Array<{ case: number; kb: number }> };
}

async function fail(run: Run, i: number, m: Mutant, symptom: string): Promise<void> {
  const f: Failure = { case: i, seed: run.seed, package: m.seed, layer: m.layer, mutation: m.log, symptom, repro: `node dist/test/fuzz/runner.js --seed ${run.seed} --case ${i}` };
  f.known = knownIssue(f);
  run.failures.push(f);
  if (run.keep !== undefined) {
    await mkdir(run.keep, { recursive: true });
    await writeFile(join(run.keep, `case-${run.seed}-${i}.gpg`), m.bytes);
  }
  run.log(`case ${i}: ${f.known ? `known (${f.known})` : 'FAILURE'}: ${symptom} [${m.seed} ${m.layer}: ${m.log.join('; ')}]`);
}

/** One case on `dev`; false when the device cannot be trusted for the next one. */
async function runCase(run: Run, dev: FuzzDevice, i: number): Promise<boolean> {
  let t = performance.now();
  const m = await makeMutant(new Rng(caseSeed(run.seed, i)), run.corpus);
  run.timing.mutate += performance.now() - t;
  t = performance.now();
  const file = join(dev.dir, 'case.gpg');
  await writeFile(file, m.bytes);
  const digest = createHash('sha256').update(m.bytes).digest('hex');
  let result: InstallResult | undefined;
  let error: unknown;
  run.running.add(i);
  // Dead buffers of earlier cases wait for V8's collection (it starts one at ~64 MB of them):
  // collected first when there are more than a few MB, so that the peak is this install's.
  if ((run.gcEvery > 0 && ++run.sinceGc >= run.gcEvery) || process.memoryUsage().arrayBuffers > GC_AT_BUFFERS) {
    run.sinceGc = 0;
    run.collections++;
    (globalThis as { gc?: () => void }).gc?.();
  }
  run.peaks.processKb = Math.max(run.peaks.processKb, peakRssKb());
  const scoped = resetPeakRss();
  try {
    result = await withTimeout(install(dev.options(file, Promise.resolve(digest))), run.timeoutMs);
  } catch (err) {
    error = err;
  }
  await new Promise((r) => setImmediate(r)); // let a stray rejection of this case show up now
  const peakKb = peakRssKb();
  run.peaks.processKb = Math.max(run.peaks.processKb, peakKb);
  run.peaks.scope = scoped ? run.peaks.scope : 'process';
  run.peaks.top.push({ case: i, kb: peakKb });
  run.peaks.top = run.peaks.top.sort((a, b) => b.kb - a.kb).slice(0, 3);
  run.running.delete(i);
  run.timing.install += performance.now() - t;
  t = performance.now();
  const count = (k: string): void => void (run.outcomes[k] = (run.outcomes[k] ?? 0) + 1);
  let ok = true;
  if (result !== undefined) {
    count(`installed (${result.manifest ? 'manifest' : 'no manifest'})`);
    const payload = m.layer === 'raw' ? run.corpus.seeds.find((s) => s.name === m.seed)?.payload : m.payload;
    const problems = m.wrap === 'forged' ? ['INSTALLED A PACKAGE WHOSE SIGNATURE IS BROKEN'] : await dev.checkInstalled(result, payload);
    if (problems.length > 0) await fail(run, i, m, `installed, but: ${problems.join('; ')}`);
    try {
      await dev.reset(result.release);
    } catch (err) {
      await fail(run, i, m, `reset after the install failed: ${describe(err)}`);
      ok = false;
    }
  } else if (error instanceof FussyError && REFUSALS.has(error.exitCode)) {
    count(`refused ${error.exitCode} ${error.code}`);
    const problems = await dev.checkRefused(error.code);
    if (problems.length > 0) {
      await fail(run, i, m, `refused (${error.code}: ${describe(error)}), but: ${problems.join('; ')}`);
      ok = false;
    }
  } else {
    const exit = error instanceof FussyError ? error.exitCode : 1;
    count(`exit ${exit}`);
    await fail(run, i, m, `exit ${exit}: ${describe(error)}`);
    ok = false;
  }
  run.recent.push(i);
  if (run.recent.length > 4) run.recent.shift();
  for (const message of run.late.splice(0)) run.lateEvents.push({ message, suspects: [...new Set([...run.running, ...run.recent])] });
  run.timing.check += performance.now() - t;
  return ok;
}

/**
 * An unhandled rejection surfaces when its promise settles, maybe after its install ended and
 * while another case runs. Each suspect is run again alone on a fresh device, followed by a
 * pause: the case that brings the event back is the one reported.
 */
async function pinLateEvents(run: Run): Promise<void> {
  const events = run.lateEvents.splice(0);
  const pinned = new Map<number, string[]>();
  for (const ev of events) {
    let found: number | undefined;
    for (const i of ev.suspects.sort((a, b) => a - b)) {
      if (!pinned.has(i)) {
        // Counted and checked apart from the run (it was counted once); `late` is the same list.
        const probe: Run = { ...run, failures: [], outcomes: {}, timing: { mutate: 0, install: 0, check: 0 }, lateEvents: [], running: new Set(), recent: [], log: () => {} };
        run.late.splice(0);
        await runCase(probe, await FuzzDevice.create(run.corpus, run.root), i);
        await new Promise((r) => setTimeout(r, 2000));
        pinned.set(i, [...probe.lateEvents.map((e) => e.message), ...run.late.splice(0)]);
      }
      if ((pinned.get(i) ?? []).length > 0) {
        found = i;
        break;
      }
    }
    const m = await makeMutant(new Rng(caseSeed(run.seed, found ?? ev.suspects[0] ?? 0)), run.corpus);
    await fail(run, found ?? ev.suspects[0] ?? -1, m, found === undefined ? `${ev.message} (not reproduced alone by any of cases ${ev.suspects.join(', ')})` : ev.message);
  }
}

export interface Summary {
  seed: number;
  cases: number;
  procs: number;
  durationMs: number;
  casesPerSecond: number;
  /** CPU time of the process (main thread, zlib and decryption threads) per case. */
  cpuMsPerCase: number;
  /** The highest peak RSS of one install (of the process, when peakScope says so): what the budget bounds. */
  peakRssMB: number;
  peakScope: 'install' | 'process';
  rssBudgetMB: number;
  /** A process's own peak, the mutations and the runner's checks included. */
  processPeakRssMB: number;
  highestInstalls: Array<{ case: number; peakMB: number; mutation: string }>;
  gcEvery: number;
  /** Full collections the runner asked for (before an install, when dead buffers piled up). */
  collections: number;
  strict: boolean;
  outcomes: Record<string, number>;
  msPerCase: Record<string, number>;
  failures: Failure[];
  unknownFailures: number;
}

async function main(): Promise<void> {
  const seed = parseSeed(arg('seed') ?? process.env.FUSSY_FUZZ_SEED, DEFAULT_SEED);
  const only = arg('case');
  const first = only === undefined ? 0 : Number(only);
  const last = only === undefined ? Number(arg('cases') ?? process.env.FUSSY_FUZZ_CASES ?? 1000) : first + 1;
  const shard = arg('shard');
  // One install at a time per process, so that a peak RSS is one install's; a process per core.
  const procs = only !== undefined || shard !== undefined ? 1 : Math.max(1, Number(process.env.FUSSY_FUZZ_PROCS ?? Math.min(4, availableParallelism())));
  if (procs > 1) {
    process.stdout.write(`${JSON.stringify(await coordinate(procs, last - first))}\n`);
    process.exit(0);
  }
  // --shard K/P: the cases first+K, first+K+P, ... (a coordinating process runs P of these).
  const [k, of] = (shard ?? '0/1').split('/').map(Number) as [number, number];
  const strict = process.argv.includes('--strict') || process.env.FUSSY_FUZZ_STRICT === '1';
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  // tmpfs when there is one: every install syncs, and the cases are about fussy, not the disk.
  const base = process.env.FUSSY_FUZZ_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const root = await mkdtemp(join(base, 'fussy-fuzz-'));
  const corpus = await buildCorpus(await mkdtemp(join(root, 'corpus-')));
  const run: Run = {
    seed, corpus, root, keep: arg('keep') ?? process.env.FUSSY_FUZZ_KEEP, timeoutMs: Number(process.env.FUSSY_FUZZ_CASE_TIMEOUT ?? 30_000),
    failures: [], outcomes: {}, timing: { mutate: 0, install: 0, check: 0 }, late: [], lateEvents: [], running: new Set(), recent: [], log,
    gcEvery: Number(process.env.FUSSY_FUZZ_GC_EVERY ?? 0), sinceGc: 0, collections: 0, peaks: { scope: 'install', processKb: 0, top: [] },
  };
  process.on('unhandledRejection', (reason) => run.late.push(`unhandled rejection: ${describe(reason)}`));
  process.on('uncaughtException', (err) => run.late.push(`uncaught exception: ${describe(err)}`));

  const started = Date.now();
  const cpu = process.cpuUsage();
  let cases = 0;
  let rssFlagged = false;
  let dev = await FuzzDevice.create(corpus, root);
  for (let i = first + k; i < last; i += of) {
    const ok = await runCase(run, dev, i);
    const peak = (run.peaks.top.find((p) => p.case === i)?.kb ?? 0) / 1024;
    if (peak > RSS_BUDGET_MB && !rssFlagged) {
      rssFlagged = true;
      await fail(run, i, await makeMutant(new Rng(caseSeed(seed, i)), corpus), `peak RSS ${peak.toFixed(0)} MB passed the ${RSS_BUDGET_MB} MB budget during this install`);
    }
    if (!ok) dev = await FuzzDevice.create(corpus, root); // the old one may hold a lock or a half install: start afresh
    ++cases;
    if (only === undefined && cases % 250 === 0) log(`${shard === undefined ? '' : `shard ${shard}: `}${cases} cases, ${(cases / ((Date.now() - started) / 1000)).toFixed(1)}/s, ${run.failures.length} failures`);
  }
  const durationMs = Date.now() - started;
  await pinLateEvents(run);
  const summary: Summary = {
    seed,
    cases,
    procs: 1,
    durationMs,
    casesPerSecond: Number((cases / (durationMs / 1000)).toFixed(1)),
    cpuMsPerCase: Math.round(((c) => (c.user + c.system) / 1000)(process.cpuUsage(cpu)) / Math.max(1, cases)),
    peakRssMB: Math.round((run.peaks.top[0]?.kb ?? peakRssKb()) / 1024),
    peakScope: run.peaks.scope,
    rssBudgetMB: RSS_BUDGET_MB,
    processPeakRssMB: Math.round(Math.max(run.peaks.processKb, peakRssKb()) / 1024),
    highestInstalls: await Promise.all(run.peaks.top.map(async (p) => ({ case: p.case, peakMB: Math.round(p.kb / 1024), mutation: (await makeMutant(new Rng(caseSeed(seed, p.case)), corpus)).log.join('; ').slice(0, 160) }))),
    gcEvery: run.gcEvery,
    collections: run.collections,
    strict,
    outcomes: run.outcomes,
    msPerCase: Object.fromEntries(Object.entries(run.timing).map(([key, v]) => [key, Math.round(v / Math.max(1, cases))])),
    failures: run.failures,
    unknownFailures: run.failures.filter((f) => f.known === undefined).length,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (process.env.FUSSY_KEEP_TMP === undefined) await rm(root, { recursive: true, force: true });
  process.exit(0);
}

/** Run the cases in `procs` processes of this script (--shard K/P each) and merge their summaries. */
async function coordinate(procs: number, total: number): Promise<Summary> {
  const started = Date.now();
  const self = fileURLToPath(import.meta.url);
  const shards = await Promise.all(
    Array.from({ length: procs }, (_, k) =>
      new Promise<Summary>((resolve, reject) => {
        const child = spawn(process.execPath, [...process.execArgv, self, ...process.argv.slice(2), '--shard', `${k}/${procs}`], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => {
          if (code !== 0) return reject(new Error(`shard ${k}/${procs} exited with ${code}`));
          resolve(JSON.parse(out.trim().split('\n').pop() as string) as Summary);
        });
      }),
    ),
  );
  const durationMs = Date.now() - started;
  const sum = (f: (s: Summary) => number): number => shards.reduce((n, s) => n + f(s), 0);
  const cases = sum((s) => s.cases);
  const outcomes: Record<string, number> = {};
  for (const s of shards) for (const [key, n] of Object.entries(s.outcomes)) outcomes[key] = (outcomes[key] ?? 0) + n;
  const first = shards[0] as Summary;
  if (cases !== total) throw new Error(`the shards ran ${cases} cases, not ${total}`);
  return {
    ...first,
    cases,
    procs,
    durationMs,
    casesPerSecond: Number((cases / (durationMs / 1000)).toFixed(1)),
    cpuMsPerCase: Math.round(sum((s) => s.cpuMsPerCase * s.cases) / Math.max(1, cases)),
    peakRssMB: Math.max(...shards.map((s) => s.peakRssMB)),
    peakScope: shards.some((s) => s.peakScope === 'process') ? 'process' : 'install',
    processPeakRssMB: Math.max(...shards.map((s) => s.processPeakRssMB)),
    highestInstalls: shards.flatMap((s) => s.highestInstalls).sort((a, b) => b.peakMB - a.peakMB).slice(0, 3),
    outcomes,
    collections: sum((s) => s.collections),
    msPerCase: Object.fromEntries(Object.keys(first.msPerCase).map((key) => [key, Math.round(sum((s) => (s.msPerCase[key] ?? 0) * s.cases) / Math.max(1, cases))])),
    failures: shards.flatMap((s) => s.failures).sort((a, b) => a.case - b.case),
    unknownFailures: sum((s) => s.unknownFailures),
  };
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz runner failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(2);
});

/**
 * This process image's peak RSS in KiB: VmHWM from /proc/self/status. getrusage's ru_maxrss would
 * also count the pages of the parent (mocha, after hundreds of tests) that the forked child held
 * before exec, since Linux keeps the larger of the two.
 */
function peakRssKb(): number {
  const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return hwm === null ? process.resourceUsage().maxRSS : Number(hwm[1]);
}

/** Reset this process's VmHWM to its current RSS (Linux >= 4.0); false when the kernel refuses. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch (err) {
    if (!isErrno(err, 'EACCES', 'EPERM', 'ENOENT', 'EINVAL', 'EROFS')) throw err;
    return false;
  }
}
