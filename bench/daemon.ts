/**
 * bench/daemon: fussyd against the goals of issue 12 ("Fast and light"), on loopback, with a real
 * `bin/fussyd` child (bench/fussyd-child.ts):
 *
 * - latency: `--runs` sequential `POST /v1/runs` of a trivial script (`#!/bin/sh\necho ok`) over
 *   one kept-alive HTTPS connection, each read to its result, against the same script started
 *   `--runs` times by fork+exec from this process; p50 and p99 of both, the overhead of p50.
 * - load: `--clients` clients, each on its own kept-alive connection, for `--seconds`, each
 *   issuing exec, `GET /v1/scripts` (ls) and `GET /v1/status` in turn, and waiting a think time
 *   after each answer, uniform in 0.5-1.5 x `--think-ms` (5000: a fleet console or an operator's
 *   tools each asking every few seconds, ~20 requests/s from 100 clients; 1000: ~100/s);
 *   errors (non-2xx, a socket error, a run that did not print ok), p50 / p99 per kind, the
 *   throughput, fussyd's VmRSS every 200 ms and its VmHWM at the end. Exec latency includes the
 *   wait for one of the `max-runs` slots. `--think-ms 0` is a closed loop: what fussyd can serve
 *   at most (its latency is then queueing: clients / throughput).
 * - idle: fussyd's VmRSS once it listens, and `--idle-seconds` after the load's connections closed.
 *
 * `--latency-only` stops after the latency part (no load, no idle wait): the exec overhead alone,
 * e.g. to profile fussyd with it.
 *
 * Prints a Markdown table and a JSON summary. fussyd runs with `max-connections` above the
 * client count (its default, 64, would refuse clients at accept), `keep-alive-timeout` past the
 * longest think time (clients keep their connection), and the default `max-runs`
 * unless `--max-runs` is given; both are in the summary.
 *
 *   npm run bench:daemon -- [--runs 300] [--clients 100] [--seconds 60] [--think-ms 5000] [--idle-seconds 10] [--max-runs N] [--latency-only]
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { call, exec, oneConnection, percentile, startFussyd, type Fussyd } from './fussyd-child.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '300' },
    clients: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '60' },
    'think-ms': { type: 'string', default: '5000' },
    'idle-seconds': { type: 'string', default: '10' },
    'max-runs': { type: 'string' },
    'latency-only': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const thinkMs = Number(values['think-ms']);
const idleSeconds = Number(values['idle-seconds']);
const maxRuns = values['max-runs'] === undefined ? 4 : Number(values['max-runs']);
const latencyOnly = values['latency-only'];
const maxConnections = clients + 16;
const SCRIPT = '#!/bin/sh\necho ok\n';
const KINDS = ['exec', 'ls', 'status'] as const;
type Kind = (typeof KINDS)[number];

const mb = (kb: number): number => Math.round(kb / 102.4) / 10;
const ms = (x: number): number => Math.round(x * 100) / 100;
const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** The script run by fork+exec from this process, waiting for its exit (the reference). */
function forkExec(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 && out === 'ok\n' ? resolve() : reject(new Error(`${file}: exit ${code}, ${out}`))));
  });
}

async function latency(d: Fussyd, local: string): Promise<{ daemon: number[]; local: number[] }> {
  const agent = oneConnection(d.tls);
  const warm = Math.min(20, runs);
  for (let i = 0; i < warm; i++) await exec(d.port, agent, 'ok');
  const daemon: number[] = [];
  for (let i = 0; i < runs; i++) daemon.push(await timed(() => exec(d.port, agent, 'ok')));
  agent.destroy();
  for (let i = 0; i < warm; i++) await forkExec(local);
  const localMs: number[] = [];
  for (let i = 0; i < runs; i++) localMs.push(await timed(() => forkExec(local)));
  return { daemon, local: localMs };
}

interface Load {
  ms: Record<Kind, number[]>;
  errors: Record<Kind, number>;
  firstErrors: string[];
  rssKb: number[];
}

async function load(d: Fussyd): Promise<Load> {
  const r: Load = { ms: { exec: [], ls: [], status: [] }, errors: { exec: 0, ls: 0, status: 0 }, firstErrors: [], rssKb: [] };
  const sampler = setInterval(() => r.rssKb.push(d.kb('VmRSS')), 200);
  const end = performance.now() + seconds * 1000;
  const one = async (kind: Kind, agent: ReturnType<typeof oneConnection>): Promise<void> => {
    if (kind === 'exec') return exec(d.port, agent, 'ok');
    const a = await call(d.port, agent, 'GET', kind === 'ls' ? '/v1/scripts' : '/v1/status');
    if (a.status < 200 || a.status > 299) throw new Error(`${kind}: ${a.status} ${a.body}`);
  };
  const client = async (i: number): Promise<void> => {
    const agent = oneConnection(d.tls);
    // The clients' first requests spread over one think time, as clients that did not start together.
    if (thinkMs > 0) await sleep(Math.random() * thinkMs);
    for (let k = i; performance.now() < end; k++) {
      const kind = KINDS[k % KINDS.length] as Kind;
      const t = performance.now();
      try {
        await one(kind, agent);
        r.ms[kind].push(performance.now() - t);
      } catch (err) {
        r.errors[kind]++;
        if (r.firstErrors.length < 5) r.firstErrors.push(err instanceof Error ? err.message : String(err));
      }
      if (thinkMs > 0) await sleep(Math.min(thinkMs * (0.5 + Math.random()), end - performance.now()));
    }
    agent.destroy();
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  clearInterval(sampler);
  return r;
}

async function main(dir: string): Promise<void> {
  // Each client keeps its connection through its think time (fussyd's default keep-alive is 5 s):
  // a client that reconnected would measure TLS handshakes, and race the server's close.
  const keepAliveSeconds = Math.max(5, Math.ceil((thinkMs * 1.5) / 1000) + 5);
  const d = await startFussyd(dir, ['--max-connections', String(maxConnections), '--max-runs', String(maxRuns), '--keep-alive-timeout', String(keepAliveSeconds)]);
  // Ctrl-C reaches fussyd itself (same process group); a SIGTERM or SIGHUP to this process alone
  // would leave it running.
  const onSignal = (sig: NodeJS.Signals): void => {
    process.kill(d.pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    process.kill(process.pid, sig);
  };
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.once(sig, onSignal);
  try {
    await sleep(1000);
    const startKb = d.kb('VmRSS');
    const admin = oneConnection(d.tls);
    const put = await call(d.port, admin, 'PUT', '/v1/scripts/ok', { type: 'application/octet-stream', data: SCRIPT });
    admin.destroy();
    if (put.status !== 201) throw new Error(`PUT /v1/scripts/ok: ${put.status} ${put.body}`);
    const local = join(dir, 'ok.sh');
    writeFileSync(local, SCRIPT);
    chmodSync(local, 0o755);

    const lat = await latency(d, local);
    const afterLatencyKb = d.kb('VmRSS');
    if (latencyOnly) {
      report({ lat, startKb, afterLatencyKb });
      return;
    }
    const l = await load(d);
    const hwmKb = d.kb('VmHWM');
    await sleep(idleSeconds * 1000);
    const idleKb = d.kb('VmRSS');
    report({ lat, startKb, afterLatencyKb, load: { l, hwmKb, idleKb } });
  } finally {
    await d.stop();
  }
}

type Row = [string, string, string, string, string];

function report(r: { lat: { daemon: number[]; local: number[] }; startKb: number; afterLatencyKb: number; load?: { l: Load; hwmKb: number; idleKb: number } }): void {
  const { lat } = r;
  const p = (xs: number[]) => ({ n: xs.length, p50: ms(percentile(xs, 50)), p99: ms(percentile(xs, 99)) });
  const daemon = p(lat.daemon);
  const local = p(lat.local);
  const overhead = { p50: ms(daemon.p50 - local.p50), p99: ms(daemon.p99 - local.p99) };
  const rows: Row[] = [
    [`local fork+exec (${runs})`, String(local.p50), String(local.p99), '', ''],
    [`exec over one connection (${runs})`, String(daemon.p50), String(daemon.p99), '', ''],
    ['exec overhead (daemon - local)', String(overhead.p50), String(overhead.p99), 'p50 < 10 ms', overhead.p50 < 10 ? 'met' : 'not met'],
  ];
  const memory = [`| VmRSS once listening | ${mb(r.startKb)} | < 60 | ${mb(r.startKb) < 60 ? 'met' : 'not met'} |`, `| VmRSS after the latency runs | ${mb(r.afterLatencyKb)} |  |  |`];
  let loadSummary: Record<string, unknown> = {};
  if (r.load !== undefined) {
    const { l, hwmKb, idleKb } = r.load;
    const kinds = Object.fromEntries(KINDS.map((k) => [k, { ...p(l.ms[k]), errors: l.errors[k] }])) as Record<Kind, ReturnType<typeof p> & { errors: number }>;
    const allMs = KINDS.flatMap((k) => l.ms[k]);
    const errors = KINDS.reduce((n, k) => n + l.errors[k], 0);
    const peakSampledKb = Math.max(...l.rssKb);
    rows.push(
      ...KINDS.map((k): Row => [`load: ${k} (${kinds[k].n}, ${kinds[k].errors} errors)`, String(kinds[k].p50), String(kinds[k].p99), '', '']),
      [`load: all requests (${allMs.length}, ${(allMs.length / seconds).toFixed(0)}/s, ${errors} errors)`, String(ms(percentile(allMs, 50))), String(ms(percentile(allMs, 99))), 'p99 < 50 ms, 0 errors', percentile(allMs, 99) < 50 && errors === 0 ? 'met' : 'not met'],
    );
    memory.push(
      `| VmRSS under load, peak of 200 ms samples | ${mb(peakSampledKb)} | < 150 | ${mb(peakSampledKb) < 150 ? 'met' : 'not met'} |`,
      `| VmHWM at the end of the load | ${mb(hwmKb)} | < 150 | ${mb(hwmKb) < 150 ? 'met' : 'not met'} |`,
      `| VmRSS ${idleSeconds} s after the load (connections closed) | ${mb(idleKb)} | < 60 | ${mb(idleKb) < 60 ? 'met' : 'not met'} |`,
    );
    if (l.firstErrors.length > 0) memory.push('', 'first errors:', ...l.firstErrors);
    loadSummary = {
      load: { ...kinds, all: { n: allMs.length, perSecond: Math.round(allMs.length / seconds), p50: ms(percentile(allMs, 50)), p99: ms(percentile(allMs, 99)), errors } },
      rssMb: { start: mb(r.startKb), afterLatency: mb(r.afterLatencyKb), peakSampled: mb(peakSampledKb), hwm: mb(hwmKb), idleAfterLoad: mb(idleKb) },
    };
  }
  const out = [
    `fussyd on 127.0.0.1, ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} at the end; max-runs ${maxRuns}, max-connections ${maxConnections}; ${latencyOnly ? 'latency only' : `${clients} clients for ${seconds} s, think time ${thinkMs > 0 ? `${thinkMs / 2}-${thinkMs * 1.5} ms` : '0 (closed loop)'}`}`,
    '',
    '| measure | p50 ms | p99 ms | goal | |',
    '|---|---|---|---|---|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    '| fussyd memory | MB | goal | |',
    '|---|---|---|---|',
    ...memory,
  ];
  process.stdout.write(out.join('\n') + '\n');
  const summary = {
    machine: { cores: cpus().length, loadavg: loadavg(), node: process.version },
    settings: { runs, clients, seconds, thinkMs, idleSeconds, maxRuns, maxConnections, latencyOnly },
    latency: { local, daemon, overhead },
    ...(r.load === undefined ? { rssMb: { start: mb(r.startKb), afterLatency: mb(r.afterLatencyKb) } } : loadSummary),
  };
  process.stdout.write('\n' + JSON.stringify(summary) + '\n');
}

const dir = mkdtempSync(join(tmpdir(), 'fussy-bench-daemon-'));
try {
  await main(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
