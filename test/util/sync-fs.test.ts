import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

  it('one background sync runs while the next waits in the shell\'s input; data that comes due past that gets another as soon as one ends, without waiting to be asked', async function () {
    const h = new SyncHelper(tmp.dir);
    try {
      // Without a turn of the event loop in between, as while a patch is copied: no answer is heard.
      for (const [i, name] of ['a', 'b'].entries()) {
        writeFileSync(join(tmp.dir, name), Buffer.alloc(1 << 20, i));
        h.wrote(1 << 20, 1);
      }
      assert.equal(h.started, 2, 'the second is asked at once, not after the first is answered');
      writeFileSync(join(tmp.dir, 'c'), Buffer.alloc(1 << 20, 3));
      h.wrote(1 << 20, 1 << 30);
      h.kick(); // the end of the data, while two are queued: held, not dropped
      assert.equal(h.started, 2, 'two at a time');
      for (let i = 0; i < 500 && h.started < 3; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(h.started, 3, 'the held sync started when one ended');
      assert.equal(await h.sync(), true);
    } finally {
      h.close();
    }
  });

  it('lost-writeback-error: a background sync that failed makes the final one say false though it succeeds (syncfs reports an error once), so the caller fsyncs every file', async function () {
    const dir = join(tmp.dir, 'comes-later');
    const h = new SyncHelper(dir);
    try {
      h.wrote(1 << 20, 1); // asked while the directory is missing: sync -f fails
      await h.sync().catch(() => false); // answered
      await mkdir(dir);
      const again = new SyncHelper(dir);
      assert.equal(await again.sync(), true, 'the directory syncs now');
      again.close();
      assert.equal(await h.sync(), false, 'the install that lost a background sync is told so');
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
    fsyncTree(tmp.dir); // a FIFO opened for reading, or a link loop followed, would never return
  });
});
