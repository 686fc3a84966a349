import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeFirmware } from '../../bench/make-firmware.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree, type TreeNode } from '../helpers/tree.js';

const files = (t: TreeNode[]): Map<string, TreeNode> => new Map(t.filter((n) => n.type === 'file').map((n) => [n.path, n]));

describe('bench/make-firmware: deterministic firmware trees', function () {
  let dir: string;
  let base: string;

  before(async function () {
    dir = await makeTmp();
    base = join(dir, 'fw-1');
    makeFirmware(base, { mb: 2, files: 200, seed: 1 });
  });

  it('the same arguments give the same tree, bytes, modes and mtimes; another seed another tree', async function () {
    const again = join(dir, 'fw-1-again');
    makeFirmware(again, { mb: 2, files: 200, seed: 1 });
    assert.deepEqual(await snapshotTree(again), await snapshotTree(base));
    const other = join(dir, 'fw-seed-2');
    makeFirmware(other, { mb: 2, files: 200, seed: 2 });
    assert.notDeepEqual(await snapshotTree(other), await snapshotTree(base));
  });

  it('makes text, binary, configs, executables, symlinks and nested directories of about the size asked', async function () {
    const tree = await snapshotTree(base);
    const all = [...files(tree).values()];
    assert.equal(all.length, 202);
    const total = all.reduce((s, n) => s + (n.size ?? 0), 0);
    assert.ok(total > 1.5 * 2 ** 20 && total < 2.5 * 2 ** 20, `${total} bytes`);
    for (const kind of [/\.txt$/, /\.bin$/, /^etc\/app\/conf\d+\.ini$/, /^bin\/tool\d+$/]) assert.ok(all.some((n) => kind.test(n.path)), String(kind));
    assert.ok(all.some((n) => n.path.split('/').length >= 4), 'nested directories');
    assert.deepEqual(tree.filter((n) => n.type === 'symlink').length, 20);
    assert.equal(tree.find((n) => n.path === 'opt/app/link0')?.target, '../etc/app');
  });

  it('ships .pre-install and .post-install hooks that are executable and log to $FUSSY_HOOK_LOG', async function () {
    const log = join(dir, 'hooks.log');
    for (const hook of ['.pre-install', '.post-install']) {
      const r = await execa(join(base, hook), ['/opt/firmware/fw-1', 'False'], { env: { FUSSY_HOOK_LOG: log } });
      assert.equal(r.exitCode, 0);
    }
    assert.equal(await readFile(log, 'utf8'), '.pre-install fw-1 False\n.post-install fw-1 False\n');
  });

  it('--from OLD --change 5 rewrites about 5% of the files, adds 1% and removes 0.5%, hooks untouched', async function () {
    const next = join(dir, 'fw-2');
    makeFirmware(next, { from: base, change: 5, seed: 2 });
    const before = files(await snapshotTree(base));
    const after = files(await snapshotTree(next));
    const rewritten = [...after.values()].filter((n) => before.has(n.path) && before.get(n.path)?.sha256 !== n.sha256);
    const removed = [...before.keys()].filter((p) => !after.has(p));
    const added = [...after.keys()].filter((p) => !before.has(p));
    // 200 candidate files (the hooks are not): 10 rewritten, of which a removed one no longer counts.
    assert.equal(removed.length, 1);
    assert.ok(rewritten.length >= 9 && rewritten.length <= 10, `${rewritten.length} rewritten`);
    assert.ok(rewritten.every((n) => n.mtime === 1_700_100_000 && n.size === before.get(n.path)?.size && n.mode === before.get(n.path)?.mode));
    assert.deepEqual(added, ['share/new/added0000.txt', 'share/new/added0001.txt']);
    assert.deepEqual(after.get('.pre-install'), before.get('.pre-install'));
    const again = join(dir, 'fw-2-again');
    makeFirmware(again, { from: base, change: 5, seed: 2 });
    assert.deepEqual(await snapshotTree(again), await snapshotTree(next));
  });
});
