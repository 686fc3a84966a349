import assert from 'node:assert/strict';
import { chmod, chown, mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { keygen } from '../../src/keyring/keygen.js';
import { pack } from '../../src/pack/pack.js';
import { deviceBeside, makeDevice, type Device } from '../helpers/device.js';
import { canSwitchUser, fussy, NOBODY, shAs } from '../helpers/other-user.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree, writeTree, type TreeNode } from '../helpers/tree.js';

/**
 * The directories fussy relies on as root (issue 10, class of items 1-4): the target, its
 * `.fussy/` state dir and the keyring, with every directory above them on their real path. A
 * local user who could write any of them is refused with exit 40 naming the path, its owner and
 * mode, before fussy reads or changes anything there.
 */
describe('security: directories fussy trusts (target, .fussy, keyring)', function () {
  let base: string;
  let dev: Device;
  let good: string;
  let evil: string;
  let n = 0;

  before(async function () {
    if (!canSwitchUser()) this.skip();
    base = await makeTmp();
    await chmod(base, 0o755);
    dev = await makeDevice(join(base, 'dev'), { factory: false });
    const src = await writeTree(join(base, 'build', 'fw-good'), [{ path: 'etc/version', content: 'good\n' }]);
    good = (await pack({ source: src, tmpDir: base, signingKeyFiles: [dev.signingKeyFile], output: join(base, 'good.gpg') })).path;
    // The attacker's own signing key and a package signed with it.
    const attacker = await keygen({ role: 'signing', name: 'Attacker', secretKeyFile: join(base, 'attacker', 'a.key'), publicKeyFile: join(base, 'attacker', 'a.asc') });
    const esrc = await writeTree(join(base, 'build', 'fw-evil'), [{ path: 'etc/version', content: 'evil\n' }]);
    evil = (await pack({ source: esrc, tmpDir: base, signingKeyFiles: [attacker.secretKeyFile], output: join(base, 'evil.gpg') })).path;
    await chmod(join(base, 'attacker'), 0o755);
    await chmod(attacker.publicKeyFile, 0o644);
  });

  /** A fresh device (factory `current`) with its own copy of the keyring. */
  async function device(): Promise<Device> {
    const d = await deviceBeside(dev, `d${n++}`);
    const keyring = join(d.dir, 'keys');
    await execa('cp', ['-a', dev.keyring, keyring]);
    return { ...d, keyring };
  }

  const install = (d: Device, pkg: string, keyring = d.keyring) => fussy(['install', pkg, '-k', keyring, '-t', d.target]);

  async function everything(dir: string): Promise<TreeNode[]> {
    return snapshotTree(dir, { inodes: true });
  }

  it('target-owned-by-user: a target another user owns (or can write, or lies under a directory they own) is refused before anything is made in it', async function () {
    const d = await device();
    await chown(d.target, NOBODY, NOBODY);
    const before = await everything(d.dir);
    for (const args of [['install', good, '-k', d.keyring], ['clean'], ['rollback'], ['recover'], ['status']]) {
      const r = await fussy([...args, '-t', d.target]);
      assert.equal(r.exitCode, 40, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`target ${d.target} is not safe to use: ${d.target} is owned by uid ${NOBODY} \\(nobody\\) \\(mode 0755\\); only root may own`));
      assert.match(r.stderr, new RegExp(`hint: chown root ${d.target}`));
    }
    assert.deepEqual(await everything(d.dir), before, 'nothing changed, no .fussy was made');
    assert.equal((await readdir(d.target)).includes('.fussy'), false);

    await chown(d.target, 0, 0);
    await chmod(d.target, 0o775);
    const g = await install(d, good);
    assert.equal(g.exitCode, 40);
    assert.match(g.stderr, new RegExp(`${d.target} is writable by its group \\(owner uid 0 \\(root\\), mode 0775\\)`));
    assert.match(g.stderr, new RegExp(`hint: chmod go-w ${d.target}`));

    // An ancestor the user owns: they could rename the whole target away and put their own there.
    const home = join(base, `home-${n}`);
    await mkdir(join(home, 'firmware', 'current'), { recursive: true });
    await chown(home, NOBODY, NOBODY);
    const a = await fussy(['install', good, '-k', d.keyring, '-t', join(home, 'firmware')]);
    assert.equal(a.exitCode, 40);
    assert.match(a.stderr, new RegExp(`target ${home}/firmware is not safe to use: ${home} is owned by uid ${NOBODY}`));
    assert.deepEqual(await readdir(join(home, 'firmware')), ['current']);
  });

  it('state-dir-symlink: a .fussy that leads into a directory another user owns is refused; nothing is written there', async function () {
    const d = await device();
    const theirs = join(base, `theirs-${n}`);
    await mkdir(theirs);
    await chown(theirs, NOBODY, NOBODY);
    await symlink(theirs, join(d.target, '.fussy'));
    const before = await everything(d.dir);
    const r = await install(d, good);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, new RegExp(`state directory ${d.target}/.fussy is not safe to use: ${theirs} is owned by uid ${NOBODY} \\(nobody\\)`));
    assert.deepEqual(await readdir(theirs), [], 'no lock, journal or staging in the user\'s directory');
    assert.deepEqual(await everything(d.dir), before);

    // The same as a directory the user owns.
    const d2 = await device();
    await mkdir(join(d2.target, '.fussy'));
    await chown(join(d2.target, '.fussy'), NOBODY, NOBODY);
    const r2 = await install(d2, good);
    assert.equal(r2.exitCode, 40);
    assert.match(r2.stderr, new RegExp(`${d2.target}/.fussy is owned by uid ${NOBODY}`));
    assert.deepEqual(await readdir(join(d2.target, '.fussy')), []);
  });

  it('state-dir: a missing .fussy is created 0755, owned by root', async function () {
    const d = await device();
    const r = await install(d, good);
    assert.equal(r.exitCode, 0, r.stderr);
    const st = (await everything(d.target)).find((x) => x.path === '.fussy');
    assert.equal(st?.mode, 0o755);
  });

  it('keyring-writable-by-user: a user who can write the keyring adds their key; the keyring is refused (exit 40 naming it), not their package installed', async function () {
    const d = await device();
    await chown(d.keyring, NOBODY, NOBODY);
    assert.equal((await shAs(`cp ${join(base, 'attacker', 'a.asc')} ${d.keyring}/attacker.asc`)).exitCode, 0);
    const before = await everything(d.dir);
    const r = await install(d, evil);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, new RegExp(`keyring ${d.keyring} is not safe to use: ${d.keyring} is owned by uid ${NOBODY} \\(nobody\\) \\(mode 0755\\)`));
    assert.deepEqual(await everything(d.dir), before, 'nothing installed, nothing changed');

    // Root's keyring, but writable by everyone / one file in it the user's / a group-writable policy.
    const cases: [string, (k: string) => Promise<unknown>, RegExp][] = [
      ['mode 0777', (k) => chmod(k, 0o777), /keys is writable by everyone \(owner uid 0 \(root\), mode 0777\)/],
      ['a key file of the user', async (k) => { await chmod(k, 0o777); await shAs(`cp ${join(base, 'attacker', 'a.asc')} ${k}/attacker.asc`); await chmod(k, 0o755); }, /attacker\.asc is owned by uid 65534 \(nobody\) \(mode 0644\)/],
      ['a group-writable policy', async (k) => { await execa('sh', ['-c', `echo 'threshold = 1' > ${k}/policy && chmod 0664 ${k}/policy`]); }, /policy is writable by its group \(owner uid 0 \(root\), mode 0664\)/],
    ];
    for (const [what, make, message] of cases) {
      const e = await device();
      await make(e.keyring);
      const snap = await everything(e.dir);
      const x = await install(e, good);
      assert.equal(x.exitCode, 40, `${what}: ${x.stderr}`);
      assert.match(x.stderr, message, what);
      assert.deepEqual(await everything(e.dir), snap, what);
    }
  });

  it('keyring-symlink-into-user-dir: /etc/fussy -> firmware: the real path is checked, so a release directory a service user owns cannot supply keys; all root\'s, it works', async function () {
    // the usual layout: /etc/fussy -> /opt/firmware/current/etc/fussy.
    const layout = async (owner: number): Promise<{ d: Device; keyring: string; release: string }> => {
      const d = await device();
      const fw = join(d.dir, 'opt-firmware');
      const release = join(fw, 'fw-1');
      await mkdir(join(release, 'etc', 'fussy'), { recursive: true });
      await execa('cp', ['-a', d.keyring, join(release, 'etc', 'fussy', 'keys')]);
      await symlink('fw-1', join(fw, 'current'));
      await mkdir(join(d.dir, 'etc'));
      await symlink(join(fw, 'current', 'etc', 'fussy'), join(d.dir, 'etc', 'fussy'));
      await chown(release, owner, owner);
      return { d, keyring: join(d.dir, 'etc', 'fussy', 'keys'), release };
    };
    const bad = await layout(NOBODY);
    assert.equal((await shAs(`cp ${join(base, 'attacker', 'a.asc')} ${bad.release}/etc/fussy/keys/x.asc`)).exitCode, 1, 'the keys dir itself is root\'s...');
    const before = await everything(bad.d.dir);
    const r = await install(bad.d, good, bad.keyring);
    assert.equal(r.exitCode, 40, r.stderr);
    assert.match(r.stderr, new RegExp(`keyring ${bad.keyring} is not safe to use: ${bad.release} is owned by uid ${NOBODY} \\(nobody\\)`), '...but the user could rename it and put their own in its place');
    assert.deepEqual(await everything(bad.d.dir), before);

    const ok = await layout(0);
    const o = await install(ok.d, good, ok.keyring);
    assert.equal(o.exitCode, 0, o.stderr);
  });
});
