import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { appendFile, chmod, lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { HashCache } from '../../src/store/hash-cache.js';
import { pack } from '../../src/pack/pack.js';
import { isTempName, tempName } from '../../src/util/fs-atomic.js';
import { execa } from 'execa';
import { deviceBeside, installInto, makeDevice, targetState, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, snapshotTree, writeTree, type SampleFile } from '../helpers/tree.js';

const HOOK = (name: string, exit = 0) => `#!/bin/sh\necho "${name} $1 $2 $FUSSY_PHASE $FUSSY_RECOVERY prev=$FUSSY_PREVIOUS" >> "$FUSSY_HOOK_LOG"\necho "${name} says hello"\nexit ${exit}\n`;

function firmware(opts: { pre?: number; post?: number; extra?: SampleFile[] } = {}): SampleFile[] {
  return [
    ...sampleFirmware().filter((f) => !f.path.startsWith('.')),
    { path: '.pre-install', content: HOOK('pre', opts.pre ?? 0), mode: 0o755 },
    { path: '.post-install', content: HOOK('post', opts.post ?? 0), mode: 0o755 },
    ...(opts.extra ?? []),
  ];
}

describe('fussy install end to end: pack, install, update, failing hooks', function () {
  let dev: Device;
  let n = 0;
  const packTree = async (name: string, files: SampleFile[], extra: Partial<Parameters<typeof pack>[0]> = {}) => {
    const src = await writeTree(join(dev.dir, 'build', String(++n), name), files);
    return (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'pkgs', String(n)) + '/', ...extra })).path;
  };
  const hookLog = async () => (await readFile(dev.hookLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
  const current = async () => readlink(join(dev.target, 'current'));

  beforeEach(async function () {
    dev = await makeDevice(await makeTmp());
  });

  it('installs, updates with hard links for unchanged files, and runs hooks with Fussy\'s argv', async function () {
    const v1 = await packTree('fw-v1', firmware());
    const r1 = await installInto(dev, v1);
    assert.equal(r1.path, join(dev.target, 'fw-v1'));
    assert.equal(await current(), 'fw-v1');
    assert.equal((await lstat(join(dev.target, 'failsafe'))).isDirectory(), true, 'the factory current dir became failsafe');
    assert.equal(await readFile(join(dev.target, 'failsafe', 'etc', 'version'), 'utf8'), 'factory\n');
    assert.deepEqual(await hookLog(), [
      `pre ${join(dev.target, 'fw-v1')} False pre-install False prev=${join(dev.target, 'failsafe')}`,
      `post ${join(dev.target, 'fw-v1')} False post-install False prev=${join(dev.target, 'failsafe')}`,
    ]);
    const src = (await snapshotTree(join(dev.dir, 'build', '1', 'fw-v1'))).filter((x) => x.path !== '.');
    const got = (await snapshotTree(r1.path)).filter((x) => x.path !== '.fussy-manifest.json' && x.path !== '.');
    assert.deepEqual(got, src, 'installed tree equals the packed one (content, modes, mtimes, links)');

    const v2 = await packTree('fw-v2', firmware({ extra: [{ path: 'etc/app/app.conf', content: 'level = 4\n', mode: 0o640 }] }).filter((f, i, all) => all.findIndex((g) => g.path === f.path) === i || f.content === 'level = 4\n'));
    const r2 = await installInto(dev, v2);
    assert.equal(await current(), 'fw-v2');
    const ino = async (rel: string, rel2: string) => [(await lstat(join(dev.target, rel))).ino, (await lstat(join(dev.target, rel2))).ino];
    const [a, b] = await ino('fw-v1/share/blob.bin', 'fw-v2/share/blob.bin');
    assert.equal(a, b, 'unchanged file is a hard link to the older release');
    const [c, d] = await ino('fw-v1/etc/app/app.conf', 'fw-v2/etc/app/app.conf');
    assert.notEqual(c, d);
    assert.equal(await readFile(join(dev.target, 'fw-v2/etc/app/app.conf'), 'utf8'), 'level = 4\n');
    assert.ok(r2.deduplicatedBytes > 300_000 && r2.writtenBytes < 1000, `written ${r2.writtenBytes}, shared ${r2.deduplicatedBytes}`);
    assert.equal(await readlink(join(dev.target, 'fw-v2/lib/libfoo.so')), 'libfoo.so.1', 'symlink chains install (node-tar >= 7.5.8 would skip them)');
  });

  it('installing the same package twice gives a -1 release', async function () {
    const v1 = await packTree('fw-twice', firmware());
    await installInto(dev, v1);
    const r = await installInto(dev, v1);
    assert.equal(r.release, 'fw-twice-1');
    assert.equal(await current(), 'fw-twice-1');
    assert.equal(r.writtenBytes, 0, 'everything is shared with the first copy');
  });

  it('a failing pre-install removes the new release and re-enables the previous one in recovery mode', async function () {
    await installInto(dev, await packTree('fw-good', firmware()));
    const before = await targetState(dev.target);
    await writeFile(dev.hookLog, '');
    const bad = await packTree('fw-bad-pre', firmware({ pre: 3 }));
    const events: Parameters<typeof installInto>[3] = [];
    await assert.rejects(installInto(dev, bad, {}, events), (err: unknown) => {
      assert.ok(err instanceof FussyError);
      assert.equal(err.code, 'INSTALL_FAILED_RECOVERED');
      assert.equal(err.exitCode, 3);
      assert.match(err.message, /failed at pre-install: pre-install hook .* exited 3; fw-bad-pre was removed, and fw-good is current again/);
      return true;
    });
    assert.equal(await current(), 'fw-good');
    assert.equal(existsSync(join(dev.target, 'fw-bad-pre')), false);
    assert.deepEqual(await hookLog(), [
      `pre ${join(dev.target, 'fw-bad-pre')} False pre-install False prev=${join(dev.target, 'fw-good')}`,
      `pre ${join(dev.target, 'fw-good')} True pre-install True prev=${join(dev.target, 'fw-good')}`,
      `post ${join(dev.target, 'fw-good')} True post-install True prev=${join(dev.target, 'fw-good')}`,
    ]);
    assert.ok(events.some((e) => e.type === 'hook' && e.line === 'pre says hello'), 'hook output is reported line by line');
    assert.deepEqual((await targetState(dev.target)).filter((x) => !x.path.startsWith('fw-good') || true).length, before.length);
  });

  it('a failing post-install keeps the new release for inspection and switches back', async function () {
    await installInto(dev, await packTree('fw-good', firmware()));
    await writeFile(dev.hookLog, '');
    await assert.rejects(installInto(dev, await packTree('fw-bad-post', firmware({ post: 1 }))), (err: unknown) => {
      assert.ok(err instanceof FussyError && err.code === 'INSTALL_FAILED_RECOVERED', String(err));
      assert.match(err.message, /failed at post-install: .*fw-bad-post is kept for inspection, and fw-good is current again/);
      return true;
    });
    assert.equal(await current(), 'fw-good');
    assert.ok(existsSync(join(dev.target, 'fw-bad-post')));
    const log = await hookLog();
    assert.deepEqual(log.map((l) => l.split(' ').slice(0, 3).join(' ')), [
      `pre ${join(dev.target, 'fw-bad-post')} False`,
      `post ${join(dev.target, 'fw-bad-post')} False`,
      `pre ${join(dev.target, 'fw-good')} True`,
      `post ${join(dev.target, 'fw-good')} True`,
    ]);
  });

  it('falls back to failsafe when there is no previous release, and exits 4 when recovery fails too', async function () {
    await assert.rejects(installInto(dev, await packTree('fw-first-bad', firmware({ pre: 1 }))), /fw-first-bad was removed, and failsafe is current again/);
    assert.equal(await current(), 'failsafe');
    // Recovery that fails: the previous release's own post-install fails in recovery mode too.
    await installInto(dev, await packTree('fw-fragile', firmware()));
    await writeFile(join(dev.target, 'fw-fragile', '.post-install'), '#!/bin/sh\n[ "$2" = True ] && exit 9\nexit 0\n');
    await assert.rejects(installInto(dev, await packTree('fw-broken', firmware({ post: 1 }))), (err: unknown) => {
      assert.ok(err instanceof FussyError);
      assert.equal(err.code, 'INSTALL_FAILED_UNRECOVERED');
      assert.equal(err.exitCode, 4);
      assert.match(err.message, /Recovery of fw-fragile also failed \(recovery post-install: .*exited 9\); current -> fw-fragile/);
      return true;
    });
  });

  it('kills a hook that outlives --hook-timeout, with its whole process group', async function () {
    await installInto(dev, await packTree('fw-good', firmware()));
    const pidFile = join(dev.dir, 'child.pid');
    const slow = `#!/bin/sh\nsleep 300 &\necho $! > ${pidFile}\nwait\n`;
    await assert.rejects(installInto(dev, await packTree('fw-slow', [...firmware().filter((f) => f.path !== '.pre-install'), { path: '.pre-install', content: slow, mode: 0o755 }]), { hookTimeoutMs: 1500 }), /timed out after 1.5 s \(process group killed\)/);
    const child = Number(await readFile(pidFile, 'utf8'));
    // Gone, or a zombie waiting for init to reap it: either way no longer running. A SIGKILL is
    // delivered when the process next runs: on a loaded machine that may take a moment.
    const stateOf = (): Promise<string> => readFile(`/proc/${child}/stat`, 'utf8').then((s) => s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3), () => 'gone');
    let state = await stateOf();
    for (const end = Date.now() + 10_000; state !== 'gone' && state !== 'Z' && Date.now() < end; state = await stateOf()) await new Promise((r) => setTimeout(r, 20));
    assert.ok(state === 'gone' || state === 'Z', `the hook's background child was killed too (state ${state})`);
    assert.equal(await current(), 'fw-good');
  });

  it('refuses a target whose current is a directory while failsafe exists (exit 40), changing nothing', async function () {
    const fresh = await makeDevice(await makeTmp());
    await writeTree(join(fresh.target, 'failsafe'), [{ path: 'x', content: 'f' }]);
    const before = await targetState(fresh.target);
    const pkg = await packTree('fw-x', firmware());
    await assert.rejects(installInto(fresh, pkg), (err: unknown) => err instanceof FussyError && err.exitCode === 40 && /current is a directory, not a link, and .*failsafe already exists/.test(err.message));
    assert.deepEqual(await targetState(fresh.target), before);
  });

  it('a second install while one runs exits 75 naming the holder; a dead holder\'s lock is taken over', async function () {
    const pkg = await packTree('fw-lock', firmware());
    const { acquireLock } = await import('../../src/lock/pid-lock.js');
    const held = await acquireLock(join(dev.target, '.fussy', 'lock'), 'install other.tar.gz.gpg');
    await assert.rejects(installInto(dev, pkg), (err: unknown) => err instanceof FussyError && err.exitCode === 75 && new RegExp(`held by pid ${process.pid} \\(install other.tar.gz.gpg`).test(err.message));
    await held.release();
    await writeFile(join(dev.target, '.fussy', 'lock'), JSON.stringify({ pid: 999999, start: '1', what: 'install crashed.tar.gz.gpg', since: '' }));
    const r = await installInto(dev, pkg);
    assert.equal(r.release, 'fw-lock');
  });

  it('--wait queues behind a running install instead of exiting 75', async function () {
    const pkg = await packTree('fw-wait', firmware());
    const { acquireLock } = await import('../../src/lock/pid-lock.js');
    const held = await acquireLock(join(dev.target, '.fussy', 'lock'), 'install slow.tar.gz.gpg');
    let finished = false;
    const waiting = installInto(dev, pkg, { wait: true }).then((r) => {
      finished = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(finished, false, 'it waited while the lock was held');
    await held.release();
    assert.equal((await waiting).release, 'fw-wait');
  });

  it('does not link a file whose older copy was edited in place, nor one with equal size and mtime but other content', async function () {
    const files = firmware({ extra: [{ path: 'etc/app/state', content: 'AAAA' }] });
    const r1 = await installInto(dev, await packTree('fw-a', files));
    await appendFile(join(r1.path, 'lib', 'libfoo.so.1.2'), 'edited by a hook');
    const r2 = await installInto(dev, await packTree('fw-b', files.map((f) => (f.path === 'etc/app/state' ? { ...f, content: 'BBBB' } : f))));
    const same = async (rel: string) => (await lstat(join(r1.path, rel))).ino === (await lstat(join(r2.path, rel))).ino;
    assert.equal(await same('lib/libfoo.so.1.2'), false, 'edited file not shared');
    assert.equal(await same('etc/app/state'), false, 'same size and mtime, other content: not shared (rsync --link-dest would link it)');
    assert.equal(await readFile(join(r2.path, 'etc/app/state'), 'utf8'), 'BBBB');
    assert.equal(await same('share/blob.bin'), true);
  });

  it('does not link a file its own post-install hook rewrote in place (same size), even with the hash cache', async function () {
    const editing = `#!/bin/sh\nprintf XXXX > "$1/etc/app/state"\n`;
    const files = [...firmware({ extra: [{ path: 'etc/app/state', content: 'AAAA' }] }).filter((f) => f.path !== '.post-install'), { path: '.post-install', content: editing, mode: 0o755 }];
    const r1 = await installInto(dev, await packTree('fw-h1', files));
    assert.equal(await readFile(join(r1.path, 'etc/app/state'), 'utf8'), 'XXXX');
    await new Promise((r) => setTimeout(r, 300)); // past the racy window
    const r2 = await installInto(dev, await packTree('fw-h2', files.map((f) => (f.path === '.post-install' ? { ...f, content: '#!/bin/sh\n' } : f))));
    assert.equal(await readFile(join(r2.path, 'etc/app/state'), 'utf8'), 'AAAA', 'the new release has the packed content');
    assert.notEqual((await lstat(join(r1.path, 'etc/app/state'))).ino, (await lstat(join(r2.path, 'etc/app/state'))).ino);
    assert.equal((await lstat(join(r1.path, 'share/blob.bin'))).ino, (await lstat(join(r2.path, 'share/blob.bin'))).ino, 'untouched files are still shared');
  });

  it('hash-cache-sealed: the files of a release just installed are vouched for at once (sealed before it was reachable), not one its post-install hook rewrote', async function () {
    const editing = `#!/bin/sh\nprintf YYYY > "$1/etc/app/state"\n`;
    const files = [...firmware({ extra: [{ path: 'etc/app/state', content: 'AAAA' }] }).filter((f) => f.path !== '.post-install'), { path: '.post-install', content: editing, mode: 0o755 }];
    const r = await installInto(dev, await packTree('fw-sealed', files));
    const cache = HashCache.load(join(dev.target, '.fussy', 'hash-cache.json'));
    const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
    const blob = files.find((f) => f.path === 'share/blob.bin')!;
    assert.equal(cache.get(await lstat(join(r.path, 'share/blob.bin'))), sha(blob.content ?? ''), 'no wait: the next install need not hash it');
    assert.equal(cache.get(await lstat(join(r.path, 'etc/app/state'))), undefined, 'changed by the hook after the seal');
  });

  it('the space check counts a changed file of the same size as new bytes (not as shared)', async function () {
    const big = (fill: number) => Buffer.alloc(8 * 1024 * 1024, fill);
    const files = (fill: number) => [...firmware(), { path: 'share/big.img', content: big(fill) }];
    const pkg1 = await packTree('fw-s1', files(1));
    const pkg = await packTree('fw-s2', files(2));
    const same = await packTree('fw-s3', files(1));
    // A file system of its own, so that its free space is this test's alone.
    const own = join(dev.dir, '..', 'dev-space');
    await mkdir(own, { recursive: true });
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0755', 'tmpfs', own], { reject: false });
    if (mounted.exitCode !== 0) this.skip(); // needs root (CI runs as root)
    try {
      const d = await deviceBeside(dev, 'dev-space', [pkg1]);
      const { statfs } = await import('node:fs/promises');
      const st = await statfs(d.target);
      const free = st.bavail * st.bsize;
      // no-space-raw-bytes (issue 11): sizes for people in the message, the exact bytes in details.
      const refused = await installInto(d, pkg, { reserveBytes: free - 4 * 1024 * 1024 }).then(() => undefined, (e: unknown) => e);
      assert.ok(refused instanceof FussyError && refused.code === 'NO_SPACE', String(refused));
      assert.match(refused.message, /^fw-s2 needs 8\.\d MiB in .* plus a [\d.]+ MiB reserve; [\d.]+ MiB are free$/);
      assert.doesNotMatch(refused.message, /\d{5}/);
      assert.equal(refused.details?.reserveBytes, free - 4 * 1024 * 1024);
      assert.ok((refused.details?.needBytes as number) >= 8 * 1024 * 1024 && typeof refused.details?.freeBytes === 'number');
      const ok = await installInto(d, same, { reserveBytes: free - 4 * 1024 * 1024 });
      assert.ok(ok.deduplicatedBytes >= 8 * 1024 * 1024, 'unchanged big file is shared, so it fits');
    } finally {
      await execa('umount', ['-l', own]);
    }
  });

  it('does not link files equal in content but different in mode', async function () {
    const files = firmware();
    const r1 = await installInto(dev, await packTree('fw-m1', files));
    const r2 = await installInto(dev, await packTree('fw-m2', files.map((f) => (f.path === 'bin/app' ? { ...f, mode: 0o700 } : f))));
    assert.notEqual((await lstat(join(r1.path, 'bin/app'))).ino, (await lstat(join(r2.path, 'bin/app'))).ino);
    assert.equal((await lstat(join(r2.path, 'bin/app'))).mode & 0o7777, 0o700);
    assert.equal((await lstat(join(r1.path, 'bin/app'))).mode & 0o7777, 0o755, 'the older release is untouched');
  });

  it('as root keeps archive owners and setuid bits; as another user drops setuid/setgid', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const src = await writeTree(join(dev.dir, 'build', 'suid', 'fw-suid'), [{ path: 'bin/su-helper', content: '#!/bin/sh\n', mode: 0o4755 }, { path: 'etc/owned', content: 'x' }]);
    const { chown } = await import('node:fs/promises');
    await chown(join(src, 'etc/owned'), 1234, 2345);
    const pkg = (await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'suid.gpg') })).path;
    const r = await installInto(dev, pkg);
    assert.equal((await lstat(join(r.path, 'bin/su-helper'))).mode & 0o7777, 0o4755);
    const st = await lstat(join(r.path, 'etc/owned'));
    assert.deepEqual([st.uid, st.gid], [1234, 2345]);
    const r2 = await installInto(dev, pkg, { owner: { asRoot: false, uid: 0, gid: 0 } });
    assert.equal((await lstat(join(r2.path, 'bin/su-helper'))).mode & 0o7777, 0o755);
    assert.deepEqual([(await lstat(join(r2.path, 'etc/owned'))).uid], [0]);
  });

  it('leaves no staging directory behind after success or refusal', async function () {
    await installInto(dev, await packTree('fw-clean', firmware()));
    await chmod(dev.keyring, 0o755);
    assert.deepEqual((await readdir(join(dev.target, '.fussy'))).filter((x) => x.startsWith('staging-')), []);
  });

  it('a release of many files (created ahead on a worker thread) installs exactly, fresh and as an update', async function () {
    const bulk = (tag: string, changed: (i: number) => boolean): SampleFile[] =>
      Array.from({ length: 300 }, (_, i) => ({ path: `data/d${i % 7}/f${i}.bin`, content: `${changed(i) ? tag : 'v1'} file ${i}\n`.repeat(1 + (i % 50)), mode: i % 5 === 0 ? 0o600 : 0o644 }));
    const v1 = firmware({ extra: [...bulk('v1', () => false), { path: 'ro/readme', content: 'read only\n' }] });
    const r1 = await installInto(dev, await packTree('fw-many-1', v1));
    const same = async (built: string, installed: string) => {
      const want = (await snapshotTree(built)).filter((x) => x.path !== '.');
      const got = (await snapshotTree(installed)).filter((x) => x.path !== '.' && x.path !== '.fussy-manifest.json');
      assert.deepEqual(got, want);
    };
    await same(join(dev.dir, 'build', String(n), 'fw-many-1'), r1.path);
    const v2 = firmware({ extra: [...bulk('v2', (i) => i % 3 === 0), { path: 'ro/readme', content: 'read only\n' }] });
    const r2 = await installInto(dev, await packTree('fw-many-2', v2));
    await same(join(dev.dir, 'build', String(n), 'fw-many-2'), r2.path);
    const ino = async (r: string, rel: string) => (await lstat(join(r, rel))).ino;
    assert.equal(await ino(r1.path, 'data/d1/f1.bin'), await ino(r2.path, 'data/d1/f1.bin'), 'unchanged: shared');
    assert.notEqual(await ino(r1.path, 'data/d0/f0.bin'), await ino(r2.path, 'data/d0/f0.bin'), 'changed: new copy');
    assert.equal(r2.files, r1.files);
  });

  it('sweeps what an interrupted install left in .fussy, and records the hash cache after a success', async function () {
    const state = join(dev.target, '.fussy');
    await mkdir(join(state, 'staging-1234-1'), { recursive: true });
    await writeFile(join(state, 'staging-1234-1', 'half-written'), 'x');
    await writeFile(join(state, tempName('hash-cache')), '{"version":1,"gr');
    // Every atomic write's temp file (journal, device state, history head) is swept alike.
    for (const p of ['journal', 'state', 'history']) await writeFile(join(state, tempName(p)), '{"cut sh');
    const r = await installInto(dev, await packTree('fw-sweep', firmware()));
    assert.deepEqual((await readdir(state)).filter((x) => x.startsWith('staging-') || isTempName(x)), []);
    const cache = JSON.parse(await readFile(join(state, 'hash-cache.json'), 'utf8')) as { version: number; groups: Array<{ files: Record<string, { h: string }> }> };
    assert.equal(cache.version, 3);
    const recorded = new Set(cache.groups.flatMap((g) => Object.values(g.files).map((f) => f.h)));
    const blob = (await readFile(join(r.path, 'share', 'blob.bin')));
    assert.ok(recorded.has(createHash('sha256').update(blob).digest('hex')), 'the new release\'s files are in the cache');
  });
});
