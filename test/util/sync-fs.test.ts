import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncTree, SyncHelper } from '../../src/util/sync-fs.js';
import { useTmp } from '../helpers/tmp.js';

describe('SyncHelper: one shell per process that runs sync -f on request', function () {
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

  it('data that comes due while a background sync runs gets the next one as soon as it ends, without waiting to be asked', async function () {
    const h = new SyncHelper(tmp.dir);
    try {
      await writeFile(join(tmp.dir, 'a'), Buffer.alloc(1 << 20, 1));
      h.wrote(1 << 20, 1);
      assert.equal(h.started, 1);
      await writeFile(join(tmp.dir, 'b'), Buffer.alloc(1 << 20, 2));
      h.wrote(1 << 20, 1 << 30);
      h.kick(); // the end of the data, while the first still runs: queued, not dropped
      assert.equal(h.started, 1, 'one at a time');
      for (let i = 0; i < 500 && h.started < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(h.started, 2, 'the queued sync started when the first ended');
      assert.equal(await h.sync(), true);
    } finally {
      h.close();
    }
  });

  it('reports failure (so the caller falls back to its own sync) when sync -f fails, and serves the next install all the same', async function () {
    const h = new SyncHelper(join(tmp.dir, 'no-such-dir'));
    h.wrote(1 << 30, 1);
    assert.equal(await h.sync(), false);
    h.close();
    const next = new SyncHelper(tmp.dir);
    assert.equal(next.shellPid, h.shellPid, 'the same shell');
    assert.equal(await next.sync(), true);
    assert.equal(await new SyncHelper(`${tmp.dir}\nx`).sync(), false, 'a path it cannot pass on one line is not sent');
  });

  it('one shell serves every install of a process, keeps nothing alive while idle, and ends with the process', async function () {
    const script = `import { SyncHelper } from ${JSON.stringify(new URL('../../src/util/sync-fs.js', import.meta.url).href)};
      const a = new SyncHelper(${JSON.stringify(tmp.dir)});
      const b = new SyncHelper('/');
      const [x, y] = await Promise.all([a.sync(), b.sync()]);
      if (!x || !y || a.shellPid !== b.shellPid) process.exit(3);
      console.log(a.shellPid);`;
    // No exit() at the end: the process must end by itself once nothing is waiting for the shell.
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const pid = Number(out.trim());
    assert.ok(pid > 0);
    for (let i = 0; i < 600 && existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), 'the shell outlived its process');
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
