import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { FussyError } from '../../src/errors.js';
import { UploadStore } from '../../src/daemon/uploads.js';
import { useTmp } from '../helpers/tmp.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;
const DAY = 86_400_000;

/** A stream that delivers `parts` and then fails, as a connection cut mid-request does. */
async function* cutAfter(parts: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield p;
  throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

const coded = (code: string, check: (e: FussyError) => void = () => {}) => (e: unknown) => {
  assert.ok(e instanceof FussyError, String(e));
  assert.equal(e.code, code, e.message);
  check(e);
  return true;
};

describe('daemon upload store: resumable uploads named by sha256', function () {
  const tmp = useTmp();
  const open = (o: Partial<{ maxBytes: number; maxAgeMs: number; maxUploads: number; onEvict: (sha256: string, have: number) => void; now: () => Date }> = {}) => UploadStore.open(tmp.dir, { maxBytes: 64 * MiB, maxAgeMs: DAY, ...o });

  it('upload-partial-flood: an uploader who begins upload after upload (each under max-upload-bytes) holds at most max-uploads of them; the least recently written one goes first', async function () {
    const evicted: Array<[string, number]> = [];
    const store = open({ maxUploads: 3, onEvict: (id, have) => evicted.push([id, have]) });
    const pkgs = Array.from({ length: 5 }, () => randomBytes(50_000));
    const ids = pkgs.map(sha);
    for (const [i, id] of ids.slice(0, 3).entries()) {
      await store.begin(id, 50_000);
      await store.append(id, 0, [(pkgs[i] as Buffer).subarray(0, 10_000 * (i + 1))]);
      // Written one after the other: mtimes in that order.
      await utimes(join(tmp.dir, 'uploads', `${id}.part`), 1_700_000_000 + i, 1_700_000_000 + i);
    }
    await store.begin(ids[3] as string, 50_000);
    assert.deepEqual(evicted, [[ids[0], 10_000]], 'the oldest partial made room');
    assert.equal(store.state(ids[0] as string), undefined);
    assert.deepEqual(store.state(ids[1] as string), { size: 50_000, have: 20_000, verified: false }, 'the others stay, resumable');
    await store.begin(ids[1] as string, 50_000); // resuming a held upload takes no room
    assert.equal(evicted.length, 1);
    await store.begin(ids[4] as string, 50_000);
    assert.equal(evicted[1]?.[0], ids[1]);
    const names = (await readdir(join(tmp.dir, 'uploads'))).filter((n) => n.endsWith('.json'));
    assert.equal(names.length, 3, `held: ${names.join(', ')}`);
  });

  it('upload-partial-flood: when every held upload is being written, a new one is refused (UPLOAD_BUSY) and nothing is removed', async function () {
    const store = open({ maxUploads: 1 });
    const a = randomBytes(1000);
    await store.begin(sha(a), 1000);
    const body = new PassThrough();
    const appending = store.append(sha(a), 0, body);
    body.write(a.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(store.begin(sha(randomBytes(8)), 8), coded('UPLOAD_BUSY', (e) => assert.match(e.message, /max-uploads 1/)));
    body.end(a.subarray(10));
    assert.deepEqual(await appending, { size: 1000, have: 1000, verified: false });
  });

  it('a cut upload keeps what arrived; the client resumes at the offset it is told, and the sha256 of the whole is checked', async function () {
    const pkg = randomBytes(300_000);
    const id = sha(pkg);
    const store = open();
    assert.deepEqual(await store.begin(id, pkg.length), { size: pkg.length, have: 0, verified: false });
    await assert.rejects(store.append(id, 0, cutAfter([pkg.subarray(0, 70_000), pkg.subarray(70_000, 100_000)])), { code: 'ECONNRESET' });
    assert.deepEqual(store.state(id), { size: pkg.length, have: 100_000, verified: false });
    assert.deepEqual(await store.begin(id, pkg.length), { size: pkg.length, have: 100_000, verified: false }, 'begin again: where to resume');
    await assert.rejects(
      store.append(id, 0, [pkg]),
      coded('UPLOAD_OFFSET', (e) => {
        assert.match(e.message, /send from offset 100000/);
        assert.equal(e.details?.have, 100_000);
      }),
    );
    await assert.rejects(store.complete(id), coded('UPLOAD_INCOMPLETE', (e) => assert.equal(e.details?.have, 100_000)));
    assert.deepEqual(await store.append(id, 100_000, [pkg.subarray(100_000, 200_000), pkg.subarray(200_000)]), { size: pkg.length, have: pkg.length, verified: false });
    const path = await store.complete(id);
    assert.equal(path, join(tmp.dir, 'uploads', `${id}.pkg`));
    assert.deepEqual(await readFile(path), pkg);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(join(tmp.dir, 'uploads'))).mode & 0o777, 0o700);
    assert.deepEqual(store.state(id), { size: pkg.length, have: pkg.length, verified: true });
    assert.equal(await store.complete(id), path, 'complete again: the same checked file');
    assert.equal(await store.remove(id), true);
    assert.deepEqual(await readdir(join(tmp.dir, 'uploads')), []);
    store.close();
  });

  it('after a daemon restart the sha256 is checked by reading the file again', async function () {
    const pkg = randomBytes(200_000);
    const first = open();
    await first.begin(sha(pkg), pkg.length);
    await assert.rejects(first.append(sha(pkg), 0, cutAfter([pkg.subarray(0, 50_000)])));
    first.close();
    const second = open();
    await second.append(sha(pkg), 50_000, [pkg.subarray(50_000)]);
    assert.deepEqual(await readFile(await second.complete(sha(pkg))), pkg);
    second.close();
  });

  it('upload-excess-bytes: bytes past the size are refused, the size kept, nothing past it written', async function () {
    const pkg = randomBytes(10_000);
    const store = open();
    await store.begin(sha(pkg), pkg.length);
    await assert.rejects(store.append(sha(pkg), 0, [pkg, Buffer.from('trailing junk')]), coded('TOO_LARGE', (e) => assert.equal(e.details?.have, 10_000)));
    assert.equal((await stat(join(tmp.dir, 'uploads', `${sha(pkg)}.part`))).size, 10_000);
    await store.complete(sha(pkg));
    await assert.rejects(store.append(sha(pkg), 10_000, [Buffer.from('x')]), coded('TOO_LARGE'));
    assert.equal((await stat(join(tmp.dir, 'uploads', `${sha(pkg)}.pkg`))).size, 10_000);
    store.close();
  });

  it('upload-sha256-mismatch: UPLOAD_MISMATCH naming the digest of what arrived, and the upload is removed', async function () {
    const pkg = randomBytes(5000);
    const claimed = sha(Buffer.from('another package'));
    const store = open();
    await store.begin(claimed, pkg.length);
    await store.append(claimed, 0, [pkg]);
    await assert.rejects(store.complete(claimed), coded('UPLOAD_MISMATCH', (e) => assert.equal(e.details?.actual, sha(pkg))));
    assert.deepEqual(await readdir(join(tmp.dir, 'uploads')), []);
    assert.equal(store.state(claimed), undefined);
    await assert.rejects(store.append(claimed, 0, [pkg]), coded('NOT_FOUND'));
    store.close();
  });

  it('upload-symlink-planted: a link at <sha>.part is removed, never written through', async function () {
    const victim = join(tmp.dir, 'victim');
    await writeFile(victim, 'precious\n');
    const pkg = randomBytes(4096);
    const id = sha(pkg);
    const store = open();
    await store.begin(id, pkg.length);
    const part = join(tmp.dir, 'uploads', `${id}.part`);
    await unlink(part);
    await symlink(victim, part);
    assert.equal(store.state(id)?.have, 0, 'a link is not counted as bytes held');
    await store.append(id, 0, [pkg]);
    assert.equal(await readFile(victim, 'utf8'), 'precious\n');
    assert.deepEqual(await readFile(await store.complete(id)), pkg);
    store.close();
  });

  it('upload-dir-symlink: STATE/uploads that is a symlink is refused, nothing created through it', async function () {
    const elsewhere = join(tmp.dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(tmp.dir, 'uploads'));
    assert.throws(() => open(), coded('SETUP', (e) => assert.match(e.message, /ELOOP|ENOTDIR/)));
    assert.deepEqual(await readdir(elsewhere), []);
  });

  it('upload-too-large: a size over max-upload-bytes is refused before anything is written', async function () {
    const store = open({ maxBytes: MiB });
    await assert.rejects(store.begin('a'.repeat(64), MiB + 1), coded('TOO_LARGE', (e) => assert.equal(e.details?.max, MiB)));
    await assert.rejects(store.begin('a'.repeat(64), 0), coded('USAGE'));
    assert.deepEqual(await readdir(join(tmp.dir, 'uploads')), []);
    store.close();
  });

  for (const bad of ['A'.repeat(64), 'a'.repeat(63), 'a'.repeat(65), `../${'a'.repeat(61)}`, `${'a'.repeat(63)}\0`, '']) {
    it(`upload-bad-name ${JSON.stringify(bad.slice(0, 12))}: BAD_NAME, nothing written`, async function () {
      const store = open();
      await assert.rejects(store.begin(bad, 10), coded('BAD_NAME'));
      await assert.rejects(store.append(bad, 0, [Buffer.from('x')]), coded('BAD_NAME'));
      assert.throws(() => store.state(bad), coded('BAD_NAME'));
      assert.deepEqual(await readdir(join(tmp.dir, 'uploads')), []);
      store.close();
    });
  }

  it('one request per upload: a second append or check while one runs is UPLOAD_BUSY', async function () {
    const pkg = randomBytes(8192);
    const id = sha(pkg);
    const store = open();
    await store.begin(id, pkg.length);
    const slow = new PassThrough();
    const first = store.append(id, 0, slow);
    slow.write(pkg.subarray(0, 1000));
    await assert.rejects(store.append(id, 0, [pkg]), coded('UPLOAD_BUSY'));
    await assert.rejects(store.complete(id), coded('UPLOAD_BUSY'));
    await assert.rejects(store.begin(id, 10), coded('UPLOAD_BUSY'), 'no restart under a running append');
    slow.end(pkg.subarray(1000));
    assert.equal((await first).have, pkg.length);
    await store.complete(id);
    store.close();
  });

  it('begin with another size starts a partial upload over; a verified one keeps its size (UPLOAD_CONFLICT)', async function () {
    const pkg = randomBytes(3000);
    const id = sha(pkg);
    const store = open();
    await store.begin(id, 9999);
    await store.append(id, 0, [pkg]);
    assert.deepEqual(await store.begin(id, pkg.length), { size: pkg.length, have: 0, verified: false });
    await store.append(id, 0, [pkg]);
    await store.complete(id);
    await assert.rejects(store.begin(id, 9999), coded('UPLOAD_CONFLICT'));
    assert.equal(store.state(id)?.verified, true);
    store.close();
  });

  it('sweep removes uploads untouched for max age, parts without a sidecar and temp litter; it keeps fresh ones and foreign files', async function () {
    const store = open({ now: () => new Date(Date.now() + 60_000) });
    const stale = 'b'.repeat(64);
    const fresh = 'c'.repeat(64);
    const orphan = 'd'.repeat(64);
    await store.begin(stale, 100);
    await store.append(stale, 0, [Buffer.alloc(10)]);
    await store.begin(fresh, 100);
    const dir = join(tmp.dir, 'uploads');
    const old = new Date(Date.now() - 2 * DAY);
    for (const n of [`${stale}.part`, `${stale}.json`]) await utimes(join(dir, n), old, old);
    await writeFile(join(dir, `${orphan}.part`), 'x');
    await writeFile(join(dir, `.fussy-tmp-upload-${'0'.repeat(32)}`), '{');
    await writeFile(join(dir, 'README'), 'not ours\n');
    assert.deepEqual(store.sweep().sort(), [`.fussy-tmp-upload-${'0'.repeat(32)}`, `${stale}.json`, `${stale}.part`, `${orphan}.part`].sort());
    assert.deepEqual((await readdir(dir)).sort(), [`${fresh}.json`, `${fresh}.part`, 'README'].sort());
    store.close();
  });

  it('memory: a 50 MB package streamed through append grows the RSS by less than 20 MB', async function () {
    // 64 KiB chunks, the size a socket hands a request body in. The source hands out the same
    // buffer again (append writes each chunk before it asks for the next): fresh buffers would
    // measure V8's collection lag (~30 MiB of garbage, with or without the store), not the store.
    const chunk = randomBytes(64 * 1024);
    const count = 800;
    const whole = createHash('sha256');
    for (let i = 0; i < count; i++) whole.update(chunk.subarray(0, chunk.length - (i % 7)));
    const id = whole.digest('hex');
    let size = 0;
    for (let i = 0; i < count; i++) size += chunk.length - (i % 7);
    const store = open();
    await store.begin(id, size);
    const before = process.memoryUsage().rss;
    let peak = before;
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < count; i++) {
        peak = Math.max(peak, process.memoryUsage().rss);
        yield chunk.subarray(0, chunk.length - (i % 7));
      }
    }
    assert.equal((await store.append(id, 0, source())).have, size);
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.ok(size > 50 * 1000 * 1000);
    assert.ok(peak - before < 20 * MiB, `RSS grew by ${((peak - before) / MiB).toFixed(1)} MiB`);
    await store.complete(id);
    store.close();
  });
});
