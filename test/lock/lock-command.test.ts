import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { withLock } from '../../src/lock/with-lock.js';
import { cli } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    return false;
  }
};

describe('fussy lock NAME -- CMD (cronlock): one instance at a time', function () {
  let dir: string;
  beforeEach(async function () {
    dir = await makeTmp();
  });

  it("runs the command and exits with its status and output", async function () {
    const r = await cli('fussy', ['lock', '--dir', dir, 'job', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.equal(r.exitCode, 7);
    assert.equal(r.stdout.trim(), 'out');
    assert.match(r.stderr, /^err/);
  });

  it('a second instance exits 75 at once naming the holder (-q: silently); the lock is free afterwards', async function () {
    const first = execa(process.execPath, [FUSSY, 'lock', '--dir', dir, 'job', '--', 'sleep', '30'], { reject: false });
    await until('the first to hold the lock', async () => (await readFile(join(dir, 'job.lock'), 'utf8').catch(() => '')).includes('sleep 30'));
    // At once: one that waited would get the lock only after the first is killed below, and exit 0.
    const busy = await cli('fussy', ['lock', '--dir', dir, 'job', '--', 'true']);
    assert.equal(busy.exitCode, 75);
    assert.match(busy.stderr, /job\.lock is held by pid \d+ \(sleep 30/);
    const quiet = await cli('fussy', ['lock', '-q', '--dir', dir, 'job', '--', 'true']);
    assert.deepEqual([quiet.exitCode, quiet.stderr], [75, '']);
    first.kill('SIGTERM'); // forwarded to the command's group
    assert.equal((await first).exitCode, 128 + 15);
    assert.equal((await cli('fussy', ['lock', '--dir', dir, 'job', '--', 'true'])).exitCode, 0);
  });

  it('--timeout terminates the whole process group and exits 124', async function () {
    const pidFile = join(dir, 'bg.pid');
    const t0 = Date.now();
    const r = await cli('fussy', ['lock', '--dir', dir, '--timeout', '1', 'slow', '--', 'sh', '-c', `sleep 60 & echo $! > ${pidFile}; sleep 60`]);
    assert.equal(r.exitCode, 124, r.stderr);
    assert.ok(Date.now() - t0 < 30_000, 'not held up by the background sleep 60'); // a bound with room for a loaded machine
    const bg = Number(await readFile(pidFile, 'utf8'));
    await until('the background child to be gone', async () => !alive(bg));
  });

  it('the lock dies with its holder: killing fussy leaves it held by the running command, and free once that is gone', async function () {
    // stdio ignored: the command would keep pipes to this test open after fussy dies.
    const first = execa(process.execPath, [FUSSY, 'lock', '--dir', dir, 'job', '--', 'sleep', '60'], { reject: false, stdio: 'ignore' });
    let holder = 0;
    await until('the command to hold the lock', async () => {
      const text = await readFile(join(dir, 'job.lock'), 'utf8').catch(() => '{}');
      holder = (JSON.parse(text) as { pid?: number }).pid ?? 0;
      return holder !== 0 && holder !== first.pid;
    });
    first.kill('SIGKILL');
    await first;
    assert.ok(alive(holder), 'the command outlives fussy');
    assert.equal((await cli('fussy', ['lock', '--dir', dir, 'job', '--', 'true'])).exitCode, 75, 'still busy: the command runs');
    process.kill(holder, 'SIGKILL');
    await until('the command to be gone', async () => !alive(holder));
    // fussy lock never waits without --wait: exit 0 is the dead holder recognised, not a staleness timeout run out.
    assert.equal((await cli('fussy', ['lock', '--dir', dir, 'job', '--', 'true'])).exitCode, 0, 'a dead holder is recognised at once');
  });

  it('withLock: the library API refuses a second holder with LOCKED and rejects bad names', async function () {
    let inner: unknown;
    await withLock('api', { dir }, async () => {
      inner = await withLock('api', { dir }, async () => 'no').catch((err: unknown) => err);
    });
    assert.equal((inner as { code?: string }).code, 'LOCKED');
    assert.equal(await withLock('api', { dir }, async () => 'free again'), 'free again');
    await assert.rejects(withLock('../etc/x', { dir }, async () => 1), { code: 'USAGE' });
    const r = await cli('fussy', ['lock', '--dir', dir, '../x', '--', 'true']);
    assert.equal(r.exitCode, 2);
  });
});
