import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as openpgp from 'openpgp';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pack, pkiRevoke } from '../../src/index.js';
import { provision } from '../../src/provision/provision.js';
import { rawTar, signPayload } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree, writeTree } from '../helpers/tree.js';
import { FACTORY, miniRoot, rejection, site, writeConfig, type Site } from './helpers.js';

/** Provision must stop before changing anything, with this conflict named. */
async function conflictOnly(conf: string, root: string, re: RegExp): Promise<void> {
  const before = await snapshotTree(root, { inodes: true });
  const err = await rejection(provision({ config: conf, root }));
  assert.equal(err.code, 'PROVISION_CONFLICT', err.message);
  assert.match(err.message, re);
  assert.deepEqual(await snapshotTree(root, { inodes: true }), before);
}

describe('fussy provision: what a root, a config or a stop half way cannot make it do', function () {
  let s: Site;
  let dir: string;
  let root: string;

  before(async function () {
    s = await site();
  });
  beforeEach(async function () {
    dir = await makeTmp('fussy-prov-attack-');
    root = await miniRoot(dir);
  });

  it('state-dir-link-escape: a target whose .fussy is a link (to a host directory) is refused; the host directory stays empty', async function () {
    const host = await makeTmp('fussy-host-state-');
    await mkdir(join(root, 'opt/firmware'), { recursive: true });
    await symlink(host, join(root, 'opt/firmware/.fussy'));
    await conflictOnly(writeConfig(dir, s), root, /\/opt\/firmware\/\.fussy is not a directory \(a link\?\)/);
    assert.deepEqual(readdirSync(host), []);
  });

  it('keyring-planted-key: a signing key, a policy or a linked device key the config does not declare is a conflict, never kept or read', async function () {
    const keys = join(root, 'etc/fussy/keys');
    mkdirSync(keys, { recursive: true });
    copyFileSync(s.signingPub, join(keys, 'signing-AAAAAAAAAAAAAAAA.asc'));
    writeFileSync(join(keys, 'policy'), 'legacy = allow\n');
    await symlink(s.signingSecret, join(keys, 'device-0000000000000000.key'));
    const conf = writeConfig(dir, s);
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('legacy = refuse\n', ''));
    await conflictOnly(conf, root, /device-0000000000000000\.key is in the keyring, and this config does not declare it[\s\S]*keys\/policy is in the keyring[\s\S]*signing-AAAAAAAAAAAAAAAA\.asc is in the keyring/);
    assert.deepEqual(readdirSync(join(dir, 'site')), ['device.conf'], 'no public key exported from a planted one');
  });

  it('the same key given twice in trust is one file', async function () {
    const conf = writeConfig(dir, s, { fussyd: false });
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(`trust = ${s.signingPub}\n`, `trust = ${s.signingPub}\ntrust = ${s.signingPub}\n`));
    await provision({ config: conf, root });
    assert.equal(readdirSync(join(root, 'etc/fussy/keys')).filter((n) => n.startsWith('signing-')).length, 1);
  });

  it('san-exact: a certificate for 10.0.0.17 does not pass for 10.0.0.1; IPv6 and upper-case names are found again by a second run', async function () {
    const conf = writeConfig(dir, s, { extra: '' });
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('san = 10.0.0.7', 'san = 10.0.0.17\nsan = 2001:DB8::1\nsan = Unit-UP.Example'));
    await provision({ config: conf, root });
    assert.equal((await provision({ config: conf, root })).changes, 0, 'provisioned once, found as provisioned');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('san = 10.0.0.17', 'san = 10.0.0.1'));
    await conflictOnly(conf, root, /server\.crt names .*, not the names this config gives/);
  });

  it('a revoked server certificate is not taken as done', async function () {
    const conf = writeConfig(dir, s);
    const r = await provision({ config: conf, root });
    await pkiRevoke({ dir: s.caDir, name: r.device });
    await conflictOnly(conf, root, /server\.crt was revoked/);
  });

  it('stopped while placing the certificate (both files staged, or the key placed and the certificate staged): a second run puts them in place', async function () {
    const conf = writeConfig(dir, s);
    const r = await provision({ config: conf, root });
    const tls = join(root, 'etc/fussy/tls');
    const stage = join(tls, '.fussy-provision-tls');
    mkdirSync(stage);
    renameSync(join(tls, 'server.crt'), join(stage, `${r.device}.crt`));
    const again = await provision({ config: conf, root });
    assert.deepEqual(again.steps.find((x) => x.step === 'fussyd')?.changed, [`put the server certificate CN=${r.device}, issued by an earlier run, into /etc/fussy/tls/server.crt`]);
    assert.ok(existsSync(join(tls, 'server.crt')));
    assert.equal(existsSync(stage), false);
    assert.equal((await provision({ config: conf, root })).changes, 0);
  });

  it('a failsafe that is not a directory (a dangling link) is a conflict, not done', async function () {
    await mkdir(join(root, 'opt/firmware'), { recursive: true });
    const conf = writeConfig(dir, s, { fussyd: false });
    await provision({ config: conf, root });
    const target = join(root, 'opt/firmware');
    renameSync(join(target, 'failsafe'), join(dir, 'failsafe-moved'));
    await symlink('/nonexistent', join(target, 'failsafe'));
    await conflictOnly(conf, root, /\/opt\/firmware\/failsafe is not a directory/);
  });

  it('a factory hook that edits its release in place stops provision before failsafe would share the edited file', async function () {
    const tree = await writeTree(join(dir, 'build', 'factory-edit'), [...FACTORY.filter((f) => f.path !== '.pre-install'), { path: '.post-install', content: '#!/bin/sh\necho edited >> "$1/etc/app.conf"\n', mode: 0o755 }]);
    const pkg = (await pack({ source: tree, output: join(dir, 'pkgs') + '/', tmpDir: dir, signingKeyFiles: [s.signingSecret] })).path;
    const err = await rejection(provision({ config: writeConfig(dir, s, { package: pkg, fussyd: false }), root }));
    assert.match(err.message, /stopped at failsafe: the factory release factory-edit no longer matches its package \(etc\/app\.conf\)/);
    assert.equal(existsSync(join(root, 'opt/firmware/failsafe')), false);
  });

  it('device-key-clone: a device key in the root whose public half is not next to the config (a cloned image, a planted key) is a conflict, never exported', async function () {
    const other = await makeTmp('fussy-prov-other-');
    await provision({ config: writeConfig(other, s, { fussyd: false }), root: await miniRoot(other) });
    const keys = join(root, 'etc/fussy/keys');
    mkdirSync(keys, { recursive: true });
    const cloned = readdirSync(join(other, 'root/etc/fussy/keys')).find((n) => n.startsWith('device-')) as string;
    copyFileSync(join(other, 'root/etc/fussy/keys', cloned), join(keys, cloned));
    await conflictOnly(writeConfig(dir, s, { fussyd: false }), root, new RegExp(`${cloned} is a device key, and .*\\.device\\.asc .* is not there: it was not made by this provisioning`));
    assert.deepEqual(readdirSync(join(dir, 'site')), ['device.conf']);
  });

  it('with device-key = no, a device key in the keyring is undeclared, not kept', async function () {
    const keys = join(root, 'etc/fussy/keys');
    mkdirSync(keys, { recursive: true });
    writeFileSync(join(keys, 'device-0123456789ABCDEF.key'), 'planted\n');
    const conf = writeConfig(dir, s, { fussyd: false });
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('legacy = refuse\n', 'legacy = refuse\ndevice-key = no\n'));
    await conflictOnly(conf, root, /device-0123456789ABCDEF\.key is in the keyring, and this config does not declare it/);
  });

  it('tls-stage-link: a certificate stage that is a link (to a host directory holding a valid pair) is a conflict; the host directory keeps its files', async function () {
    const host = await makeTmp('fussy-host-tls-');
    writeFileSync(join(host, 'keep'), 'host file\n');
    mkdirSync(join(root, 'etc/fussy/tls'), { recursive: true });
    await symlink(host, join(root, 'etc/fussy/tls/.fussy-provision-tls'));
    await conflictOnly(writeConfig(dir, s), root, /\/etc\/fussy\/tls\/\.fussy-provision-tls is not a directory \(a link\?\)/);
    assert.deepEqual(readdirSync(host), ['keep']);
  });

  it('a stage holding only a key (a stop inside the issue) is named in the conflict; a stage left after the certificate was placed is removed by the next run', async function () {
    const conf = writeConfig(dir, s);
    const r = await provision({ config: conf, root });
    const stage = join(root, 'etc/fussy/tls/.fussy-provision-tls');
    mkdirSync(stage);
    const again = await provision({ config: conf, root });
    assert.match(again.steps.find((x) => x.step === 'fussyd')?.changed.join() ?? '', /remove \/etc\/fussy\/tls\/\.fussy-provision-tls, left by a provisioning/);
    assert.equal(existsSync(stage), false);
    const tls = join(root, 'etc/fussy/tls');
    mkdirSync(stage);
    renameSync(join(tls, 'server.key'), join(stage, `${r.device}.key`));
    renameSync(join(tls, 'server.crt'), join(dir, 'server.crt'));
    await conflictOnly(conf, root, /fussyd: \/etc\/fussy\/tls\/\.fussy-provision-tls the certificate and its key are not both there as files; remove \/etc\/fussy\/tls\/\.fussy-provision-tls \(left by a provisioning that stopped half way\)/);
  });

  it('two trust files that begin with the same key but differ are a mistake in the config, not one silently dropped', async function () {
    const both = join(dir, 'both.asc');
    writeFileSync(both, `${readFileSync(s.signingPub, 'utf8')}\n${readFileSync(s.signingPub, 'utf8')}`);
    const conf = writeConfig(dir, s, { fussyd: false });
    writeFileSync(conf, readFileSync(conf, 'utf8').replace(`trust = ${s.signingPub}\n`, `trust = ${s.signingPub}\ntrust = ${both}\n`));
    const err = await rejection(provision({ config: conf, root }));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /both begin with the key .* but are different files/);
  });

  it("a target that is a fresh file system's root (an empty lost+found) is provisioned; a link inside a .fussy left there is a conflict", async function () {
    mkdirSync(join(root, 'opt/firmware/lost+found'), { recursive: true });
    const conf = writeConfig(dir, s, { fussyd: false });
    const other = await miniRoot(await makeTmp('fussy-prov-state-'));
    mkdirSync(join(other, 'opt/firmware/.fussy'), { recursive: true });
    await symlink('/etc/passwd', join(other, 'opt/firmware/.fussy/state.json'));
    await conflictOnly(conf, other, /\/opt\/firmware\/\.fussy\/state\.json is a link/);
    await provision({ config: conf, root });
    assert.equal(readlinkSync(join(root, 'opt/firmware/current')), 'factory-1');
  });

  it('a factory package of the original pipeline (no manifest, legacy = allow) gets a failsafe that is a copy, not links: nothing can check its files', async function () {
    const payload = rawTar([
      { path: 'legacy-1/', type: 'Directory' },
      { path: 'legacy-1/etc/', type: 'Directory' },
      { path: 'legacy-1/etc/app.conf', data: 'level = 1\n' },
    ]);
    const key = await openpgp.readPrivateKey({ armoredKey: readFileSync(s.signingSecret, 'utf8') });
    const pkg = await signPayload(join(dir, 'legacy-1.tar.gz.gpg'), payload, { signingKeys: [key] });
    const conf = writeConfig(dir, s, { package: pkg, fussyd: false });
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('legacy = refuse', 'legacy = allow'));
    await provision({ config: conf, root });
    const target = join(root, 'opt/firmware');
    assert.notEqual(statSync(join(target, 'failsafe/etc/app.conf')).ino, statSync(join(target, 'legacy-1/etc/app.conf')).ino);
    assert.equal(readFileSync(join(target, 'failsafe/etc/app.conf'), 'utf8'), 'level = 1\n');
  });
});
