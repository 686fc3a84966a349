import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Manifest } from '../../src/archive/manifest.js';
import { recover } from '../../src/index.js';
import { pack } from '../../src/pack/pack.js';
import { installInto, makeDevice, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { assertRefused } from '../security/helpers.js';
import { snapshotTree, writeTree, type SampleFile, type TreeNode } from '../helpers/tree.js';

const FUSSY = fileURLToPath(new URL('../../../bin/fussy.js', import.meta.url));
const HOOK = '#!/bin/sh\necho "$(basename "$0") $(basename "$1") $2" >> "$FUSSY_HOOK_LOG"\n';

/** A firmware tree of `n` files (some 64 KiB, most small), `changed` of them different in `next`. */
function firmware(version: string, n: number, changed: number): SampleFile[] {
  const files: SampleFile[] = [
    { path: '.pre-install', mode: 0o755, content: HOOK },
    { path: '.post-install', mode: 0o755, content: HOOK },
    { path: 'etc/version', content: `${version}\n` },
    { path: 'lib/libx.so', symlink: 'libx.so.1' },
    { path: 'lib/libx.so.1', content: 'library\n'.repeat(4000) },
  ];
  for (let i = 0; i < n; i++) {
    const v = i < changed ? version : 'same';
    const body = createHash('sha256').update(`${v}-${i}`).digest('hex');
    files.push({ path: `data/d${i % 7}/f${i}.bin`, content: body.repeat(i % 10 === 0 ? 1000 : 40) });
  }
  return files;
}

interface Run {
  exitCode?: number;
  signal?: string;
  stdout: string;
  stderr: string;
}

async function fussy(dev: Device, args: string[], failpoint?: string): Promise<Run> {
  const r = await execa(process.execPath, [FUSSY, ...args], {
    env: { FUSSY_HOOK_LOG: dev.hookLog, ...(failpoint === undefined ? {} : { FUSSY_FAILPOINT: failpoint }) },
    cwd: dev.dir,
    reject: false,
    stdin: 'ignore',
  });
  return { exitCode: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `fussy recover` through the library, in this process: what the CLI's --json prints. */
function recoverInProcess(dev: Device): Promise<{ message: string; current?: string }> {
  return recover({ target: dev.target, env: { PATH: process.env.PATH, FUSSY_HOOK_LOG: dev.hookLog }, cwd: dev.dir });
}

/**
 * Cases that each work on a target of their own, run side by side (at most `width` at once) from
 * a `before` hook: most of a case is waiting, for the killed child's start, hooks and fsync. Each
 * case is still its own `it`, which reports that case's own failure.
 */
function sideBySide(width: number): (title: string, fn: () => Promise<void>) => void {
  const cases: Array<{ fn: () => Promise<void>; settle: (e: unknown) => void; result: Promise<unknown> }> = [];
  before(function () {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let c = cases[next++]; c !== undefined; c = cases[next++]) c.settle(await c.fn().then(() => undefined, (e: unknown) => e ?? new Error('rejected')));
    };
    for (let i = 0; i < width; i++) void worker();
  });
  return (title, fn) => {
    let settle!: (e: unknown) => void;
    const result = new Promise<unknown>((r) => (settle = r));
    cases.push({ fn, settle, result });
    it(title, async function () {
      const err = await result;
      if (err !== undefined) throw err;
    });
  };
}

/** Problems of an installed release against its own manifest (content, mode, type, link target). */
async function checkManifest(dir: string): Promise<string[]> {
  const m = JSON.parse(await readFile(join(dir, '.fussy-manifest.json'), 'utf8')) as Manifest;
  const problems: string[] = [];
  for (const e of m.entries) {
    const p = join(dir, e.path);
    const st = await lstat(p).catch(() => undefined);
    if (st === undefined) {
      problems.push(`${e.path}: missing`);
    } else if (e.type === 'file') {
      const sha = createHash('sha256').update(await readFile(p)).digest('hex');
      if (!st.isFile() || sha !== e.sha256 || (st.mode & 0o7777) !== e.mode) problems.push(`${e.path}: differs`);
    } else if (e.type === 'symlink' && (!st.isSymbolicLink() || (await readlink(p)) !== e.target)) {
      problems.push(`${e.path}: link differs`);
    } else if (e.type === 'directory' && !st.isDirectory()) {
      problems.push(`${e.path}: not a directory`);
    }
  }
  return problems;
}

describe('crash safety: SIGKILL at every step of an install, then recovery', function () {
  this.timeout(300_000);
  let tmp: string;
  let pkgA: string;
  let pkgB: string;
  /** B as a delta package against A: most of its files are left to the device. */
  let pkgBDelta: string;
  let dev: Device;

  before(async function () {
    tmp = await makeTmp();
    dev = await makeDevice(join(tmp, 'keys'), { factory: false });
    const a = await writeTree(join(tmp, 'build', 'firmware-a'), firmware('a', 90, 0));
    const b = await writeTree(join(tmp, 'build', 'firmware-b'), firmware('b', 90, 70));
    pkgA = (await pack({ source: a, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'a.tar.gz.gpg') })).path;
    pkgB = (await pack({ source: b, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'b.tar.gz.gpg') })).path;
    pkgBDelta = (await pack({ source: b, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, 'b-delta.tar.gz.gpg'), deltaFrom: [pkgA] })).path;
  });

  /**
   * A target with failsafe (factory) and release A current, on the shared keyring; snapshots of
   * both. Installed once, then copied for each case (cp -a keeps modes, times and the hard links
   * between releases; the copies' new inodes only make the hash cache miss).
   */
  let template: Promise<string> | undefined;
  async function deviceWithA(name: string): Promise<{ dev: Device; failsafe: TreeNode[]; a: TreeNode[] }> {
    template ??= (async () => {
      const dir = join(tmp, 'template-a');
      const t: Device = { ...dev, dir, target: join(dir, 'firmware'), hookLog: join(dir, 'hooks.log') };
      await writeTree(join(t.target, 'current'), [{ path: 'etc/version', content: 'factory\n' }]);
      await installInto(t, pkgA);
      return dir;
    })();
    const dir = join(tmp, name);
    await execa('cp', ['-a', await template, dir]);
    const d: Device = { ...dev, dir, target: join(dir, 'firmware'), hookLog: join(dir, 'hooks.log') };
    return { dev: d, failsafe: await snapshotTree(join(d.target, 'failsafe')), a: await snapshotTree(join(d.target, 'firmware-a')) };
  }

  async function assertInvariants(d: { dev: Device; failsafe: TreeNode[]; a: TreeNode[] }, expectCurrent: string): Promise<void> {
    const t = d.dev.target;
    assert.equal(await readlink(join(t, 'current')), expectCurrent);
    assert.ok((await stat(join(t, 'current'))).isDirectory(), 'current resolves to a directory');
    assert.deepEqual(await checkManifest(join(t, expectCurrent)), [], `${expectCurrent} matches its manifest`);
    assert.deepEqual(await snapshotTree(join(t, 'failsafe')), d.failsafe, 'failsafe is bit-identical');
    assert.deepEqual(await snapshotTree(join(t, 'firmware-a')), d.a, 'the retained release is bit-identical');
    const state = await readdir(join(t, '.fussy'));
    assert.deepEqual(state.filter((n) => n.startsWith('staging-') || n.startsWith('trash-') || n.startsWith('journal')), [], 'no staging, trash or journal is left');
    const releases = (await readdir(t)).filter((n) => !n.startsWith('.')).sort();
    assert.deepEqual(releases, expectCurrent === 'firmware-b' ? ['current', 'failsafe', 'firmware-a', 'firmware-b'] : ['current', 'failsafe', 'firmware-a']);
  }

  const cases: Array<{ point: string; current: string; outcome: RegExp; recoveryHooks: boolean }> = [
    { point: 'unpack-bytes:1', current: 'firmware-a', outcome: /removed staging-/, recoveryHooks: false },
    { point: 'unpack-bytes:200000', current: 'firmware-a', outcome: /removed staging-/, recoveryHooks: false },
    { point: 'unpack-bytes:450000', current: 'firmware-a', outcome: /removed staging-/, recoveryHooks: false },
    { point: 'after-unpack', current: 'firmware-a', outcome: /removed staging-/, recoveryHooks: false },
    { point: 'after-commit-journal', current: 'firmware-a', outcome: /rolled back .*"commit"/, recoveryHooks: false },
    { point: 'after-rename', current: 'firmware-a', outcome: /rolled back .*"commit".*firmware-b was removed/, recoveryHooks: false },
    { point: 'before-pre-install', current: 'firmware-a', outcome: /rolled back .*"pre-install"/, recoveryHooks: true },
    { point: 'after-pre-install', current: 'firmware-a', outcome: /rolled back .*"pre-install"/, recoveryHooks: true },
    { point: 'after-switch', current: 'firmware-b', outcome: /rolled forward .*"pre-install"/, recoveryHooks: false },
    { point: 'after-post-install', current: 'firmware-b', outcome: /rolled forward .*"switched"/, recoveryHooks: false },
  ];
  // Two at a time: the killed install and the hooks run in child processes, the rest waits on fsync.
  const concurrently = sideBySide(2);
  cases.forEach((c, i) => {
    // A few cases go through the CLI all the way (fussy recover --json, fussy install); the others
    // recover and install again through the library in this process: the same code, one process
    // fewer each time. The crash itself is always a real SIGKILL of a separate `fussy install`.
    const cli = i % 4 === 0;
    concurrently(`killed at ${c.point}: ${cli ? 'fussy recover' : 'recovery'} ${c.current === 'firmware-b' ? 'rolls forward' : 'rolls back'}, and nothing else changed`, async () => {
      const d = await deviceWithA(`dev-${c.point.replace(/:/g, '-')}`);
      const killed = await fussy(d.dev, ['install', pkgB, '-k', d.dev.keyring, '-t', d.dev.target], c.point);
      assert.equal(killed.signal, 'SIGKILL', `the install should die at ${c.point}: ${killed.stderr}`);
      const logBefore = await readFile(d.dev.hookLog, 'utf8');
      let out: { message: string; current?: string };
      if (cli) {
        const r = await fussy(d.dev, ['recover', '-t', d.dev.target, '--json']);
        assert.equal(r.exitCode, 0, r.stderr);
        out = JSON.parse(r.stdout) as { message: string; current: string };
      } else {
        out = await recoverInProcess(d.dev);
      }
      assert.match(out.message, c.outcome);
      assert.equal(out.current, c.current);
      await assertInvariants(d, c.current);
      const hooks = (await readFile(d.dev.hookLog, 'utf8')).slice(logBefore.length);
      if (c.recoveryHooks) assert.equal(hooks, '.pre-install firmware-a True\n.post-install firmware-a True\n');
      else if (c.current === 'firmware-b') assert.equal(hooks, '.post-install firmware-b False\n');
      else assert.equal(hooks, '');
      // The device works afterwards: a second recover has nothing to do, and B installs.
      if (cli) assert.match((await fussy(d.dev, ['recover', '-t', d.dev.target])).stderr, /nothing to recover/);
      else assert.equal((await recoverInProcess(d.dev)).message, 'nothing to recover');
      if (c.current === 'firmware-a') {
        if (cli) {
          const again = await fussy(d.dev, ['install', pkgB, '-k', d.dev.keyring, '-t', d.dev.target, '-q']);
          assert.equal(again.exitCode, 0, again.stderr);
        } else {
          await installInto(d.dev, pkgB);
        }
        assert.equal(await readlink(join(d.dev.target, 'current')), 'firmware-b');
      }
    });
  });

  // A delta install is the same transaction: killed anywhere, it recovers as a full one does.
  for (const c of cases.filter((x) => ['unpack-bytes:1', 'after-unpack', 'after-rename', 'after-pre-install', 'after-switch'].includes(x.point))) {
    concurrently(`delta package killed at ${c.point}: recovery ${c.current === 'firmware-b' ? 'rolls forward' : 'rolls back'}, and nothing else changed`, async () => {
      const d = await deviceWithA(`delta-${c.point.replace(/:/g, '-')}`);
      const killed = await fussy(d.dev, ['install', pkgBDelta, '-k', d.dev.keyring, '-t', d.dev.target], c.point);
      assert.equal(killed.signal, 'SIGKILL', `the install should die at ${c.point}: ${killed.stderr}`);
      const out = await recoverInProcess(d.dev);
      assert.match(out.message, c.outcome);
      assert.equal(out.current, c.current);
      await assertInvariants(d, c.current);
      if (c.current === 'firmware-a') await installInto(d.dev, pkgBDelta);
      assert.equal(await readlink(join(d.dev.target, 'current')), 'firmware-b');
      assert.deepEqual(await checkManifest(join(d.dev.target, 'firmware-b')), []);
    });
  }

  concurrently('killed while the factory current dir becomes failsafe: recovery links current -> failsafe again', async () => {
    const dir = join(tmp, 'dev-factory');
    const d: Device = { ...dev, dir, target: join(dir, 'firmware'), hookLog: join(dir, 'hooks.log') };
    await writeTree(join(d.target, 'current'), [{ path: 'etc/version', content: 'factory\n' }]);
    const factory = await snapshotTree(join(d.target, 'current'));
    assert.equal((await fussy(d, ['install', pkgB, '-k', d.keyring, '-t', d.target], 'ensure-current-renamed')).signal, 'SIGKILL');
    await assert.rejects(lstat(join(d.target, 'current')), /ENOENT/, 'the crash left no current at all');
    const r = await fussy(d, ['recover', '-t', d.target, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match((JSON.parse(r.stdout) as { message: string }).message, /rolled back .*"commit"\): current -> failsafe/);
    assert.equal(await readlink(join(d.target, 'current')), 'failsafe');
    assert.deepEqual(await snapshotTree(join(d.target, 'failsafe')), factory);
    assert.deepEqual((await readdir(d.target)).sort(), ['.fussy', 'current', 'failsafe']);
  });

  it('ENOSPC in the middle of the unpack (a tmpfs out of inodes): exit 40, nothing half-installed, current untouched', async function () {
    const dir = join(tmp, 'dev-enospc');
    await mkdir(dir, { recursive: true });
    // The byte-based space check passes; the file system runs out of inodes after ~40 files.
    const mounted = await execa('mount', ['-t', 'tmpfs', '-o', 'size=64m,nr_inodes=48', 'tmpfs', dir], { reject: false });
    if (mounted.exitCode !== 0) this.skip(); // needs root (CI runs as root)
    try {
      const d: Device = { ...dev, dir, target: join(dir, 'firmware'), hookLog: join(dir, 'hooks.log') };
      await writeTree(join(d.target, 'current'), [{ path: 'etc/version', content: 'factory\n' }]);
      const before = await snapshotTree(d.target);
      const r = await fussy(d, ['install', pkgB, '-k', d.keyring, '-t', d.target]);
      assert.equal(r.exitCode, 40, r.stderr);
      assert.match(r.stderr, /disk filled up while writing .*(data|lib|etc)\//);
      // The target dir itself changes (its .fussy/ was created); everything in it must not.
      const outside = (nodes: TreeNode[]) => nodes.filter((n) => n.path !== '.' && n.path !== '.fussy' && !n.path.startsWith('.fussy/'));
      assert.deepEqual(outside(await snapshotTree(d.target)), outside(before), 'current is still the factory directory, nothing else appeared');
      assert.deepEqual((await readdir(join(d.target, '.fussy'))).filter((n) => n.startsWith('staging-') || n.startsWith('journal')), []);
    } finally {
      await execa('umount', [dir], { reject: false });
    }
  });

  concurrently('the next install recovers first: killed after the switch, then installed again', async () => {
    const d = await deviceWithA('dev-next-install');
    assert.equal((await fussy(d.dev, ['install', pkgB, '-k', d.dev.keyring, '-t', d.dev.target], 'after-switch')).signal, 'SIGKILL');
    const r = await fussy(d.dev, ['install', pkgB, '-k', d.dev.keyring, '-t', d.dev.target]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /rolling forward the interrupted install of firmware-b/);
    assert.equal(r.stdout.trim().split('\n').pop(), join(d.dev.target, 'firmware-b-1'));
    assert.deepEqual(await checkManifest(join(d.dev.target, 'firmware-b')), []);
  });

  concurrently('a crash during the recovery itself is recovered by the next recovery', async () => {
    const d = await deviceWithA('dev-crash-in-recovery');
    assert.equal((await fussy(d.dev, ['install', pkgB, '-k', d.dev.keyring, '-t', d.dev.target], 'after-pre-install')).signal, 'SIGKILL');
    for (const point of ['recovery-started', 'recovery-after-pre-install']) {
      assert.equal((await fussy(d.dev, ['recover', '-t', d.dev.target], point)).signal, 'SIGKILL', point);
    }
    const r = await fussy(d.dev, ['recover', '-t', d.dev.target, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match((JSON.parse(r.stdout) as { message: string }).message, /rolled back .*"recovering"/);
    await assertInvariants(d, 'firmware-a');
  });

  concurrently('damaged-journal and damaged-state: an unreadable .fussy/journal.json or state.json stops the install (exit 40) naming the file, changing nothing', async () => {
    for (const [file, code, why] of [['journal.json', 'JOURNAL_UNREADABLE', /the transaction journal .*journal\.json is not JSON/], ['state.json', 'STATE_UNREADABLE', /state\.json is unreadable/]] as const) {
      const d = await deviceWithA(`dev-damaged-${file}`);
      await writeFile(join(d.dev.target, '.fussy', file), '{"format":"fussy-jour');
      await assertRefused(d.dev, pkgB, code, why);
      assert.equal(await readlink(join(d.dev.target, 'current')), 'firmware-a');
    }
  });
});
