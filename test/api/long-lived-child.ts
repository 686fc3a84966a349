/**
 * Run by long-lived.test.ts in a process of its own: a hundred operations through the public API
 * (installs of two packages in turn, rollbacks, status, history, clean), two installs on
 * different targets at the same time, then what the process still holds: RSS after the first
 * rounds and at the end (each after a full collection), the handles that keep the event loop
 * alive, its threads and its child processes. Prints one JSON line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clean, history, install, pack, rollback, status } from '../../src/index.js';
import { makeDevice } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const rssMB = (): number => {
  gc();
  gc();
  return Math.round(process.memoryUsage().rss / 1024 / 1024);
};
const threads = (): number => readdirSync('/proc/self/task').length;
const children = (): number[] =>
  readdirSync('/proc/self/task').flatMap((t) =>
    readFileSync(`/proc/self/task/${t}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((x) => x !== '')
      .map(Number),
  );

// Before anything: this process's own stdio pipes (when a parent pipes them) are no leak.
// Made on first use (stdin by execa as it loads): made now, so that they count as the start.
void [process.stdin, process.stdout, process.stderr];
await new Promise((r) => setTimeout(r, 50));
const resourcesStart = process.getActiveResourcesInfo().sort();
const dev = await makeDevice(await makeTmp('fussy-api-'));
const env = { PATH: process.env.PATH, FUSSY_HOOK_LOG: dev.hookLog };
const packages: string[] = [];
for (const n of [1, 2]) {
  const files = [...sampleFirmware(), { path: 'etc/release', content: `release ${n}\n` }, { path: 'share/blob', content: Buffer.alloc(512 * 1024, n) }];
  const src = await writeTree(join(dev.dir, 'build', `fw-${n}`), files);
  packages.push((await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], recipients: n === 2 ? [dev.deviceFingerprint] : undefined, recipientKeyFiles: n === 2 ? [dev.devicePublicKeyFile] : undefined, output: join(dev.dir, `fw-${n}.gpg`) })).path);
}
const target = { target: dev.target, env, cwd: dev.dir };

let ops = 0;
let early: { rss: number; threads: number } | undefined;
const startThreads = threads();
for (let round = 0; round < 20; round++) {
  const pkg = packages[round % 2] as string;
  await install({ ...target, package: pkg, keyring: dev.keyring, allowDowngrade: true });
  const s = await status({ target: dev.target });
  if (s.current === undefined) throw new Error('status names no current release after an install');
  await rollback(target);
  await history({ target: dev.target });
  await clean({ ...target, keep: 1 });
  ops += 5;
  if (round === 3) early = { rss: rssMB(), threads: threads() };
}

// Two installs on different targets at the same time, in this one process.
const other = join(dev.dir, 'second');
await mkdir(join(other, 'current'), { recursive: true });
await writeFile(join(other, 'current', 'version'), 'factory\n');
const both = await Promise.all([
  install({ ...target, package: packages[0] as string, keyring: dev.keyring, allowDowngrade: true }),
  install({ target: other, env, cwd: dev.dir, package: packages[1] as string, keyring: dev.keyring }),
]);
ops += 2;

await new Promise((r) => setTimeout(r, 200)); // let threads that were asked to end, end
process.stdout.write(
  `${JSON.stringify({
    ops,
    concurrent: both.map((r) => r.release),
    rssEarlyMB: early?.rss,
    rssEndMB: rssMB(),
    threadsStart: startThreads,
    threadsEarly: early?.threads,
    threadsEnd: threads(),
    resourcesStart,
    resourcesEnd: process.getActiveResourcesInfo().sort(),
    children: children().map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()),
  })}\n`,
);
