import assert from 'node:assert/strict';
import { chmod, chown, lchown, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { checkTrustedPath, ensureTrustedDir, setDirMode } from '../../src/util/trusted-path.js';
import { useTmp } from '../helpers/tmp.js';

const OTHER = 4321;

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FussyError, String(err));
    assert.equal(err.code, 'SETUP');
    assert.match(err.message, message);
    return true;
  });
}

describe('checkTrustedPath: every component of the real path root\'s or the caller\'s, none writable by others unless sticky', function () {
  const tmp = useTmp();
  before(function () {
    if (process.getuid?.() !== 0) this.skip(); // chown to other uids
  });

  it('accepts a chain of root-owned 0755 directories below the sticky /tmp and returns the real path through symlinks', async function () {
    await mkdir(join(tmp.dir, 'opt/fw-1/etc/fussy'), { recursive: true });
    await symlink('fw-1', join(tmp.dir, 'opt/current'));
    await mkdir(join(tmp.dir, 'etc'));
    await symlink('../opt/current/etc/fussy', join(tmp.dir, 'etc/fussy'));
    const r = checkTrustedPath(join(tmp.dir, 'etc/fussy'), { what: 'keyring' });
    assert.equal(r.real, join(tmp.dir, 'opt/fw-1/etc/fussy'));
    assert.equal(r.shared, false);
  });

  it('refuses a directory owned by someone else, naming it with owner and mode, wherever it is on the real path', async function () {
    await mkdir(join(tmp.dir, 'a/b/c'), { recursive: true });
    await chown(join(tmp.dir, 'a/b'), OTHER, OTHER);
    refused(() => checkTrustedPath(join(tmp.dir, 'a/b/c'), { what: 'target' }), new RegExp(`target ${tmp.dir}/a/b/c is not safe to use: ${tmp.dir}/a/b is owned by uid ${OTHER} \\(mode 0755\\)`));
    // ...also when reached through a symlink.
    await symlink(join(tmp.dir, 'a/b/c'), join(tmp.dir, 'link'));
    refused(() => checkTrustedPath(join(tmp.dir, 'link'), { what: 'target' }), new RegExp(`${tmp.dir}/a/b is owned by uid ${OTHER}`));
    // The owner themselves may use it.
    assert.equal(checkTrustedPath(join(tmp.dir, 'a/b/c'), { what: 'target', uid: OTHER }).real, join(tmp.dir, 'a/b/c'));
  });

  it('refuses group- or world-writable directories and files, unless a directory is sticky and its next component is root\'s or the caller\'s', async function () {
    await mkdir(join(tmp.dir, 'g/x'), { recursive: true });
    await chmod(join(tmp.dir, 'g'), 0o775);
    refused(() => checkTrustedPath(join(tmp.dir, 'g/x'), { what: 'target' }), /g is writable by its group \(owner uid 0 \(root\), mode 0775\)/);
    await chmod(join(tmp.dir, 'g'), 0o1777);
    assert.equal(checkTrustedPath(join(tmp.dir, 'g/x'), { what: 'target' }).shared, false);
    await chown(join(tmp.dir, 'g/x'), OTHER, OTHER);
    refused(() => checkTrustedPath(join(tmp.dir, 'g/x'), { what: 'target' }), new RegExp(`g/x is owned by uid ${OTHER} \\(mode 0755\\), inside ${tmp.dir}/g, which anyone can write to`));
    // A symlink another user planted in a sticky dir is not followed.
    await lchown(join(tmp.dir, 'g/x'), 0, 0);
    await symlink('x', join(tmp.dir, 'g/planted'));
    await lchown(join(tmp.dir, 'g/planted'), OTHER, OTHER);
    refused(() => checkTrustedPath(join(tmp.dir, 'g/planted'), { what: 'keyring' }), /g\/planted is owned by uid 4321/);
    await writeFile(join(tmp.dir, 'f'), 'x');
    await chmod(join(tmp.dir, 'f'), 0o646);
    refused(() => checkTrustedPath(join(tmp.dir, 'f'), { what: 'keyring' }), /f is writable by everyone \(owner uid 0 \(root\), mode 0646\)/);
  });

  it('a shared (sticky, world-writable) directory is itself accepted only with allowShared', async function () {
    await mkdir(join(tmp.dir, 's'), { mode: 0o755 });
    await chmod(join(tmp.dir, 's'), 0o1777);
    refused(() => checkTrustedPath(join(tmp.dir, 's'), { what: 'keyring' }), /s can be written by other users \(owner uid 0 \(root\), mode 1777\), like \/tmp/);
    assert.equal(checkTrustedPath(join(tmp.dir, 's'), { what: 'lock directory', allowShared: true }).shared, true);
  });

  it('resolves .. in link targets the way the kernel does, and refuses link loops', async function () {
    await mkdir(join(tmp.dir, 'x/y'), { recursive: true });
    await mkdir(join(tmp.dir, 'mine'));
    await chown(join(tmp.dir, 'mine'), OTHER, OTHER);
    await symlink(join(tmp.dir, 'mine'), join(tmp.dir, 'x/y/up'));
    // In a link target, up/.. is tmp.dir (the parent of `mine`), not x/y; `mine` is checked on the way.
    await symlink('up/../x', join(tmp.dir, 'x/y/via'));
    refused(() => checkTrustedPath(join(tmp.dir, 'x/y/via'), { what: 'target' }), /x\/y\/via is not safe to use: .*\/mine is owned by uid 4321/);
    await chown(join(tmp.dir, 'mine'), 0, 0);
    assert.equal(checkTrustedPath(join(tmp.dir, 'x/y/via'), { what: 'target' }).real, join(tmp.dir, 'x'));
    await symlink('loop2', join(tmp.dir, 'loop1'));
    await symlink('loop1', join(tmp.dir, 'loop2'));
    refused(() => checkTrustedPath(join(tmp.dir, 'loop1'), { what: 'target' }), /too many levels of symbolic links/);
  });

  it('a missing path is SETUP "does not exist" with the caller\'s hint; a file in the middle is "not a directory"', async function () {
    refused(() => checkTrustedPath(join(tmp.dir, 'nope'), { what: 'keyring', missingHint: 'install it' }), /keyring .*nope does not exist/);
    await writeFile(join(tmp.dir, 'file'), 'x');
    refused(() => checkTrustedPath(join(tmp.dir, 'file/sub'), { what: 'target' }), /file is not a directory/);
  });

  it('refusals carry the caller\'s codes (the keyring\'s, the target\'s), SETUP when it gives none', async function () {
    const codes = { untrusted: 'TARGET_UNTRUSTED', missing: 'TARGET_MISSING' } as const;
    assert.throws(() => checkTrustedPath(join(tmp.dir, 'nope'), { what: 'target', codes }), { code: 'TARGET_MISSING' });
    await mkdir(join(tmp.dir, 'open'));
    await chmod(join(tmp.dir, 'open'), 0o777);
    assert.throws(() => checkTrustedPath(join(tmp.dir, 'open'), { what: 'target', codes }), { code: 'TARGET_UNTRUSTED' });
    assert.throws(() => ensureTrustedDir(join(tmp.dir, 'open/sub'), { what: 'target', codes, mode: 0o755 }), { code: 'TARGET_UNTRUSTED' });
  });

  it('ensureTrustedDir creates missing directories with exactly the mode asked, whatever the umask, and refuses what is in the way', async function () {
    const old = process.umask(0o077);
    try {
      const r = ensureTrustedDir(join(tmp.dir, 'new/a/b'), { what: 'lock directory', mode: 0o755 });
      assert.equal(r.real, join(tmp.dir, 'new/a/b'));
      for (const p of ['new', 'new/a', 'new/a/b']) assert.equal((await stat(join(tmp.dir, p))).mode & 0o7777, 0o755, p);
    } finally {
      process.umask(old);
    }
    await writeFile(join(tmp.dir, 'plain'), 'x');
    refused(() => ensureTrustedDir(join(tmp.dir, 'plain'), { what: 'lock directory', mode: 0o755 }), /plain is not a directory/);
  });

  it('setDirMode changes a directory through a descriptor only if it is the owner\'s, and never through a symlink', async function () {
    await mkdir(join(tmp.dir, 'd'), { mode: 0o755 });
    await chmod(join(tmp.dir, 'd'), 0o777);
    await symlink(join(tmp.dir, 'd'), join(tmp.dir, 'l'));
    assert.equal(setDirMode(join(tmp.dir, 'l'), 0o700, 0), false);
    assert.equal((await stat(join(tmp.dir, 'd'))).mode & 0o7777, 0o777);
    assert.equal(setDirMode(join(tmp.dir, 'd'), 0o700, OTHER), false);
    assert.equal(setDirMode(join(tmp.dir, 'd'), 0o700, 0), true);
    assert.equal((await stat(join(tmp.dir, 'd'))).mode & 0o7777, 0o700);
  });
});
