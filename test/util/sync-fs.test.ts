import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncTree, SyncHelper } from '../../src/util/sync-fs.js';
import { useTmp } from '../helpers/tmp.js';

describe('SyncHelper: one long-lived shell that runs sync -f on request', function () {
  const tmp = useTmp();

  it('syncs in the background while data is written, then once more on request', async function () {
    const h = new SyncHelper(tmp.dir);
    try {
      for (let i = 0; i < 8; i++) {
        await writeFile(join(tmp.dir, `f${i}`), Buffer.alloc(1024 * 1024, i));
        h.wrote(1024 * 1024, 2 * 1024 * 1024);
      }
      assert.equal(await h.sync(), true);
      assert.equal(await h.sync(), true, 'the same shell answers again');
    } finally {
      h.close();
    }
  });

  it('reports failure (so the caller falls back to its own sync) when the shell cannot start', async function () {
    const h = new SyncHelper(join(tmp.dir, 'no-such-dir'));
    h.wrote(1 << 30, 1);
    assert.equal(await h.sync(), false);
    h.close();
  });

  it('fsyncTree (the fallback without sync -f) syncs files and dirs without opening FIFOs or following links, however deep', async function () {
    let deep = tmp.dir;
    for (let i = 0; i < 100; i++) deep = join(deep, 'd');
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, 'f'), 'x');
    execFileSync('mkfifo', [join(tmp.dir, 'fifo')]);
    execFileSync('mkfifo', [join(deep, 'fifo')]);
    await symlink(tmp.dir, join(deep, 'loop'));
    await symlink(join(tmp.dir, 'fifo'), join(tmp.dir, 'fifo-link'));
    const t0 = Date.now();
    fsyncTree(tmp.dir);
    assert.ok(Date.now() - t0 < 10_000);
  });
});
