import assert from 'node:assert/strict';
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Precreator } from '../../src/unpack/precreate.js';
import { useTmp } from '../helpers/tmp.js';

/** Wait (up to 10 s) until the worker has made this file: worker start-up time varies on CI. */
async function until(path: string): Promise<void> {
  for (let i = 0; i < 1000 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('Precreator: files created ahead of the unpack on a worker thread', function () {
  const tmp = useTmp();

  it('every file is created exactly once, by the worker or by the claimant, whatever the order', async function () {
    await mkdir(join(tmp.dir, 'd'));
    const paths = Array.from({ length: 400 }, (_, i) => join(tmp.dir, 'd', `f${i}`));
    const pre = new Precreator(paths);
    await until(paths[100] as string); // let the worker start and run ahead
    let byWorker = 0;
    // Claim from the far end first (the worker has not got there), then the rest in order.
    for (const i of [399, 398, ...Array.from({ length: 398 }, (_, k) => k)]) {
      if (pre.claim(i)) {
        assert.ok(existsSync(paths[i] as string), `worker said it created #${i}`);
        byWorker += 1;
      } else {
        closeSync(openSync(paths[i] as string, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)); // EEXIST would mean a double create
      }
    }
    await pre.finish();
    assert.equal((await readdir(join(tmp.dir, 'd'))).length, 400);
    // Files 0..100 existed before the first claim. How many more the worker made is the
    // scheduler's business: claim(399) lets it run ahead, and on a loaded machine it can get past
    // #399 before the main thread's compare-and-swap (a bound of < 400 here failed once in CI).
    assert.ok(byWorker >= 101, `worker created ${byWorker}`);
  });

  it('finish() stops the worker: nothing is created after it resolves', async function () {
    await mkdir(join(tmp.dir, 'e'));
    const paths = Array.from({ length: 5000 }, (_, i) => join(tmp.dir, 'e', `f${i}`));
    const pre = new Precreator(paths);
    await pre.finish();
    const n = (await readdir(join(tmp.dir, 'e'))).length;
    assert.ok(n <= 257 + 1, `at most the look-ahead is created without claims (${n})`);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await readdir(join(tmp.dir, 'e'))).length, n);
  });

  it('a file it cannot create is left to the claimant, who sees the real error', async function () {
    const paths = [join(tmp.dir, 'missing-dir', 'f0'), ...Array.from({ length: 10 }, (_, i) => join(tmp.dir, `g${i}`))];
    const pre = new Precreator(paths);
    await until(paths[1] as string);
    assert.equal(pre.claim(0), false);
    assert.equal(pre.claim(1), true);
    await pre.finish();
  });
});
