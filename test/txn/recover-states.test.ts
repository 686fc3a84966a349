import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { readDeviceState } from '../../src/store/device-state.js';
import { readHistory, type HistoryRecord } from '../../src/store/history.js';
import { JOURNAL, readJournal, writeJournal, type JournalFields } from '../../src/txn/journal.js';
import { recover, type Recovery } from '../../src/index.js';
import { useTmp } from '../helpers/tmp.js';
import { snapshotTree, writeTree, type TreeNode } from '../helpers/tree.js';

/** Each hook appends "<hook> <release> <True|False>" to the log, as in crash-safety.test.ts. */
const HOOK = '#!/bin/sh\necho "$(basename "$0") $(basename "$1") $2" >> "$FUSSY_HOOK_LOG"\n';
const FAILING_HOOK = '#!/bin/sh\necho "$(basename "$0") $(basename "$1") $2" >> "$FUSSY_HOOK_LOG"\nexit 1\n';

const release = (version: string, post = HOOK) => [
  { path: '.pre-install', mode: 0o755, content: HOOK },
  { path: '.post-install', mode: 0o755, content: post },
  { path: 'etc/version', content: `${version}\n` },
];

interface Crafted {
  target: string;
  state: string;
  log: string;
  /** Snapshots of the releases that must never be written. */
  failsafe: TreeNode[];
  a: TreeNode[];
}

/**
 * recoverTarget (txn/recover.ts), called through the library's `recover` on states crafted the way a crash at
 * each step leaves them (docs/crash-safety.md, Recovery): a factory `failsafe`, `firmware-a`
 * current, `firmware-b` being installed. Each case checks the layout afterwards, the hooks that
 * ran, and the one history record recovery adds.
 */
describe('recovery of crafted interrupted states (txn/recover.ts)', function () {
  const tmp = useTmp();

  async function craft(o: { b?: boolean; bPost?: string; current?: string } = {}): Promise<Crafted> {
    const target = join(tmp.dir, 'firmware');
    await writeTree(join(target, 'failsafe'), [{ path: 'etc/version', content: 'factory\n' }]);
    await writeTree(join(target, 'firmware-a'), release('a'));
    if (o.b !== false) await writeTree(join(target, 'firmware-b'), release('b', o.bPost));
    await symlink(o.current ?? 'firmware-a', join(target, 'current'));
    await mkdir(join(target, '.fussy'));
    return { target, state: join(target, '.fussy'), log: join(tmp.dir, 'hooks.log'), failsafe: await snapshotTree(join(target, 'failsafe')), a: await snapshotTree(join(target, 'firmware-a')) };
  }

  const journal = (c: Crafted, j: Partial<JournalFields>): Promise<void> =>
    writeJournal(c.state, { action: 'install', id: '4242-1', started: '2026-12-02T00:00:00.000Z', step: 'commit', release: 'firmware-b', created: true, previous: 'firmware-a', ...j });

  const NOW = new Date('2026-12-02T10:00:00.000Z');
  const run = (c: Crafted): Promise<Recovery> => recover({ target: c.target, env: { PATH: process.env.PATH, FUSSY_HOOK_LOG: c.log }, cwd: tmp.dir, hookTimeoutMs: 60_000, now: NOW });
  const hooks = async (c: Crafted): Promise<string> => readFile(c.log, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : Promise.reject(e)));
  const names = async (c: Crafted): Promise<string[]> => (await readdir(c.target)).filter((n) => !n.startsWith('.')).sort();

  /** The whole target; the state dir's own mtime moves with the lock recovery takes and frees, which is not a change. */
  const snapshot = async (c: Crafted): Promise<TreeNode[]> => (await snapshotTree(c.target)).map((n) => (n.path === '.fussy' ? { ...n, mtime: 0 } : n));

  /** The layout afterwards: `current`, the releases, the retained ones bit-identical, no journal, staging or trash. */
  async function assertLayout(c: Crafted, current: string, releases: string[]): Promise<void> {
    assert.equal(await readlink(join(c.target, 'current')), current);
    assert.deepEqual(await names(c), ['current', ...releases].sort());
    assert.deepEqual(await snapshotTree(join(c.target, 'failsafe')), c.failsafe, 'failsafe is untouched');
    assert.deepEqual(await snapshotTree(join(c.target, 'firmware-a')), c.a, 'firmware-a is untouched');
    assert.deepEqual((await readdir(c.state)).filter((n) => n === JOURNAL || n.startsWith('staging-') || n.startsWith('trash-') || n.startsWith('.fussy-tmp-')), []);
    await assert.rejects(lstat(join(c.target, 'current~')), { code: 'ENOENT' });
  }

  /** The history holds exactly one record, recovery's, with these fields. */
  async function assertHistory(c: Crafted, expected: Partial<HistoryRecord>): Promise<void> {
    const h = await readHistory(c.state);
    assert.deepEqual(h.problems, []);
    assert.equal(h.records.length, 1, JSON.stringify(h.records));
    const r = h.records[0] as HistoryRecord;
    assert.deepEqual({ ...r, durationMs: 0, prev: '' }, { time: NOW.toISOString(), action: 'recover', durationMs: 0, prev: '', ...expected });
  }

  it('staging written, not renamed, no journal (killed during the unpack): the staging dir is removed, nothing else changes, no history record', async function () {
    const c = await craft({ b: false });
    await writeTree(join(c.state, 'staging-4242-1', 'firmware-b'), release('b'));
    const r = await run(c);
    assert.equal(r.outcome, 'clean');
    assert.deepEqual(r.removed, ['staging-4242-1']);
    assert.equal(r.current, 'firmware-a');
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
    assert.equal(await hooks(c), '');
    assert.deepEqual((await readHistory(c.state)).records, [], 'nothing had changed: nothing to record');
  });

  it('journal "commit", staging not yet renamed: staging removed, rolled back without hooks', async function () {
    const c = await craft({ b: false });
    await writeTree(join(c.state, 'staging-4242-1'), release('b'));
    await journal(c, { step: 'commit' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    assert.deepEqual(r.removed, ['staging-4242-1']);
    assert.match(r.message, /rolled back the interrupted install of firmware-b \(interrupted at "commit"\): current -> firmware-a; firmware-b was removed/);
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
    assert.equal(await hooks(c), '', 'no hook of the new release had run, so none of the old one runs');
    await assertHistory(c, { result: 'rolled-back', release: 'firmware-b', previous: 'firmware-a' });
  });

  it('journal "commit", staging renamed to firmware-b, current not switched: firmware-b is removed, no hooks', async function () {
    const c = await craft();
    await journal(c, { step: 'commit' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    assert.deepEqual(r.interrupted, { action: 'install', id: '4242-1', release: 'firmware-b', step: 'commit', previous: 'firmware-a' });
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
    assert.equal(await hooks(c), '');
    await assertHistory(c, { result: 'rolled-back', release: 'firmware-b', previous: 'firmware-a' });
  });

  it('journal "commit" on a factory device, killed between the rename to failsafe and the new link: current -> failsafe again', async function () {
    const c = await craft({ b: true });
    await rm(join(c.target, 'current'));
    await rm(join(c.target, 'firmware-a'), { recursive: true });
    await journal(c, { step: 'commit', previous: undefined });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    assert.equal(r.current, 'failsafe');
    assert.equal(await readlink(join(c.target, 'current')), 'failsafe');
    assert.deepEqual(await names(c), ['current', 'failsafe']);
    assert.deepEqual(await snapshotTree(join(c.target, 'failsafe')), c.failsafe);
    assert.equal(await hooks(c), '');
    const h = await readHistory(c.state);
    assert.deepEqual(h.records.map((x) => [x.result, x.release, x.previous]), [['rolled-back', 'firmware-b', undefined]]);
  });

  it('journal "pre-install", current not switched (killed in or after firmware-b\'s pre-install): firmware-a re-enabled with its hooks in recovery mode, firmware-b removed', async function () {
    const c = await craft();
    await journal(c, { step: 'pre-install' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
    assert.equal(await hooks(c), '.pre-install firmware-a True\n.post-install firmware-a True\n');
    await assertHistory(c, { result: 'rolled-back', release: 'firmware-b', previous: 'firmware-a' });
  });

  it('journal "pre-install", current already switched to firmware-b (killed before the journal said so): rolled forward, its post-install runs, its sequence recorded', async function () {
    const c = await craft({ current: 'firmware-b' });
    await journal(c, { step: 'pre-install', sequence: 7 });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-forward');
    assert.match(r.message, /rolled forward the interrupted install of firmware-b \(interrupted at "pre-install"\): current -> firmware-b/);
    await assertLayout(c, 'firmware-b', ['failsafe', 'firmware-a', 'firmware-b']);
    assert.equal(await hooks(c), '.post-install firmware-b False\n');
    assert.equal((await readDeviceState(c.state)).highestSequence, 7);
    await assertHistory(c, { result: 'rolled-forward', release: 'firmware-b', previous: 'firmware-a' });
  });

  it('journal "switched", post-install not done: rolled forward, post-install runs (again), the sequence recorded', async function () {
    const c = await craft({ current: 'firmware-b' });
    await journal(c, { step: 'switched', sequence: 9 });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-forward');
    await assertLayout(c, 'firmware-b', ['failsafe', 'firmware-a', 'firmware-b']);
    assert.equal(await hooks(c), '.post-install firmware-b False\n');
    assert.equal((await readDeviceState(c.state)).highestSequence, 9);
    await assertHistory(c, { result: 'rolled-forward', release: 'firmware-b', previous: 'firmware-a' });
  });

  it('journal "switched" and the rolled-forward post-install fails: firmware-a re-enabled, firmware-b kept for inspection, INSTALL_FAILED_RECOVERED, no sequence recorded', async function () {
    const c = await craft({ current: 'firmware-b', bPost: FAILING_HOOK });
    await journal(c, { step: 'switched', sequence: 9 });
    await assert.rejects(run(c), (e: unknown) => e instanceof FussyError && e.code === 'INSTALL_FAILED_RECOVERED' && /firmware-b is kept for inspection, and firmware-a is current again/.test(e.message));
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a', 'firmware-b']);
    assert.equal(await hooks(c), '.post-install firmware-b False\n.pre-install firmware-a True\n.post-install firmware-a True\n');
    assert.equal((await readDeviceState(c.state)).highestSequence, undefined);
    const h = await readHistory(c.state);
    assert.deepEqual(h.records.map((x) => [x.action, x.result, x.release, x.error?.code]), [['recover', 'failed-recovered', 'firmware-b', 'INSTALL_FAILED_RECOVERED']]);
  });

  for (const current of ['firmware-a', 'firmware-b']) {
    it(`journal "recovering" (a rollback to firmware-a in progress, current -> ${current}): done again, firmware-b removed`, async function () {
      const c = await craft({ current });
      await journal(c, { step: 'recovering', back: 'firmware-a', keepRelease: false });
      const r = await run(c);
      assert.equal(r.outcome, 'rolled-back');
      assert.match(r.message, /interrupted at "recovering"\): current -> firmware-a; firmware-b was removed/);
      await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
      assert.equal(await hooks(c), '.pre-install firmware-a True\n.post-install firmware-a True\n');
      await assertHistory(c, { result: 'rolled-back', release: 'firmware-b', previous: 'firmware-a' });
    });
  }

  it('journal "recovering" with keepRelease (a failed post-install): firmware-b is kept even though current still points at it', async function () {
    const c = await craft({ current: 'firmware-b' });
    await journal(c, { step: 'recovering', back: 'firmware-a', keepRelease: true });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    assert.match(r.message, /firmware-b is kept for inspection/);
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a', 'firmware-b']);
  });

  it('a `fussy rollback` (from firmware-b to firmware-a) interrupted before its switch: firmware-b re-enabled, and firmware-a, which it did not create, is kept', async function () {
    const c = await craft({ current: 'firmware-b' });
    await journal(c, { action: 'rollback', step: 'pre-install', release: 'firmware-a', created: false, previous: 'firmware-b' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    await assertLayout(c, 'firmware-b', ['failsafe', 'firmware-a', 'firmware-b']);
    assert.equal(await hooks(c), '.pre-install firmware-b True\n.post-install firmware-b True\n');
    await assertHistory(c, { result: 'rolled-back', release: 'firmware-a', previous: 'firmware-b' });
  });

  it('a `fussy rollback` interrupted after its switch: rolled forward, only the post-install of firmware-a runs', async function () {
    const c = await craft({ current: 'firmware-a' });
    await journal(c, { action: 'rollback', step: 'switched', release: 'firmware-a', created: false, previous: 'firmware-b' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-forward');
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a', 'firmware-b']);
    assert.equal(await hooks(c), '.post-install firmware-a False\n');
    await assertHistory(c, { result: 'rolled-forward', release: 'firmware-a', previous: 'firmware-b' });
  });

  it('an interrupted clean: the rest of its list is removed, never current, whatever the list says', async function () {
    const c = await craft({ current: 'firmware-b' });
    await journal(c, { action: 'clean', step: 'commit', release: 'firmware-b', created: false, remove: ['firmware-a', 'firmware-b'] });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-forward');
    assert.equal(await readlink(join(c.target, 'current')), 'firmware-b');
    assert.deepEqual(await names(c), ['current', 'failsafe', 'firmware-b']);
    assert.equal(await hooks(c), '');
  });

  it('a journal naming a release that is gone (journal "switched" for firmware-b, no firmware-b, current -> firmware-a): firmware-a re-enabled, nothing else touched', async function () {
    const c = await craft({ b: false });
    await journal(c, { step: 'switched' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
    assert.equal(await hooks(c), '.pre-install firmware-a True\n.post-install firmware-a True\n');
    await assertHistory(c, { result: 'rolled-back', release: 'firmware-b', previous: 'firmware-a' });
  });

  for (const step of ['pre-install', 'switched'] as const) {
    it(`roll-forward-onto-a-missing-release: journal "${step}" for firmware-b, current -> firmware-b, but firmware-b is gone: never rolled forward onto nothing; firmware-a re-enabled`, async function () {
      const c = await craft({ b: false, current: 'firmware-b' });
      await journal(c, { step });
      const r = await run(c);
      assert.equal(r.outcome, 'rolled-back');
      assert.equal(r.current, 'firmware-a');
      await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
      assert.equal(await hooks(c), '.pre-install firmware-a True\n.post-install firmware-a True\n');
      await assertHistory(c, { result: 'rolled-back', release: 'firmware-b', previous: 'firmware-a' });
    });
  }

  it('roll-back-onto-a-missing-release: journal "commit" naming a previous release that is gone, current -> firmware-a (complete): current stays on firmware-a, never switched to the missing one', async function () {
    const c = await craft();
    await journal(c, { step: 'commit', previous: 'firmware-gone' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    assert.equal(r.current, 'firmware-a');
    await assertLayout(c, 'firmware-a', ['failsafe', 'firmware-a']);
    assert.equal(await hooks(c), '');
  });

  it('re-enable-a-missing-release: journal "recovering" back to firmware-a, which is gone: failsafe is re-enabled instead, never a link to nothing', async function () {
    const c = await craft({ current: 'firmware-b' });
    await rm(join(c.target, 'firmware-a'), { recursive: true });
    await journal(c, { step: 'recovering', previous: 'firmware-a', back: 'firmware-a' });
    const r = await run(c);
    assert.equal(r.outcome, 'rolled-back');
    assert.equal(await readlink(join(c.target, 'current')), 'failsafe');
    assert.deepEqual(await names(c), ['current', 'failsafe'], 'firmware-b, which the install created, is removed');
    assert.equal(await hooks(c), '', 'the factory release has no hooks');
    assert.deepEqual(await snapshotTree(join(c.target, 'failsafe')), c.failsafe, 'failsafe is untouched');
  });

  it('nothing-to-go-back-to: journal "switched" for a missing firmware-b and neither firmware-a nor failsafe there: INSTALL_FAILED_UNRECOVERED saying so; current is not pointed at nothing new', async function () {
    const c = await craft({ b: false, current: 'firmware-b' });
    await rm(join(c.target, 'firmware-a'), { recursive: true });
    await rm(join(c.target, 'failsafe'), { recursive: true });
    await journal(c, { step: 'switched' });
    await assert.rejects(run(c), (e: unknown) => e instanceof FussyError && e.code === 'INSTALL_FAILED_UNRECOVERED' && /no release to go back to \(firmware-a/.test(e.message));
    assert.equal(await readlink(join(c.target, 'current')), 'firmware-b', 'left as it was');
    await assert.rejects(lstat(join(c.state, JOURNAL)), { code: 'ENOENT' });
  });

  it('current pointing at a missing release, no journal: recovery has nothing to justify a change and changes nothing', async function () {
    const c = await craft({ b: false, current: 'firmware-gone' });
    const before = await snapshot(c);
    const r = await run(c);
    assert.equal(r.outcome, 'clean');
    assert.equal(r.current, 'firmware-gone', 'reported as it is');
    assert.deepEqual(await snapshot(c), before);
    assert.equal(await hooks(c), '');
  });

  for (const [what, text] of [
    ['torn (a crash mid-write cannot make one: writes are atomic, so this is damage)', '{"format":"fussy-journal","vers'],
    ['of a newer format version', JSON.stringify({ format: 'fussy-journal', version: 2, action: 'install', step: 'commit', release: 'firmware-b' })],
    ['not JSON at all', '\u0000\u0000\u0000'],
  ] as const) {
    it(`damaged-journal, ${what}: JOURNAL_UNREADABLE naming the file; no release, link, journal or history changed`, async function () {
      const c = await craft({ current: 'firmware-b' });
      await writeFile(join(c.state, JOURNAL), text);
      const before = await snapshot(c);
      await assert.rejects(run(c), (e: unknown) => e instanceof FussyError && e.code === 'JOURNAL_UNREADABLE' && e.message.includes(join(c.state, JOURNAL)));
      assert.deepEqual(await snapshot(c), before, 'the journal stays for a person to look at');
      assert.equal(await hooks(c), '');
      await assert.rejects(readJournal(c.state), { code: 'JOURNAL_UNREADABLE' });
    });
  }

  it('damaged-journal next to leftovers: the staging dir is still swept (it was never a release), everything else stays', async function () {
    const c = await craft();
    await writeTree(join(c.state, 'staging-1-2'), release('b'));
    await writeFile(join(c.state, JOURNAL), '{');
    await assert.rejects(run(c), { code: 'JOURNAL_UNREADABLE' });
    assert.deepEqual((await readdir(c.state)).sort(), [JOURNAL]);
    assert.deepEqual(await names(c), ['current', 'failsafe', 'firmware-a', 'firmware-b']);
    assert.equal(await readlink(join(c.target, 'current')), 'firmware-a');
  });

  it('a second recovery after any of these has nothing to do', async function () {
    const c = await craft();
    await journal(c, { step: 'pre-install' });
    await run(c);
    await rename(c.log, `${c.log}.1`);
    const again = await run(c);
    assert.equal(again.outcome, 'clean');
    assert.equal(again.message, 'nothing to recover');
    assert.equal(await hooks(c), '');
    assert.equal((await readHistory(c.state)).records.length, 1);
  });
});
