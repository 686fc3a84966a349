import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { acquireLock, processStart } from '../../src/lock/pid-lock.js';
import { writeNewFile } from '../../src/util/fs-atomic.js';
import { canSwitchUser, fussy, fussyAs, NOBODY, shAs } from '../helpers/other-user.js';
import { makeTmp } from '../helpers/tmp.js';

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(dir)).sort()) {
    const st = await lstat(join(dir, n));
    out.push(`${n} ${st.uid} ${(st.mode & 0o177777).toString(8)} ${st.ino}`);
  }
  return out;
}

/**
 * Local users against `fussy lock` and the locks fussy takes (issue 10, item 2): each attacker is
 * a real second process running as nobody (setpriv), fussy runs as root.
 */
describe('security: local users against fussy lock', function () {
  let base: string;
  /** A directory every user may add to, like /tmp or /run/lock (sticky). */
  let shared: string;
  const holders: ResultPromise[] = [];

  before(function () {
    if (!canSwitchUser()) this.skip();
  });

  beforeEach(async function () {
    base = await makeTmp();
    await chmod(base, 0o755); // nobody must reach in
    shared = join(base, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o1777);
  });

  afterEach(async function () {
    for (const h of holders.splice(0)) {
      h.kill('SIGTERM');
      await h;
    }
  });

  /** root holds lock NAME in `dir` while `sleep` runs (the lock passes to the sleep). */
  async function holdAsRoot(name: string, dirArgs: string[], lockFile: string): Promise<void> {
    const h = execa(process.execPath, [FUSSY, 'lock', ...dirArgs, name, '--', 'sleep', '60'], { reject: false, stdio: 'ignore' });
    holders.push(h);
    await until(`root's command to hold ${name}`, async () => handedOver(lockFile, h.pid));
  }

  /** The lock names the command now, not the fussy that took it (transfer done). */
  async function handedOver(lockFile: string, fussyPid: number | undefined): Promise<boolean> {
    const text = await readFile(lockFile, 'utf8').catch(() => '');
    return text.includes('sleep 60') && (JSON.parse(text) as { pid: number }).pid !== fussyPid;
  }

  it('lock-dir-precreated-by-user: a lock directory another user made first in a sticky dir is refused (exit 40 naming it, its owner and mode), and left alone', async function () {
    const dir = join(shared, 'locks');
    assert.equal((await shAs(`mkdir -m 0777 ${dir} && echo '{"pid":1}' > ${dir}/job.lock`)).exitCode, 0);
    const before = await snapshot(dir);
    const r = await fussy(['lock', '--dir', dir, 'job', '--', 'touch', join(base, 'ran')]);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, new RegExp(`lock directory ${dir} is not safe to use: ${dir} is owned by uid ${NOBODY} \\(nobody\\) \\(mode 0777\\), inside ${shared}, which anyone can write to`));
    assert.match(r.stderr, /hint: remove it/);
    assert.deepEqual(await snapshot(dir), before, 'nothing in it changed');
    await assert.rejects(stat(join(base, 'ran')), { code: 'ENOENT' }, 'the command did not run');
  });

  it("lock-dir-precreated-by-user: a user's default lock directory (/run/lock/fussy-UID) made first by another user is refused, not used", async function () {
    const victim = 65533; // a uid with no processes: its default lock dir is /run/lock/fussy-65533
    const dir = `/run/lock/fussy-${victim}`;
    await rm(dir, { recursive: true, force: true });
    try {
      assert.equal((await shAs(`mkdir -m 0777 ${dir}`)).exitCode, 0);
      const r = await fussyAs(['lock', 'job', '--', 'true'], { uid: victim });
      assert.equal(r.exitCode, 40, r.stderr);
      assert.match(r.stderr, new RegExp(`${dir} is owned by uid ${NOBODY} \\(nobody\\).*it is the default lock directory of uid ${victim}`));
      assert.match(r.stderr, new RegExp(`hint: ask root to remove it \\(rm -r ${dir}\\), or pass --dir`));
      assert.deepEqual(await readdir(dir), []);
      assert.equal((await stat(dir)).mode & 0o7777, 0o777, 'left as it was');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lock-file-fifo: a FIFO named NAME.lock never stalls fussy: refused at once with exit 40 naming it', async function () {
    const fifo = join(shared, 'job.lock');
    assert.equal((await shAs(`mkfifo ${fifo}`)).exitCode, 0);
    const before = await snapshot(shared);
    const r = await fussy(['lock', '--dir', shared, 'job', '--', 'touch', join(base, 'ran')], { timeout: 20_000 });
    assert.equal(r.timedOut, false, 'fussy waited on the FIFO');
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, new RegExp(`${fifo} is a FIFO \\(owner uid ${NOBODY} \\(nobody\\), mode 0644\\), not a lock file`));
    assert.deepEqual(await snapshot(shared), before);
    await assert.rejects(stat(join(base, 'ran')), { code: 'ENOENT' });
  });

  it('lock-file-symlink: NAME.lock planted as a symlink to a root file is refused, never read or written through', async function () {
    const victim = join(base, 'victim');
    await writeFile(victim, 'root data\n');
    assert.equal((await shAs(`ln -s ${victim} ${join(shared, 'job.lock')}`)).exitCode, 0);
    const before = await snapshot(shared);
    const r = await fussy(['lock', '--dir', shared, 'job', '--', 'true']);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, /job\.lock is a symbolic link \(owner uid 65534 \(nobody\)/);
    assert.deepEqual(await snapshot(shared), before);
    assert.equal(await readFile(victim, 'utf8'), 'root data\n');
  });

  it('lock-temp-symlink: symlinks planted at every temp name the old predictable scheme would use are never written through', async function () {
    const victim = join(base, 'victim');
    await writeFile(victim, 'root data\n');
    const child = execa('sleep', ['60'], { reject: false });
    holders.push(child);
    const file = join(shared, 'job.lock');
    // file.PID.MS.tmp for this process (acquire) and the child (transfer), for the next 15 s.
    const plant = `const fs=require('fs');const [file,victim,t0,...pids]=process.argv.slice(1);for(const p of pids)for(let t=+t0;t<+t0+15000;t++)fs.symlinkSync(victim,file+'.'+p+'.'+t+'.tmp')`;
    const planted = await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', plant, file, victim, String(Date.now()), String(process.pid), String(child.pid)], { reject: false });
    assert.equal(planted.exitCode, 0, planted.stderr);
    const lock = await acquireLock(file, 'job', { shared: true });
    await lock.transfer(child.pid as number);
    const rec = JSON.parse(await readFile(file, 'utf8')) as { pid: number };
    assert.equal(rec.pid, child.pid, 'the record was written, to the lock file');
    assert.equal((await lstat(file)).uid, 0);
    assert.equal(await readFile(victim, 'utf8'), 'root data\n', 'the victim was not written through a planted link');
    const names = await readdir(shared);
    assert.equal(names.length, 30_001, 'every planted link is still there, nothing else but the lock');
    await lock.release();
    assert.equal((await readdir(shared)).includes('job.lock'), false);
  });

  it('lock-temp-symlink: a new file is created O_EXCL|O_NOFOLLOW: a link planted at its exact name fails EEXIST', async function () {
    const victim = join(base, 'victim');
    await writeFile(victim, 'root data\n');
    const name = join(shared, 'job.lock.0123456789abcdef.tmp');
    assert.equal((await shAs(`ln -s ${victim} ${name}`)).exitCode, 0);
    assert.throws(() => writeNewFile(name, 'x', 0o644), { code: 'EEXIST' });
    assert.equal(await readFile(victim, 'utf8'), 'root data\n');
    assert.equal((await lstat(name)).isSymbolicLink(), true);
  });

  it('lock-forged-by-other-user: in a shared dir a forged record of a dead or bogus holder is taken over (and never crashes fussy); a live one is that user\'s lock', async function () {
    const file = join(shared, 'job.lock');
    const forge = (text: string) => shAs(`rm -f ${file}; printf '%s' '${text}' > ${file}`);
    for (const text of ['{"pid":999999999,"start":"1","what":"forged","since":"x"}', '{"pid":"self/../../etc","start":1}', `{"pid":1,"start":"1","what":"\\u001b]0;owned\\u0007","since":"x"}`, 'not json', 'x'.repeat(100_000)]) {
      assert.equal((await forge(text)).exitCode, 0);
      const r = await fussy(['lock', '--dir', shared, 'job', '--', 'sh', '-c', `stat -c %u ${file}`]);
      assert.equal(r.exitCode, 0, `${text.slice(0, 40)}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), '0', 'root holds its own lock file while the command runs');
      await assert.rejects(stat(file), { code: 'ENOENT' }, 'released');
    }
    // A record naming a live process (pid 1 with its real start time): a user may hold a lock
    // in a directory shared with them; it is reported as theirs.
    assert.equal((await forge(`{"pid":1,"start":"${processStart(1)}","what":"forged","since":"x"}`)).exitCode, 0);
    const busy = await fussy(['lock', '--dir', shared, 'job', '--', 'true']);
    assert.equal(busy.exitCode, 75);
    assert.match(busy.stderr, /held by pid 1 \(forged, since x, a lock of uid 65534 \(nobody\)\)/);
  });

  it('lock-forged-by-other-user: in a directory only root writes, another user cannot forge or plant anything at all', async function () {
    const dir = join(base, 'private');
    await holdAsRoot('job', ['--dir', dir], join(dir, 'job.lock'));
    assert.equal(((await stat(dir)).mode & 0o7777).toString(8), '755');
    const before = await snapshot(dir);
    for (const attack of [`echo forged > ${dir}/job.lock`, `mkfifo ${dir}/other.lock`, `ln -s /etc/shadow ${dir}/x.tmp`]) {
      assert.notEqual((await shAs(attack)).exitCode, 0, attack);
    }
    assert.deepEqual(await snapshot(dir), before);
  });

  it('lock-deleted-by-other-user: root never holds a lock in a directory a user owns (where they could delete it); in a shared sticky dir they cannot remove or replace it, so a second instance stays out', async function () {
    const theirs = join(shared, 'theirs');
    assert.equal((await shAs(`mkdir -m 0755 ${theirs}`)).exitCode, 0);
    const r = await fussy(['lock', '--dir', theirs, 'job', '--', 'sleep', '60'], { timeout: 20_000 });
    assert.deepEqual([r.timedOut, r.exitCode], [false, 40], 'refused, not held where nobody could delete it');
    assert.deepEqual(await readdir(theirs), []);

    const file = join(shared, 'job.lock');
    await holdAsRoot('job', ['--dir', shared], file);
    const before = await snapshot(shared);
    for (const attack of [`rm -f ${file}`, `mv ${file} ${shared}/gone`, `echo x > ${shared}/t && mv -f ${shared}/t ${file}`]) {
      assert.notEqual((await shAs(attack)).exitCode, 0, attack);
    }
    await rm(join(shared, 't'), { force: true });
    assert.deepEqual(await snapshot(shared), before);
    const second = await fussyAs(['lock', '--dir', shared, 'job', '--', 'true']);
    assert.equal(second.exitCode, 75, second.stderr);
    assert.match(second.stderr, /job\.lock is held by pid \d+ \(sleep 60/);
  });

  it('lock-stale-of-other-user: a dead holder\'s lock owned by someone else in a shared dir is exit 40 for a user who may not remove it, and taken over by root', async function () {
    const file = join(shared, 'job.lock');
    await writeFile(file, JSON.stringify({ pid: 999_999_999, start: '1', what: 'old job', since: 'x' }) + '\n', { mode: 0o644 });
    const r = await fussyAs(['lock', '--dir', shared, 'job', '--', 'true']);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, /job\.lock is a stale lock of dead pid 999999999 \(old job\) owned by uid 0 \(root\), which you may not remove/);
    assert.equal((await lstat(file)).uid, 0, 'still there');
    assert.equal((await fussy(['lock', '--dir', shared, 'job', '--', 'true'])).exitCode, 0);
  });

  it('lock-default-dir-multiuser: root and another user both use fussy lock with defaults, each in a directory of their own that the other cannot touch', async function () {
    if (!(await stat('/run/lock').catch(() => undefined))?.isDirectory()) this.skip();
    const name = `h10-multi-${process.pid}`;
    const rootDir = '/run/lock/fussy';
    const userDir = `/run/lock/fussy-${NOBODY}`;
    await holdAsRoot(name, [], join(rootDir, `${name}.lock`));
    const rd = await stat(rootDir);
    assert.deepEqual([rd.uid, rd.mode & 0o7777], [0, 0o755]);
    // A user whose default dir was made 0755 by hand: fussy's own dir, fixed to 0700.
    await shAs(`mkdir -p ${userDir} && chmod 0755 ${userDir}`);
    const u = await fussyAs(['lock', name, '--', 'sh', '-c', `stat -c '%u %a' ${userDir}/${name}.lock ${userDir}`]);
    assert.equal(u.exitCode, 0, u.stderr);
    assert.equal(u.stdout.trim(), `${NOBODY} 644\n${NOBODY} 700`);
    // The user cannot touch root's lock, and cannot use root's directory.
    const before = await snapshot(rootDir);
    assert.notEqual((await shAs(`rm -f ${rootDir}/${name}.lock`)).exitCode, 0);
    assert.notEqual((await shAs(`touch ${rootDir}/x.lock`)).exitCode, 0);
    const intoRoot = await fussyAs(['lock', '--dir', rootDir, `${name}-2`, '--', 'true']);
    assert.equal(intoRoot.exitCode, 40, intoRoot.stderr);
    assert.match(intoRoot.stderr, new RegExp(`cannot create lock file ${rootDir}/${name}-2.lock: EACCES`));
    assert.deepEqual(await snapshot(rootDir), before);
    // The user's own lock is busy for the user while held.
    const h = execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, FUSSY, 'lock', name, '--', 'sleep', '60'], { reject: false, stdio: 'ignore' });
    holders.push(h);
    await until('the user to hold its lock', async () => handedOver(join(userDir, `${name}.lock`), h.pid));
    assert.equal((await fussyAs(['lock', name, '--', 'true'])).exitCode, 75);
    const ud = await stat(userDir);
    assert.deepEqual([ud.uid, ud.mode & 0o7777], [NOBODY, 0o700]);
  });

  it("lock-dir-precreated-by-user: root's default /run/lock/fussy made first by another user is refused with the fix, then made root's again", async function () {
    if (!(await stat('/run/lock').catch(() => undefined))?.isDirectory()) this.skip();
    const dir = '/run/lock/fussy';
    const saved = `/run/lock/.fussy-saved-${process.pid}`;
    const had = await rename(dir, saved).then(() => true, (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)));
    try {
      assert.equal((await shAs(`mkdir -m 0755 ${dir} && touch ${dir}/job.lock`)).exitCode, 0);
      const before = await snapshot(dir);
      const r = await fussy(['lock', 'job', '--', 'true']);
      assert.equal(r.exitCode, 40, r.stderr);
      assert.match(r.stderr, /lock directory \/run\/lock\/fussy is not safe to use: \/run\/lock\/fussy is owned by uid 65534 \(nobody\) \(mode 0755\), inside \/run\/lock, which anyone can write to/);
      assert.match(r.stderr, /hint: remove it \(rm -r \/run\/lock\/fussy\): fussy makes it again, owned by root, mode 0755/);
      assert.deepEqual(await snapshot(dir), before);
      await rm(dir, { recursive: true });
      assert.equal((await fussy(['lock', 'job', '--', 'true'])).exitCode, 0);
      const st = await stat(dir);
      assert.deepEqual([st.uid, st.mode & 0o7777], [0, 0o755]);
    } finally {
      await rm(dir, { recursive: true, force: true });
      if (had) await rename(saved, dir);
    }
  });
});
