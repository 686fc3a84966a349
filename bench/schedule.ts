/**
 * bench/schedule: the scheduler's cost when idle (issue 13: "it sleeps until the next firing; no
 * polling each second"). `--jobs` jobs (1,000) with schedules spread over the day (minute i % 60,
 * hour i % 24, some every 15 minutes, some weekly, some with a year, and 200 hourly jobs, a few at every minute of the hour), in the loop of
 * src/daemon/schedule/loop.ts on the real clock, for `--seconds` (120) after
 * `--settle-seconds` (30: V8's one-off collection when the process goes quiet); their runs are not
 * started (the loop's own cost is measured, not the runs'). Prints the process's CPU time over
 * the measured window, the loop's wake-ups, the firings, and the same for a process doing
 * nothing for as long (node's own idle cost), as a Markdown table and a JSON line.
 *
 *   npm run bench:schedule -- [--jobs 1000] [--seconds 120] [--settle-seconds 30] [--daemon]
 *
 * `--daemon`: the same inside a real `bin/fussyd` (bench/fussyd-child.ts), as a device runs it:
 * its state holds `--jobs` operator jobs whose firings all fall outside the measured window (daily,
 * weekly, monthly and year-limited schedules at hours other than this one and the next), and its
 * CPU time (every thread's, from /proc/PID/task/TID/schedstat) over the window is compared with a
 * fussyd holding no job: the difference is the scheduler's idle cost, with fussyd's own idle work
 * (the 2 s look at the roles file, the CRL and `current`) in both.
 *
 * The npm script runs node with --expose-gc, so the setup's garbage is collected before the window.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFussyd } from './fussyd-child.js';
import { parseSchedule } from '../src/daemon/schedule/expression.js';
import { ScheduleLoop, systemClock, type LoopJob } from '../src/daemon/schedule/loop.js';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '120' }, 'settle-seconds': { type: 'string', default: '30' }, daemon: { type: 'boolean', default: false } } });
const settleSeconds = Number(values['settle-seconds']);
const count = Number(values.jobs);
const seconds = Number(values.seconds);

function schedules(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const m = i % 60;
    const h = i % 24;
    out.push([`${m} ${h} * * *`, `*/15 * * * *`, `${m} ${h} * * ${i % 7}`, `${m} ${h} 1 * * 2027-2030`, `${Math.floor(i / 5) % 60} * * * *`][i % 5] as string);
  }
  return out;
}

const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

async function window(): Promise<number> {
  const c0 = process.cpuUsage();
  await sleep(seconds * 1000);
  return cpuMs(process.cpuUsage(c0));
}

async function main(): Promise<void> {
  const baseline = await window();
  let wakes = 0;
  let fired = 0;
  const clock = { ...systemClock, setTimeout: (fn: () => void, ms: number): unknown => systemClock.setTimeout(() => (wakes++, fn()), ms) };
  const loop = new ScheduleLoop({ clock, record: () => {}, fire: async () => void fired++ });
  const t0 = process.cpuUsage();
  const jobs: LoopJob[] = schedules(count).map((expr, i) => ({ name: `job-${i}`, enabled: true, schedule: parseSchedule(expr) }));
  loop.set(jobs);
  loop.start();
  const setupMs = cpuMs(process.cpuUsage(t0));
  // The setup's garbage (1,000 parsed schedules) would be collected long before a daemon sits idle: with --expose-gc, collected here, outside the window.
  (globalThis as { gc?: () => void }).gc?.();
  // V8's memory reducer runs a few seconds after the process goes quiet (a full collection of the new heap, once): let it pass.
  await sleep(settleSeconds * 1000);
  const idle = await window();
  await loop.stop();
  const rows = [
    `${count} jobs, ${seconds} s, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`,
    '',
    '| measure | value |',
    '|---|---|',
    `| parse ${count} schedules and start the loop, CPU | ${setupMs.toFixed(0)} ms |`,
    `| loop running, CPU over ${seconds} s | ${idle.toFixed(1)} ms (${((idle / seconds) * 60).toFixed(1)} ms a minute) |`,
    `| node doing nothing, CPU over ${seconds} s | ${baseline.toFixed(1)} ms |`,
    `| wake-ups / firings (not run) | ${wakes} / ${fired} |`,
  ];
  console.log(rows.join('\n'));
  console.log(JSON.stringify({ jobs: count, seconds, setupCpuMs: Math.round(setupMs), loopCpuMs: Math.round(idle * 10) / 10, baselineCpuMs: Math.round(baseline * 10) / 10, wakes, fired }));
}

/** Schedules that do not fire in the next two hours (this hour and the next are left out). */
function quietSchedules(n: number): string[] {
  const now = new Date().getHours();
  const hours = Array.from({ length: 24 }, (_, h) => h).filter((h) => h !== now && h !== (now + 1) % 24);
  return Array.from({ length: n }, (_, i) => {
    const m = i % 60;
    const h = hours[i % hours.length] as number;
    return [`${m} ${h} * * *`, `${m} ${h} * * ${i % 7}`, `${m} ${h} 1 * * 2027-2030`, `${m} ${h} */2 * *`, `0 ${h} * * 1-5`][i % 5] as string;
  });
}

/** CPU time of every thread of `pid` so far (ms), from schedstat (ns). */
async function threadsCpuMs(pid: number): Promise<number> {
  let ns = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) ns += Number((await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')).split(' ')[0]);
  return ns / 1e6;
}

async function inDaemon(jobs: number): Promise<{ cpuMs: number; log: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fussy-bench-schedule-'));
  try {
    await mkdir(join(dir, 'state'), { mode: 0o750 });
    const stored = quietSchedules(jobs).map((schedule, i) => ({ name: `job-${i}`, schedule, script: 'maint.sh' }));
    await writeFile(join(dir, 'state', 'schedule.json'), JSON.stringify({ version: 1, jobs: stored, state: {} }), { mode: 0o600 });
    const d = await startFussyd(dir, []);
    try {
      await sleep(settleSeconds * 1000);
      const c0 = await threadsCpuMs(d.pid);
      await sleep(seconds * 1000);
      return { cpuMs: (await threadsCpuMs(d.pid)) - c0, log: d.stderr() };
    } finally {
      await d.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function daemonMain(): Promise<void> {
  const none = await inDaemon(0);
  const many = await inDaemon(count);
  const fired = (many.log.match(/"event":"schedule-fire"/g) ?? []).length;
  const rows = [
    `bin/fussyd, ${count} operator jobs (none firing in the window), ${seconds} s after ${settleSeconds} s, ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}`,
    '',
    '| measure | value |',
    '|---|---|',
    `| fussyd with no job, CPU over ${seconds} s (every thread) | ${none.cpuMs.toFixed(1)} ms |`,
    `| fussyd with ${count} jobs, CPU over ${seconds} s (every thread) | ${many.cpuMs.toFixed(1)} ms |`,
    `| the scheduler's share | ${(many.cpuMs - none.cpuMs).toFixed(1)} ms (${(((many.cpuMs - none.cpuMs) / seconds) * 60).toFixed(1)} ms a minute) |`,
    `| firings in the window | ${fired} |`,
  ];
  console.log(rows.join('\n'));
  console.log(JSON.stringify({ mode: 'daemon', jobs: count, seconds, noJobsCpuMs: Math.round(none.cpuMs * 10) / 10, jobsCpuMs: Math.round(many.cpuMs * 10) / 10, fired }));
}

await (values.daemon === true ? daemonMain() : main());
