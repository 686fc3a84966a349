import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
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

  it('script-object-growth: objects no name points at, neither stored nor run for history-days, are pruned (and old temp files); live versions and recently run ids stay', async function () {
    const DAY = 86_400_000;
    let now = new Date('2026-01-01T00:00:00Z');
    const store = await ScriptStore.open(tmp.dir, { keepOlder: 1, now: () => now });
    const by = { cn: 'alice', fingerprint: 'AA' };
    const v1 = await store.put('job.sh', Buffer.from('#!/bin/sh\necho 1\n'), by);
    const v2 = await store.put('job.sh', Buffer.from('#!/bin/sh\necho 2\n'), by);
    const v3 = await store.put('job.sh', Buffer.from('#!/bin/sh\necho 3\n'), by); // v1 falls out of older (keepOlder 1)
    const gone = await store.put('old.sh', Buffer.from('#!/bin/sh\necho old\n'), by);
    const ran = await store.put('ran.sh', Buffer.from('#!/bin/sh\necho ran\n'), by);
    await store.remove('old.sh');
    await store.remove('ran.sh');
    const objects = join(tmp.dir, 'scripts', 'objects');
    // Objects carry the time they were stored (the test's clock, as written by utimes).
    for (const id of [v1.id, v2.id, v3.id, gone.id, ran.id]) await utimes(join(objects, id), now, now);
    const temp = join(objects, '.fussy-tmp-script-00000000000000000000000000000000');
    await writeFile(temp, 'x'); // a crash's leftover, stored "now"
    await utimes(temp, now, now);
    now = new Date(now.getTime() + 89 * DAY);
    store.used(ran.id); // run by id 89 days later
    assert.deepEqual(await store.prune(90 * DAY), [], 'nothing is 90 days old yet');
    now = new Date(now.getTime() + 2 * DAY);
    const pruned = (await store.prune(90 * DAY)).sort();
    assert.deepEqual(pruned, [v1.id, gone.id].sort());
    assert.deepEqual((await readdir(objects)).sort(), [v2.id, v3.id, ran.id].sort(), 'the temp file a crash left went too');
    assert.throws(() => store.resolve(gone.id), /no script/);
    assert.equal(store.resolve(v2.id).name, 'job.sh', 'an older version a name remembers stays runnable');
    assert.equal((await ScriptStore.open(tmp.dir)).resolve(ran.id).id, ran.id, 'the index no longer lists what was pruned, and keeps the rest');
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
