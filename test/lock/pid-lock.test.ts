import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseLockRecord } from '../../src/lock/lock-file.js';
import { acquireLock, holderAlive, processStart, readLockFile } from '../../src/lock/pid-lock.js';
import { defaultLockDir } from '../../src/lock/with-lock.js';
import { useTmp } from '../helpers/tmp.js';

describe('pid-lock: the lock file is only read (never through a link, never more than 4 KiB) and replaced, never written through', function () {
  const tmp = useTmp();

  it('a lock record is type-checked: forged types, bogus pids and control characters never reach /proc paths or a terminal', function () {
    assert.deepEqual(parseLockRecord('{"pid":12,"start":"345","what":"install x","since":"2026"}'), { pid: 12, start: '345', what: 'install x', since: '2026' });
    for (const bad of ['', 'null', '[]', '{"pid":"12","start":"1","what":"","since":""}', '{"pid":"self/../../etc","start":"1","what":"","since":""}', '{"pid":-1,"start":"1","what":"","since":""}', '{"pid":1.5,"start":"1","what":"","since":""}', '{"pid":1,"start":1,"what":"","since":""}', '{"pid":1,"start":"1"}']) {
      assert.equal(parseLockRecord(bad), undefined, bad);
    }
    assert.equal(parseLockRecord('{"pid":1,"start":"1","what":"\\u001b[2Jx\\u0007","since":"s"}')?.what, '?[2Jx?');
  });

  it('readLockFile: a record over 4 KiB is unreadable (a stale lock), not read whole; a directory or symlink is refused naming it', async function () {
    const f = join(tmp.dir, 'big.lock');
    await writeFile(f, JSON.stringify({ pid: 1, start: '1', what: 'x'.repeat(10_000), since: 's' }));
    assert.equal(readLockFile(f)?.holder, undefined);
    await mkdir(join(tmp.dir, 'dir.lock'));
    assert.throws(() => readLockFile(join(tmp.dir, 'dir.lock')), { code: 'LOCK_UNUSABLE', message: /dir\.lock is a directory \(owner uid \d+.*\), not a lock file/ });
    await symlink(f, join(tmp.dir, 'link.lock'));
    assert.throws(() => readLockFile(join(tmp.dir, 'link.lock')), { code: 'LOCK_UNUSABLE', message: /link\.lock is a symbolic link/ });
    assert.equal(readLockFile(join(tmp.dir, 'none.lock')), undefined);
  });

  it('a dead holder (same pid, other start time) is taken over at once; release removes only our own record; no temp files are left', async function () {
    const file = join(tmp.dir, 'job.lock');
    await writeFile(file, JSON.stringify({ pid: process.pid, start: '1', what: 'crashed', since: 's' }));
    assert.equal(holderAlive({ pid: process.pid, start: '1', what: '', since: '' }), false);
    const lock = await acquireLock(file, 'me');
    const rec = readLockFile(file);
    assert.deepEqual([rec?.holder?.pid, rec?.holder?.start, rec?.holder?.what], [process.pid, processStart(process.pid), 'me']);
    await assert.rejects(acquireLock(file, 'again'), { code: 'LOCKED', message: /held by pid \d+ \(me, since/ });
    // Someone else's record replaced ours (by hand): release leaves it alone.
    await writeFile(file + '.x', JSON.stringify({ pid: 1, start: processStart(1), what: 'init', since: 's' }));
    await execa('mv', [file + '.x', file]);
    await lock.release();
    assert.equal(readLockFile(file)?.holder?.what, 'init');
    assert.deepEqual(await readdir(tmp.dir), ['job.lock']);
  });

  it('transfer hands the lock to a live child through a fresh temp file; the lock file mode is 0644 whatever the umask', async function () {
    const file = join(tmp.dir, 'job.lock');
    const child = execa('sleep', ['30'], { reject: false });
    const old = process.umask(0o077);
    try {
      const lock = await acquireLock(file, 'job');
      await lock.transfer(child.pid as number);
      assert.equal(readLockFile(file)?.holder?.pid, child.pid);
      assert.equal((await lstat(file)).mode & 0o777, 0o644);
      assert.deepEqual(await readdir(tmp.dir), ['job.lock']);
      await lock.release();
      assert.deepEqual(await readdir(tmp.dir), []);
    } finally {
      process.umask(old);
      child.kill();
      await child;
    }
  });

  it('the default lock directory is per user: root /run/lock/fussy 0755, others /run/lock/fussy-UID 0700', function () {
    assert.deepEqual(defaultLockDir(0), { dir: '/run/lock/fussy', mode: 0o755 });
    assert.deepEqual(defaultLockDir(1000), { dir: '/run/lock/fussy-1000', mode: 0o700 });
  });

  it('the lock directory is created when missing, and must be trusted', async function () {
    const lock = await acquireLock(join(tmp.dir, 'a', 'b', 'job.lock'), 'job');
    assert.equal((await lstat(join(tmp.dir, 'a', 'b'))).mode & 0o7777, 0o755);
    await lock.release();
    assert.equal(await readFile(join(tmp.dir, 'a', 'b', 'job.lock'), 'utf8').catch((e: NodeJS.ErrnoException) => e.code), 'ENOENT');
  });
});
