import assert from 'node:assert/strict';
import { readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAtomicTemp, writeAtomic } from '../../src/util/fs-atomic.js';
import { useTmp } from '../helpers/tmp.js';

describe('writeAtomic: replace a file so a crash leaves the old or the new content', function () {
  const tmp = useTmp();

  it('never writes through a symlink planted at a temp name (O_EXCL|O_NOFOLLOW, unguessable name), and leaves no temp file', async function () {
    const victim = join(tmp.dir, 'victim');
    await writeFile(victim, 'victim\n');
    const file = join(tmp.dir, 'state.json');
    await writeFile(file, 'old\n');
    for (let pid = process.pid - 5; pid <= process.pid + 5; pid++) await symlink(victim, `${file}.tmp-${pid}`);
    await writeAtomic(file, 'new\n');
    assert.equal(await readFile(file, 'utf8'), 'new\n');
    assert.equal(await readFile(victim, 'utf8'), 'victim\n');
    const names = (await readdir(tmp.dir)).sort();
    assert.equal(names.filter((n) => n.startsWith('state.json.tmp-')).length, 11, 'only the planted links');
    for (const n of names.filter((x) => x.startsWith('state.json.tmp-'))) assert.equal(await readlink(join(tmp.dir, n)), victim);
  });

  it('names its temp files so that recovery can sweep them (and those of older versions)', function () {
    assert.ok(isAtomicTemp('journal.json.tmp-1234'));
    assert.ok(isAtomicTemp('journal.json.tmp-1234-0123456789abcdef'));
    assert.ok(!isAtomicTemp('journal.json'));
    assert.ok(!isAtomicTemp('journal.json.tmp-x'));
  });
});
