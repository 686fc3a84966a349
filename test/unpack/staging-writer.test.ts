import assert from 'node:assert/strict';
import { lstat, readFile, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { DedupIndex } from '../../src/store/dedup-index.js';
import { StagingWriter } from '../../src/unpack/staging-writer.js';
import { useTmp } from '../helpers/tmp.js';

const me = { asRoot: false, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const meta = { mode: 0o640, uid: me.uid, gid: me.gid };

describe('StagingWriter (unpack/staging-writer.ts): making a staging tree, bounded and without following links', function () {
  const tmp = useTmp();
  let errors: unknown[];
  const writer = (o: { maxWrite?: number; maxEntries?: number } = {}): StagingWriter => {
    errors = [];
    return new StagingWriter({ staging: join(tmp.dir, 'staging'), index: DedupIndex.build([]), owner: me, maxWrite: o.maxWrite ?? 1 << 30, maxEntries: o.maxEntries ?? 1000, onError: (e) => errors.push(e), failed: () => errors.length > 0 });
  };

  it('makes directories, files with their mode and time, symlinks and hard links; implied parents are made', async function () {
    const w = writer();
    w.mkdir('.');
    w.parents('etc/app/x.conf', 'fw/etc/app/x.conf');
    w.writeBytes('etc/app/x.conf', Buffer.from('level = 3\n'), meta, new Date(1_700_000_000_000));
    w.symlink('etc/current.conf', 'app/x.conf', meta, undefined);
    w.hardlink('etc/again.conf', 'etc/app/x.conf');
    const st = await lstat(w.abs('etc/app/x.conf'));
    assert.equal(st.mode & 0o7777, 0o640);
    assert.equal(st.mtimeMs, 1_700_000_000_000);
    assert.equal(await readFile(w.abs('etc/current.conf'), 'utf8'), 'level = 3\n');
    assert.equal(await readlink(w.abs('etc/current.conf')), 'app/x.conf');
    assert.equal((await lstat(w.abs('etc/again.conf'))).ino, st.ino);
    assert.deepEqual([...w.nodes.keys()].sort(), ['.', 'etc', 'etc/again.conf', 'etc/app', 'etc/app/x.conf', 'etc/current.conf']);
  });

  it('write-through-symlink: an entry below a symlink or a file it made is UNSAFE_PATH, before anything is written', async function () {
    const w = writer();
    w.mkdir('.');
    w.symlink('lib', '/usr/lib', meta, undefined);
    assert.throws(() => w.parents('lib/evil.so', 'fw/lib/evil.so'), (e: unknown) => e instanceof FussyError && e.code === 'UNSAFE_PATH' && /through the symlink "lib"/.test(e.message));
    w.writeBytes('f', Buffer.from('x'), meta, undefined);
    assert.throws(() => w.parents('f/g', 'fw/f/g'), (e: unknown) => e instanceof FussyError && e.code === 'UNSAFE_PATH' && /through the file "f"/.test(e.message));
  });

  it('planted-name: a name already on disk (a link planted in staging) is UNSAFE_PATH, never followed or replaced', async function () {
    const w = writer();
    w.mkdir('.');
    await symlink('/etc/passwd', w.abs('passwd'));
    assert.throws(() => w.writeBytes('passwd', Buffer.from('root::0:0::/:/bin/sh\n'), meta, undefined), (e: unknown) => e instanceof FussyError && e.code === 'UNSAFE_PATH' && /collides/.test(e.message));
    assert.equal(await readlink(w.abs('passwd')), '/etc/passwd');
  });

  it('disk-charge: a write that would pass maxWrite is NO_SPACE before its bytes are written (4 KiB blocks)', async function () {
    const w = writer({ maxWrite: 3 * 4096 });
    w.mkdir('.');
    w.writeBytes('a', Buffer.alloc(4096), meta, undefined);
    assert.throws(() => w.writeBytes('b', Buffer.alloc(4097), meta, undefined), (e: unknown) => e instanceof FussyError && e.code === 'NO_SPACE');
    await assert.rejects(lstat(w.abs('b')), /ENOENT/);
    w.hardlink('c', 'a'); // links cost no blocks
  });

  it('entry-flood: more nodes than maxEntries is BAD_ARCHIVE, whatever the archive claims', function () {
    const w = writer({ maxEntries: 3 });
    w.mkdir('.');
    w.mkdir('a');
    w.mkdir('b');
    w.mkdir('c');
    assert.throws(() => w.mkdir('d'), (e: unknown) => e instanceof FussyError && e.code === 'BAD_ARCHIVE' && /more than 3 files/.test(e.message));
  });
});
