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
 *
 * A case is determined by the seed and its number alone: `--seed S --case I` runs it again.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { FussyError } from '../../src/errors.js';
import { install, type InstallResult } from '../../src/install/install.js';
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
  try {
    result = await withTimeout(install(dev.options(file, Promise.resolve(digest))), run.timeoutMs);
  } catch (err) {
    error = err;
  }
  await new Promise((r) => setImmediate(r)); // let a stray rejection of this case show up now
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

async function main(): Promise<void> {
  const seed = parseSeed(arg('seed') ?? process.env.FUSSY_FUZZ_SEED, DEFAULT_SEED);
  const only = arg('case');
  const first = only === undefined ? 0 : Number(only);
  const last = only === undefined ? Number(arg('cases') ?? process.env.FUSSY_FUZZ_CASES ?? 1000) : first + 1;
  // One install at a time by default, so that the peak RSS is one install's (FUSSY_FUZZ_LANES=2 runs two).
  const lanes = only === undefined ? Number(process.env.FUSSY_FUZZ_LANES ?? 1) : 1;
  const strict = process.argv.includes('--strict') || process.env.FUSSY_FUZZ_STRICT === '1';
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  // tmpfs when there is one: every install syncs, and the cases are about fussy, not the disk.
  const base = process.env.FUSSY_FUZZ_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const root = await mkdtemp(join(base, 'fussy-fuzz-'));
  const corpus = await buildCorpus(await mkdtemp(join(root, 'corpus-')));
  const run: Run = {
    seed, corpus, root, keep: arg('keep') ?? process.env.FUSSY_FUZZ_KEEP, timeoutMs: Number(process.env.FUSSY_FUZZ_CASE_TIMEOUT ?? 30_000),
    failures: [], outcomes: {}, timing: { mutate: 0, install: 0, check: 0 }, late: [], lateEvents: [], running: new Set(), recent: [], log,
  };
  process.on('unhandledRejection', (reason) => run.late.push(`unhandled rejection: ${describe(reason)}`));
  process.on('uncaughtException', (err) => run.late.push(`uncaught exception: ${describe(err)}`));

  const started = Date.now();
  const cpu = process.cpuUsage();
  let next = first;
  let done = 0;
  let rssFlagged = false;
  /** The cases that raised the peak RSS by 4 MB or more: where the memory goes. */
  const rssSteps: Array<{ case: number; toMB: number; byMB: number; mutation?: string }> = [];
  const lane = async (): Promise<void> => {
    let dev = await FuzzDevice.create(corpus, root);
    while (next < last) {
      const i = next++;
      const before = peakRssKb() / 1024;
      const ok = await runCase(run, dev, i);
      const peak = peakRssKb() / 1024;
      if (peak - before >= 4) rssSteps.push({ case: i, toMB: Math.round(peak), byMB: Math.round(peak - before) });
      if (peak > RSS_BUDGET_MB && !rssFlagged) {
        rssFlagged = true;
        const m = await makeMutant(new Rng(caseSeed(seed, i)), corpus);
        const steps = await Promise.all(
          [...rssSteps].sort((a, b) => b.byMB - a.byMB).slice(0, 3).map(async (r) => `case ${r.case} +${r.byMB} MB (${(await makeMutant(new Rng(caseSeed(seed, r.case)), corpus)).log[0] ?? ''})`),
        );
        await fail(run, i, m, `peak RSS ${peak.toFixed(0)} MB passed the ${RSS_BUDGET_MB} MB budget during this case${run.running.size > 0 ? ` or case ${[...run.running].join(', ')}` : ''}; the largest steps up: ${steps.join(', ')}`);
      }
      if (!ok) dev = await FuzzDevice.create(corpus, root); // the old one may hold a lock or a half install: start afresh
      ++done;
      (globalThis as { gc?: () => void }).gc?.(); // thousands of installs in one process: collect between them, so the peak is one install's
      if (only === undefined && done % 250 === 0) log(`${done} cases, ${(done / ((Date.now() - started) / 1000)).toFixed(1)}/s, ${run.failures.length} failures`);
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  const durationMs = Date.now() - started;
  await pinLateEvents(run);
  const summary = {
    seed,
    cases: last - first,
    lanes,
    durationMs,
    casesPerSecond: Number(((last - first) / (durationMs / 1000)).toFixed(1)),
    /** CPU time of the whole process (main thread, zlib and decryption threads) per case. */
    cpuMsPerCase: Math.round(((c) => (c.user + c.system) / 1000)(process.cpuUsage(cpu)) / (last - first)),
    peakRssMB: Math.round(peakRssKb() / 1024),
    rssBudgetMB: RSS_BUDGET_MB,
    rssSteps: await Promise.all(rssSteps.map(async (r) => ({ ...r, mutation: `${(await makeMutant(new Rng(caseSeed(seed, r.case)), corpus)).log.join('; ').slice(0, 160)}` }))),
    strict,
    outcomes: run.outcomes,
    msPerCase: Object.fromEntries(Object.entries(run.timing).map(([k, v]) => [k, Math.round(v / (last - first))])),
    failures: run.failures,
    unknownFailures: run.failures.filter((f) => f.known === undefined).length,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (process.env.FUSSY_KEEP_TMP === undefined) await rm(root, { recursive: true, force: true });
  process.exit(0);
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
