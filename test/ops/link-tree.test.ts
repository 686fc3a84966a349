import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cli } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree, writeTree } from '../helpers/tree.js';

describe('fussy link-tree SOURCE DEST: link every file of a release into the system', function () {
  let tmp: string;
  let source: string;

  beforeEach(async function () {
    tmp = await makeTmp();
    // As on a device: SOURCE is reached through the `current` link.
    await writeTree(join(tmp, 'firmware', 'fw-1', 'etc'), [
      { path: 'app.conf', content: 'a=1\n' },
      { path: 'cron.d/backup', content: '0 3 * * * root backup\n' },
      { path: 'motd', symlink: 'app.conf' },
    ]);
    await symlink('fw-1', join(tmp, 'firmware', 'current'));
    source = join(tmp, 'firmware', 'current', 'etc');
  });

  it('makes absolute symlinks through SOURCE as given (so they follow current), creating directories; a second run changes nothing', async function () {
    const dest = join(tmp, 'etc');
    await mkdir(dest);
    await writeFile(join(dest, 'hostname'), 'device-1\n'); // unrelated files stay
    const r = await cli('fussy', ['link-tree', source, dest, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(await readlink(join(dest, 'app.conf')), join(source, 'app.conf'));
    assert.equal(await readlink(join(dest, 'cron.d', 'backup')), join(source, 'cron.d', 'backup'));
    assert.equal(await readlink(join(dest, 'motd')), join(source, 'motd'));
    assert.ok((await lstat(join(dest, 'cron.d'))).isDirectory());
    assert.equal(await readFile(join(dest, 'app.conf'), 'utf8'), 'a=1\n');
    const before = await snapshotTree(dest);
    const again = await cli('fussy', ['link-tree', source, dest]);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.match(again.stderr, /linked 0 files \(3 already linked, 0 directories created, 0 moved aside\)/);
    assert.deepEqual(await snapshotTree(dest), before);
    assert.equal(await readFile(join(dest, 'hostname'), 'utf8'), 'device-1\n');
  });

  it('an existing different file stops it before anything changes; --force moves it to NAME.fussy-orig', async function () {
    const dest = join(tmp, 'etc');
    await writeTree(dest, [{ path: 'app.conf', content: 'local edit\n' }]);
    const before = await snapshotTree(dest);
    const r = await cli('fussy', ['link-tree', source, dest]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /1 destination already exists and differs: .*etc\/app.conf/);
    assert.deepEqual(await snapshotTree(dest), before, 'nothing changed, not even the directories');
    const dry = await cli('fussy', ['link-tree', source, dest, '--force', '--dry-run']);
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.match(dry.stderr, /would move app.conf aside to .*app.conf.fussy-orig/);
    assert.deepEqual(await snapshotTree(dest), before);
    const f = await cli('fussy-link-tree', [source, dest, '--force']);
    assert.equal(f.exitCode, 0, f.stderr);
    assert.equal(await readFile(join(dest, 'app.conf.fussy-orig'), 'utf8'), 'local edit\n');
    assert.equal(await readlink(join(dest, 'app.conf')), join(source, 'app.conf'));
    // A saved original is never overwritten.
    await writeFile(join(dest, 'motd.fussy-orig'), 'older original\n');
    await (await import('node:fs/promises')).rm(join(dest, 'motd'));
    await writeFile(join(dest, 'motd'), 'another local edit\n');
    const again = await cli('fussy', ['link-tree', source, dest, '--force']);
    assert.equal(again.exitCode, 2);
    assert.match(again.stderr, /motd.fussy-orig already exists/);
  });

  it('--hard makes hard links (same inode) and is idempotent too', async function () {
    const dest = join(tmp, 'etc-hard');
    const r = await cli('fussy', ['link-tree', '--hard', source, dest]);
    assert.equal(r.exitCode, 0, r.stderr);
    const [a, b] = await Promise.all([lstat(join(dest, 'app.conf')), lstat(join(tmp, 'firmware', 'fw-1', 'etc', 'app.conf'))]);
    assert.equal(a.ino, b.ino);
    assert.match((await cli('fussy', ['link-tree', '--hard', source, dest])).stderr, /linked 0 files \(3 already linked/);
  });

  it('refuses a destination inside the source, and a missing source, with exit 2', async function () {
    const before = await snapshotTree(join(tmp, 'firmware'));
    const inside = await cli('fussy', ['link-tree', source, join(source, 'sub')]);
    assert.equal(inside.exitCode, 2);
    assert.match(inside.stderr, /destination .*etc\/sub is inside the source/);
    assert.deepEqual(await snapshotTree(join(tmp, 'firmware')), before, 'nothing was linked into the source');
    const r = await cli('fussy', ['link-tree', join(tmp, 'nope'), join(tmp, 'x')]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /source .*nope does not exist/);
  });
});
