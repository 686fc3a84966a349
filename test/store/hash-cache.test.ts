import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { chmod, chown, link, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DedupIndex } from '../../src/store/dedup-index.js';
import { HashCache, monotonicMs, RACY_MS, sealAfter } from '../../src/store/hash-cache.js';
import { useTmp } from '../helpers/tmp.js';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const st = (p: string) => lstatSync(p);

describe('hash cache: sha256 of installed files, trusted only while the ctime is unchanged', function () {
  const tmp = useTmp();

  it('vouches for a file whose ctime has not moved since it was recorded', async function () {
    const f = join(tmp.dir, 'lib.so');
    await writeFile(f, 'ELF payload');
    await sleep(250); // older than the racy window when recorded
    const cacheFile = join(tmp.dir, 'cache.json');
    await HashCache.load(undefined).save(cacheFile, tmp.dir, [['lib.so', sha('ELF payload')]]);
    assert.equal(HashCache.load(cacheFile).get(st(f)), sha('ELF payload'));
  });

  it('an in-place edit of the same size, a chmod or a new hard link makes it re-hash', async function () {
    const cacheFile = join(tmp.dir, 'cache.json');
    const files = ['a', 'b', 'c'];
    for (const n of files) await writeFile(join(tmp.dir, n), 'AAAA');
    await sleep(250);
    await HashCache.load(undefined).save(cacheFile, tmp.dir, files.map((n) => [n, sha('AAAA')]));
    await sleep(20);
    const fh = await open(join(tmp.dir, 'a'), 'r+');
    await fh.write('BBBB', 0);
    await fh.close();
    await chmod(join(tmp.dir, 'b'), 0o600);
    await link(join(tmp.dir, 'c'), join(tmp.dir, 'c2'));
    const cache = HashCache.load(cacheFile);
    for (const n of files) assert.equal(cache.get(st(join(tmp.dir, n))), undefined, `${n} must not be trusted`);
    assert.equal(await readFile(join(tmp.dir, 'a'), 'utf8'), 'BBBB');
  });

  it('racy entries (ctime within 20 ms of the recording, 2 s on a file system of whole seconds) are not trusted, older ones are', async function () {
    const f = join(tmp.dir, 'fresh');
    await writeFile(f, 'new');
    const cacheFile = join(tmp.dir, 'cache.json');
    await HashCache.load(undefined).save(cacheFile, tmp.dir, [['fresh', sha('new')]]);
    // The recording time is set by hand around the file's ctime: no dependence on how fast this machine is.
    const ctime = st(f).ctimeMs;
    const recordedAt = async (at: number): Promise<void> => {
      const data = JSON.parse(await readFile(cacheFile, 'utf8')) as { groups: Array<{ at: string }> };
      for (const g of data.groups) g.at = String(at);
      await writeFile(cacheFile, JSON.stringify(data));
    };
    await recordedAt(ctime + 15);
    assert.equal(HashCache.load(cacheFile).get(st(f)), undefined, 'recorded 15 ms after the last change: racy');
    await recordedAt(ctime + 25);
    assert.equal(HashCache.load(cacheFile).get(st(f)), sha('new'), 'recorded 25 ms after it: trusted');
    // coarse-timestamps: a ctime of whole seconds may lag its write by up to 2 s (the entry and the
    // stat are both given that ctime: no such file system is needed).
    const whole = Math.floor(ctime / 1000) * 1000;
    const data = JSON.parse(await readFile(cacheFile, 'utf8')) as { groups: Array<{ files: Record<string, { c: string }> }> };
    for (const g of data.groups) for (const e of Object.values(g.files)) e.c = String(whole);
    await writeFile(cacheFile, JSON.stringify(data));
    const coarse = Object.assign(st(f), { ctimeMs: whole });
    await recordedAt(whole + 1500);
    assert.equal(HashCache.load(cacheFile).get(coarse), undefined, 'whole seconds, recorded 1.5 s after: racy');
    await recordedAt(whole + 2500);
    assert.equal(HashCache.load(cacheFile).get(coarse), sha('new'), 'whole seconds, recorded 2.5 s after: trusted');
  });

  it('sealAfter: the sealing time is past the racy window of the last write, so what was written then is vouched for', async function () {
    const f = join(tmp.dir, 'sealed');
    await writeFile(f, 'sealed content');
    const wallBefore = Date.now();
    const sealedAt = await sealAfter(monotonicMs());
    assert.ok(sealedAt > wallBefore + RACY_MS, `${sealedAt} vs ${wallBefore}`);
    const cacheFile = join(tmp.dir, 'cache.json');
    await HashCache.load(undefined).save(cacheFile, tmp.dir, [['sealed', sha('sealed content')]], sealedAt);
    assert.equal(HashCache.load(cacheFile).get(st(f)), sha('sealed content'));
    // A change after the sealing time has a ctime inside the window: not vouched for.
    await writeFile(f, 'changed conten');
    await HashCache.load(undefined).save(cacheFile, tmp.dir, [['sealed', sha('sealed content')]], sealedAt);
    assert.equal(HashCache.load(cacheFile).get(st(f)), undefined);
  });

  it('hash-cache-user-writable: a file someone other than fussy\'s user could write (its owner, its group, anyone) is never vouched for', async function () {
    const cacheFile = join(tmp.dir, 'cache.json');
    const files = ['mine', 'users', 'group-w', 'world-w'];
    for (const n of files) await writeFile(join(tmp.dir, n), 'DATA');
    await chown(join(tmp.dir, 'users'), 1000, 1000);
    await chmod(join(tmp.dir, 'group-w'), 0o664);
    await chmod(join(tmp.dir, 'world-w'), 0o646);
    await sleep(50);
    await HashCache.load(undefined).save(cacheFile, tmp.dir, files.map((n) => [n, sha('DATA')]));
    const cache = HashCache.load(cacheFile);
    assert.equal(cache.get(st(join(tmp.dir, 'mine'))), sha('DATA'));
    for (const n of files.slice(1)) assert.equal(cache.get(st(join(tmp.dir, n))), undefined, n);
    // Nor one hashed during an install (note).
    const fresh = HashCache.load(undefined);
    const at = Date.now(); // the files were last changed 50 ms before: past the racy window
    for (const n of files) fresh.note(st(join(tmp.dir, n)), sha('DATA'), at);
    assert.equal(fresh.get(st(join(tmp.dir, 'mine'))), sha('DATA'));
    for (const n of files.slice(1)) assert.equal(fresh.get(st(join(tmp.dir, n))), undefined, n);
  });

  it('a missing, torn, corrupt or foreign-version cache file is ignored (and never throws)', async function () {
    const f = join(tmp.dir, 'x');
    await writeFile(f, 'x');
    await sleep(250);
    const cacheFile = join(tmp.dir, 'c.json');
    await HashCache.load(undefined).save(cacheFile, tmp.dir, [['x', sha('x')]]);
    assert.equal(HashCache.load(cacheFile).get(st(f)), sha('x'), 'the intact cache vouches for x: each variant below breaks only the file');
    const good = await readFile(cacheFile, 'utf8');
    const parsed = JSON.parse(good) as { version: number; groups: Array<{ at: string; files: Record<string, unknown> }> };
    const key = Object.keys(parsed.groups[parsed.groups.length - 1]!.files)[0]!;
    const variants: Array<[string, string | undefined]> = [
      ['missing', undefined],
      ['torn', good.slice(0, Math.floor(good.length / 2))],
      ['foreign version', JSON.stringify({ ...parsed, version: 99 })],
      ['an array', JSON.stringify(parsed.groups)],
      ['a null entry', JSON.stringify({ ...parsed, groups: [{ at: parsed.groups[0]!.at, files: { [key]: null } }] })],
      ['a time that is no number', JSON.stringify({ ...parsed, groups: parsed.groups.map((g) => ({ ...g, at: 'zz' })) })],
    ];
    for (const [what, content] of variants) {
      if (content === undefined) await rm(cacheFile, { force: true });
      else await writeFile(cacheFile, content);
      assert.equal(HashCache.load(cacheFile).get(st(f)), undefined, what);
    }
  });

  it('dedup still refuses a file whose cached hash is stale: it re-reads it', async function () {
    const rel = join(tmp.dir, 'rel');
    await mkdir(rel);
    await writeFile(join(rel, 'f'), 'AAAA', { mode: 0o644 });
    await sleep(250);
    const cacheFile = join(tmp.dir, 'cache.json');
    await HashCache.load(undefined).save(cacheFile, rel, [['f', sha('AAAA')]]);
    const fh = await open(join(rel, 'f'), 'r+');
    await fh.write('BBBB', 0);
    await fh.close();
    const s = lstatSync(join(rel, 'f'));
    // Index the release by walking it (no manifest), then ask for the old content.
    const walked = DedupIndex.build([rel], { cache: HashCache.load(cacheFile) });
    const id = { size: 4, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
    assert.equal(walked.find({ sha256: sha('AAAA'), ...id }), undefined, 'stale cache entry must not make dedup link edited content');
    assert.equal(walked.find({ sha256: sha('BBBB'), ...id })?.abs, join(rel, 'f'));
  });

  it('keeps only the newest recordings: the cache does not grow with every install', async function () {
    const cacheFile = join(tmp.dir, 'cache.json');
    for (let round = 0; round < 6; round++) {
      const rel = join(tmp.dir, `rel${round}`);
      await mkdir(rel);
      await writeFile(join(rel, 'f'), `release ${round}`);
      await HashCache.load(cacheFile).save(cacheFile, rel, [['f', sha(`release ${round}`)]]);
      await sleep(5); // a distinct recording time per round
    }
    const stored = JSON.parse(await readFile(cacheFile, 'utf8')) as { groups: Array<{ files: Record<string, unknown> }> };
    assert.equal(stored.groups.length, 4, 'three earlier recordings and the new one');
    assert.equal(stored.groups.reduce((n, g) => n + Object.keys(g.files).length, 0), 4);
  });
});
