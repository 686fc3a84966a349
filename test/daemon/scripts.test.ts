import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { checkName } from '../../src/daemon/names.js';
import { ScriptStore } from '../../src/daemon/scripts.js';
import { useTmp } from '../helpers/tmp.js';

const BY = { cn: 'alice', fingerprint: 'AB:CD' };
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('daemon script store: scripts by content, names by index', function () {
  const tmp = useTmp();

  it('stores by sha256 with mode 0500, lists who stored what, and keeps older ids runnable', async function () {
    const store = await ScriptStore.open(tmp.dir);
    const v1 = await store.put('job.sh', Buffer.from('one\n'), BY);
    const v2 = await store.put('job.sh', Readable.from([Buffer.from('tw'), Buffer.from('o\n')]), { cn: 'bob', fingerprint: 'EF' });
    assert.deepEqual([v1.id, v2.id, v2.size], [sha('one\n'), sha('two\n'), 4]);
    assert.equal((await stat(join(tmp.dir, 'scripts', 'objects', v2.id))).mode & 0o777, 0o500);
    const reopened = await ScriptStore.open(tmp.dir);
    assert.deepEqual(reopened.list().map((e) => [e.name, e.id, e.by.cn, e.older.map((o) => o.id)]), [['job.sh', v2.id, 'bob', [v1.id]]]);
    assert.deepEqual([reopened.resolve('job.sh').id, reopened.resolve(v1.id).name], [v2.id, 'job.sh']);
    const chunks: Buffer[] = [];
    for await (const c of reopened.open(v1.id)) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'one\n');
  });

  it('remove forgets the name only: its ids still resolve', async function () {
    const store = await ScriptStore.open(tmp.dir);
    const v = await store.put('gone.sh', Buffer.from('x\n'), BY);
    await store.remove('gone.sh');
    assert.throws(() => store.resolve('gone.sh'), { code: 'NOT_FOUND' });
    assert.equal(store.resolve(v.id).name, 'gone.sh');
    await assert.rejects(store.remove('gone.sh'), { code: 'NOT_FOUND' });
  });

  for (const bad of ['..', '.', '.hidden', 'a/b', '../etc/passwd', 'a\0b', 'caf\u00e9', '', 'x'.repeat(129), 'a\\b', '-dash']) {
    it(`name-refused ${JSON.stringify(bad.slice(0, 20))}: BAD_NAME naming it, nothing written`, async function () {
      const store = await ScriptStore.open(tmp.dir);
      assert.throws(() => checkName(bad), { code: 'BAD_NAME' });
      assert.throws(() => store.put(bad, Buffer.from('x'), BY), (err: Error & { code?: string }) => err.code === 'BAD_NAME' && err.message.includes(JSON.stringify(bad.slice(0, 20)).slice(1, -1).slice(0, 5)));
      assert.deepEqual(await readdir(join(tmp.dir, 'scripts', 'objects')), []);
    });
  }

  it('script-too-large: a stream past max-script-bytes is refused and leaves no object nor temp file, the name unchanged', async function () {
    const store = await ScriptStore.open(tmp.dir, { maxBytes: 1000 });
    await store.put('big.sh', Buffer.from('small\n'), BY);
    const endless = Readable.from((function* () {
      for (let i = 0; i < 100; i++) yield Buffer.alloc(100, 0x41);
    })());
    await assert.rejects(store.put('big.sh', endless, BY), { code: 'TOO_LARGE' });
    assert.deepEqual(await readdir(join(tmp.dir, 'scripts', 'objects')), [sha('small\n')]);
    assert.equal(store.resolve('big.sh').id, sha('small\n'));
    assert.match(await readFile(join(tmp.dir, 'scripts', 'index.json'), 'utf8'), /big\.sh/);
  });
});
