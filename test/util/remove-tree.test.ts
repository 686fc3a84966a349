import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { removeTree } from '../../src/util/remove-tree.js';
import { useTmp } from '../helpers/tmp.js';

describe('removeTree: rm -rf that never follows a symlink nor crosses a mount', function () {
  const tmp = useTmp();

  it('removes files, symlinks (never what they point at), read-only and unreadable directories', async function () {
    const outside = join(tmp.dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep'), 'keep\n');
    const top = join(tmp.dir, 'tree');
    await mkdir(join(top, 'a', 'b', 'c'), { recursive: true });
    await writeFile(join(top, 'a', 'b', 'c', 'f'), 'f');
    await symlink(outside, join(top, 'a', 'to-dir'));
    await symlink(join(outside, 'keep'), join(top, 'a', 'b', 'to-file'));
    await symlink('nowhere', join(top, 'dangling'));
    await mkdir(join(top, 'ro'));
    await writeFile(join(top, 'ro', 'x'), 'x');
    await chmod(join(top, 'ro'), 0o555);
    await mkdir(join(top, 'none'));
    await chmod(join(top, 'none'), 0o000);
    await removeTree(top);
    assert.equal(existsSync(top), false);
    assert.deepEqual(await readdir(outside), ['keep']);
    assert.equal(await readFile(join(outside, 'keep'), 'utf8'), 'keep\n');
  });

  it('a symlink or a file as the top goes itself; a missing top is no error', async function () {
    const outside = join(tmp.dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'keep'), 'keep\n');
    await symlink(outside, join(tmp.dir, 'link'));
    await removeTree(join(tmp.dir, 'link'));
    assert.equal(lstatSync(join(tmp.dir, 'link'), { throwIfNoEntry: false }), undefined);
    assert.deepEqual(await readdir(outside), ['keep']);
    await writeFile(join(tmp.dir, 'file'), 'x');
    await removeTree(join(tmp.dir, 'file'));
    assert.equal(existsSync(join(tmp.dir, 'file')), false);
    await removeTree(join(tmp.dir, 'missing'));
  });

  it('removes a tree deeper than PATH_MAX allows to name (a user can make one with mkdir and cd)', async function () {
    const top = join(tmp.dir, 'deep');
    await mkdir(top);
    execFileSync('perl', ['-e', 'chdir $ARGV[0] or die; for (1..1500) { mkdir "dir" or die; chdir "dir" or die } open F, ">f" or die; print F "x"', top]);
    await removeTree(top);
    assert.equal(existsSync(top), false);
  });

  it('refuses to cross into another file system mounted inside the tree, leaving what is mounted alone', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const top = join(tmp.dir, 'tree');
    const mnt = join(top, 'sub', 'mnt');
    await mkdir(mnt, { recursive: true });
    if (spawnSync('mount', ['-t', 'tmpfs', 'fussy-test', mnt]).status !== 0) this.skip(); // no mount permission here
    try {
      await writeFile(join(mnt, 'data'), 'mounted\n');
      await assert.rejects(removeTree(top), (err: unknown) => err instanceof FussyError && err.code === 'MOUNT_IN_TREE' && /another file system mounted inside/.test(err.message));
      assert.equal(await readFile(join(mnt, 'data'), 'utf8'), 'mounted\n');
    } finally {
      spawnSync('umount', [mnt]);
    }
    await removeTree(top);
    assert.equal(existsSync(top), false);
  });
});
