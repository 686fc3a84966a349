import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, readlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MAX_LINE, readMessages } from '../../src/daemon/install-messages.js';
import { UploadStore } from '../../src/daemon/uploads.js';
import { runInstall, type InstallOutcome } from '../../src/daemon/installer.js';
import { pack, type FussyEvent } from '../../src/index.js';
import { deviceBeside, installInto, makeDevice, rawTar, signPayload, targetState, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

/** A release whose hooks print where they run and what they were given. */
function release(name: string, post = ''): SampleFile[] {
  return [
    { path: 'etc/version', content: `${name}\n` },
    { path: '.pre-install', content: '#!/bin/sh\necho "pwd=$(pwd)"\nenv | sed "s/^/env:/"\n', mode: 0o755 },
    { path: '.post-install', content: `#!/bin/sh\n${post}echo post-done\n`, mode: 0o755 },
  ];
}

async function waitFor(file: string): Promise<void> {
  for (const until = Date.now() + 30_000; !existsSync(file); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > until) throw new Error(`${file} did not appear`);
  }
}

const failure = (o: InstallOutcome) => {
  assert.equal(o.ok, false, JSON.stringify(o));
  return (o as Extract<InstallOutcome, { ok: false }>).error;
};

describe('daemon installer: fussy install in a child node', function () {
  let dev: Device;
  let tmp: string;
  const pkgs: Record<string, string> = {};

  before(async function () {
    tmp = await makeTmp('fussy-installer-');
    dev = await makeDevice(join(tmp, 'dev'));
    for (const n of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) {
      const src = await writeTree(join(tmp, 'build', n), release(n, n === 'r4' ? 'sleep 0.5\n' : ''));
      pkgs[n] = (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path;
    }
  });

  const base = () => ({ keyring: dev.keyring, target: dev.target });

  it('installs a good package: ok with the library\'s result, events streamed before the result, hooks in / with a minimal environment', async function () {
    process.env.FUSSY_TEST_SECRET = 'daemon-secret';
    const events: FussyEvent[] = [];
    let eventsAtResult = -1;
    const o = await runInstall({ ...base(), package: pkgs.r1 as string, env: { FUSSY_HOOK_NOTE: 'given' }, onEvent: (e) => events.push(e) }).then((r) => {
      eventsAtResult = events.length;
      return r;
    });
    delete process.env.FUSSY_TEST_SECRET;
    assert.ok(o.ok, JSON.stringify(o));
    assert.equal(await readlink(join(dev.target, 'current')), o.result.release);
    const direct = await installInto(await deviceBeside(dev, 'beside'), pkgs.r1 as string);
    const asJson = JSON.parse(JSON.stringify(direct)) as object; // what --json prints: no undefined members
    assert.deepEqual(Object.keys(o.result).sort(), Object.keys(asJson).sort(), 'the result of the library\'s install()');
    assert.equal(o.result.files, direct.files);
    assert.equal(eventsAtResult, events.length);
    const phases = events.flatMap((e) => (e.type === 'phase' ? [e.phase] : []));
    assert.deepEqual(phases.filter((p) => p === 'lock' || p === 'activate'), ['lock', 'activate']);
    assert.ok(events.some((e) => e.type === 'switch' && e.release === o.result.release));
    const hook = events.flatMap((e) => (e.type === 'hook' && e.phase === 'pre-install' ? [e.line] : []));
    assert.ok(hook.includes('pwd=/'), hook.join('\n'));
    assert.ok(hook.includes('env:FUSSY_HOOK_NOTE=given'), hook.join('\n'));
    assert.ok(hook.includes('env:LANG=C.UTF-8'), hook.join('\n'));
    assert.ok(!hook.some((l) => l.includes('daemon-secret')), 'the daemon\'s environment reached a hook');
  });

  it('install-child-stranger-signed: not ok, exit 20 (BAD_SIGNATURE), the target unchanged', async function () {
    const stranger = await makeDevice(join(tmp, 'stranger'));
    const src = await writeTree(join(tmp, 'build', 'evil'), release('evil'));
    const pkg = (await pack({ source: src, tmpDir: tmp, signingKeyFiles: [stranger.signingKeyFile], output: join(tmp, 'evil.gpg') })).path;
    const before = await targetState(dev.target);
    const e = failure(await runInstall({ ...base(), package: pkg }));
    assert.deepEqual([e.code, e.exitCode], ['BAD_SIGNATURE', 20]);
    assert.ok(e.hint !== undefined && e.message.length > 0);
    assert.deepEqual(await targetState(dev.target), before);
  });

  it('install-child-path-traversal: a signed package with ../ is not ok, exit 21 (UNSAFE_PATH), the target unchanged', async function () {
    const pkg = await signPayload(join(tmp, 'dotdot.gpg'), rawTar([{ path: 'rel/', type: 'Directory' }, { path: 'rel/../../escape', data: 'x' }]), { signingKeys: [dev.signingKey] });
    const before = await targetState(dev.target);
    const e = failure(await runInstall({ ...base(), package: pkg }));
    assert.equal(e.exitCode, 21, JSON.stringify(e));
    assert.deepEqual(await targetState(dev.target), before);
    assert.ok(!existsSync(join(dev.target, '..', 'escape')));
  });

  it('install-child-corrupted-package: a byte flipped in a signed package is not ok (exit 20 or 21), the target unchanged', async function () {
    const bytes = await readFile(pkgs.r1 as string);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = (bytes[at] as number) ^ 0x55;
    const pkg = join(tmp, 'flipped.gpg');
    await writeFile(pkg, bytes);
    const before = await targetState(dev.target);
    const e = failure(await runInstall({ ...base(), package: pkg }));
    assert.ok([20, 21].includes(e.exitCode), JSON.stringify(e));
    assert.deepEqual(await targetState(dev.target), before);
  });

  it('an upload, checked and installed: the package goes from the request stream to disk to the child, never through the daemon whole', async function () {
    const store = UploadStore.open(join(tmp, 'state'), { maxBytes: 64 * 1024 * 1024, maxAgeMs: 86_400_000 });
    const bytes = await readFile(pkgs.r2 as string);
    const id = createHash('sha256').update(bytes).digest('hex');
    await store.begin(id, bytes.length);
    await store.append(id, 0, createReadStream(pkgs.r2 as string, { highWaterMark: 4096 }));
    const o = await runInstall({ ...base(), package: await store.complete(id) });
    assert.ok(o.ok, JSON.stringify(o));
    assert.equal(await store.remove(id), true);
    store.close();
  });

  it('the child\'s output is read with a bound: a line over 1 MiB is dropped and counted, the lines after it still read', async function () {
    const events: FussyEvent[] = [];
    const long = Buffer.alloc(MAX_LINE + 10, 0x61);
    const got = await readMessages(Readable.from([Buffer.from('{"event":{"type":"log","message":"a"}}\n'), long, long, Buffer.from('\nnot json\n{"event":{"type":"log","message":"b"}}\n{"result":{"release":"x"}}')]), (e) => events.push(e));
    assert.deepEqual(events, [{ type: 'log', message: 'a' }, { type: 'log', message: 'b' }]);
    assert.deepEqual([got.dropped, got.result?.release], [2, 'x']);
  });

  it('a second install into the same target while one runs is LOCKED (75) at once', async function () {
    const pause = join(tmp, 'pause-lock');
    const first = runInstall({ ...base(), package: pkgs.r2 as string, failpoint: `pause:locked:${pause}` });
    await waitFor(pause);
    // At once: the first holds the lock until the pause file goes, which is only after this answer.
    const e = failure(await runInstall({ ...base(), target: join(dev.target, '.', '..', 'firmware'), package: pkgs.r3 as string }));
    assert.deepEqual([e.code, e.exitCode], ['LOCKED', 75]);
    await unlink(pause);
    assert.ok((await first).ok);
  });

  it('cancelled before the switch: INTERRUPTED (130), nothing changed', async function () {
    const pause = join(tmp, 'pause-cancel');
    const before = await targetState(dev.target);
    const stop = new AbortController();
    const running = runInstall({ ...base(), package: pkgs.r3 as string, signal: stop.signal, failpoint: `pause:locked:${pause}` });
    await waitFor(pause);
    stop.abort();
    await new Promise((r) => setTimeout(r, 200)); // the SIGTERM is pending in the child when it goes on
    await unlink(pause);
    const e = failure(await running);
    assert.deepEqual([e.code, e.exitCode], ['INTERRUPTED', 130]);
    assert.deepEqual(await targetState(dev.target), before);
  });

  it('cancel-while-child-loads: a cancel that comes while the child starts (before its library has loaded) is INTERRUPTED (130), nothing changed; not a child killed unrecorded, nor a cancel lost', async function () {
    const before = await targetState(dev.target);
    const history = async (): Promise<string[]> => (await readFile(join(dev.target, '.fussy', 'history.log'), 'utf8')).trim().split('\n');
    const records = (await history()).length;
    const stop = new AbortController();
    const running = runInstall({ ...base(), package: pkgs.r5 as string, signal: stop.signal });
    stop.abort(); // while the child is being started: before it has a handler for SIGTERM
    const e = failure(await running);
    assert.deepEqual([e.code, e.exitCode], ['INTERRUPTED', 130], e.message);
    assert.deepEqual(await targetState(dev.target), before);
    // Cancelled before it took the lock, it has nothing to record (fussy install does the same);
    // had the lock been taken first, the refusal is the one record.
    const added = (await history()).slice(records);
    assert.ok(added.length === 0 || (added.length === 1 && /"result":"refused".*"INTERRUPTED"/.test(added[0] as string)), added.join('\n'));
  });

  it('cancelled after the switch: the install completes and is never SIGKILLed, however short the grace', async function () {
    const stop = new AbortController();
    const events: FussyEvent[] = [];
    const o = await runInstall({ ...base(), package: pkgs.r4 as string, signal: stop.signal, killAfterMs: 1, onEvent: (e) => {
      events.push(e);
      if (e.type === 'switch') stop.abort();
    } });
    assert.ok(o.ok, JSON.stringify(o));
    assert.ok(events.some((e) => e.type === 'hook' && e.phase === 'post-install' && e.line === 'post-done'), 'the post-install ran to its end');
  });

  it('install-child-sigkilled after the switch: an INTERNAL outcome naming SIGKILL, and the next install recovers and succeeds', async function () {
    const e = failure(await runInstall({ ...base(), package: pkgs.r5 as string, failpoint: 'after-switch' }));
    assert.deepEqual([e.code, e.exitCode], ['INTERNAL', 1]);
    assert.match(e.message, /^the install process \(pid \d+\) was killed by SIGKILL before it reported a result/);
    assert.equal(e.details?.signal, 'SIGKILL');
    const o = await runInstall({ ...base(), package: pkgs.r6 as string });
    assert.ok(o.ok, JSON.stringify(o));
    assert.ok(o.result.recovered !== undefined, 'the next install recovered the interrupted one');
    assert.equal(await readlink(join(dev.target, 'current')), o.result.release);
  });
});
