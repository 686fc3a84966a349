import assert from 'node:assert/strict';
import { readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isTempName, tempName, writeAtomic, writeNewFile } from '../../src/util/fs-atomic.js';
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
    assert.deepEqual(names.filter((n) => n.startsWith('.fussy-tmp-')), [], 'no temp file left');
  });

  it('gives the new file its mode through the descriptor, whatever the umask', async function () {
    const file = join(tmp.dir, 'secret.key');
    const old = process.umask(0o077);
    try {
      await writeAtomic(file, 'x', { mode: 0o644 });
    } finally {
      process.umask(old);
    }
    assert.equal((await stat(file)).mode & 0o777, 0o644);
  });

  it('names every temp file .fussy-tmp-<purpose>-<32 hex>, and recognises exactly that pattern', function () {
    const a = tempName('journal');
    assert.match(a, /^\.fussy-tmp-journal-[0-9a-f]{32}$/);
    assert.notEqual(a, tempName('journal'));
    assert.ok(isTempName(a));
    assert.ok(isTempName(a, 'journal'));
    assert.ok(!isTempName(a, 'repair'));
    assert.ok(isTempName(tempName('stale-lock'), 'stale-lock'));
    for (const n of ['journal.json', 'journal.json.tmp-1234-0123456789abcdef', '.fussy-tmp-journal-0123', `.fussy-tmp-journal-${'A'.repeat(32)}`, `x.fussy-tmp-journal-${'a'.repeat(32)}`, `.fussy-tmp-journal-${'a'.repeat(32)}.bak`, `.fussy-tmp--${'a'.repeat(32)}`, `.fussy-tmp-${'a'.repeat(32)}`, '.fussy-repair-a1b2c3d4e5f60718293a4b5c']) {
      assert.ok(!isTempName(n), n);
    }
    assert.throws(() => tempName('Bad/purpose'));
  });

  it('writeNewFile fails EEXIST on anything already at the name, and leaves it alone', async function () {
    const victim = join(tmp.dir, 'victim');
    await writeFile(victim, 'victim\n');
    const name = join(tmp.dir, tempName('key'));
    await symlink(victim, name);
    assert.throws(() => writeNewFile(name, 'x', 0o600), { code: 'EEXIST' });
    assert.equal(await readFile(victim, 'utf8'), 'victim\n');
    assert.equal(await readlink(name), victim);
  });
});
