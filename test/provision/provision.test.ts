import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspectKeys, install, pack, status, verify } from '../../src/index.js';
import { provision } from '../../src/provision/provision.js';
import { cli } from '../helpers/cli.js';
import { makeTmp } from '../helpers/tmp.js';
import { snapshotTree, writeTree } from '../helpers/tree.js';
import { FACTORY, miniRoot, rejection, site, writeConfig, type Site } from './helpers.js';

describe('fussy provision CONFIG --root DIR: a root file system made a fussy device', function () {
  let s: Site;
  let dir: string;
  let root: string;

  before(async function () {
    s = await site();
  });
  beforeEach(async function () {
    dir = await makeTmp('fussy-prov-');
    root = await miniRoot(dir);
  });

  it('makes the keyring and a device key, installs the factory package as current and failsafe, links, configures fussyd with its certificate, enables it; hooks run chrooted', async function () {
    const conf = writeConfig(dir, s);
    const r = await provision({ config: conf, root });
    assert.equal(r.dryRun, false);
    assert.ok(r.changes >= 10, JSON.stringify(r.steps));
    const keys = join(root, 'etc/fussy/keys');
    const names = readdirSync(keys).sort();
    const deviceKey = names.find((n) => /^device-[0-9A-F]{16}\.key$/.test(n));
    assert.ok(deviceKey !== undefined, names.join(' '));
    assert.equal(statSync(join(keys, deviceKey)).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(keys, 'policy'), 'utf8'), 'legacy = refuse\n');
    assert.equal(readFileSync(join(keys, 'device-type'), 'utf8'), 'acme-gw\n');
    assert.ok(names.some((n) => /^signing-[0-9A-F]{16}\.asc$/.test(n)));
    // The public half for the build server, next to the config.
    assert.equal(r.devicePublicKey, join(dir, 'site', `${r.device}.device.asc`));
    const [pub] = await inspectKeys(r.devicePublicKey);
    const [sec] = await inspectKeys(join(keys, deviceKey));
    assert.equal(pub?.secret, false);
    assert.equal(pub?.fingerprint, sec?.fingerprint);

    const target = join(root, 'opt/firmware');
    assert.equal(readlinkSync(join(target, 'current')), 'factory-1');
    const a = statSync(join(target, 'factory-1/share/data.bin'));
    const b = statSync(join(target, 'failsafe/share/data.bin'));
    assert.equal(a.ino, b.ino, 'failsafe shares the factory release\'s files');
    assert.equal(statSync(join(target, 'failsafe/bin/app')).mode & 0o777, 0o755);
    assert.ok(lstatSync(join(target, 'failsafe/.pre-install')).isFile());
    const [report] = (await verify({ target, names: ['failsafe'] })).reports;
    assert.equal(report?.manifest, true, 'failsafe carries the factory manifest');
    assert.deepEqual(report?.findings, [], 'and matches it');
    // The hook ran inside the root, with the device's paths.
    assert.equal(readFileSync(join(root, 'hook-ran'), 'utf8'), '/opt/firmware/factory-1 False /opt/firmware\n');
    assert.equal(existsSync('/hook-ran'), false);

    assert.equal(readlinkSync(join(root, 'etc/app.conf')), '/opt/firmware/current/etc/app.conf');
    assert.equal(readlinkSync(join(root, 'etc/cron.d/backup')), '/opt/firmware/current/etc/cron.d/backup');
    assert.equal(readFileSync(join(root, 'etc/hostname.fussy-orig'), 'utf8'), 'debian\n');

    const conf2 = readFileSync(join(root, 'etc/fussy/fussyd.conf'), 'utf8');
    assert.match(conf2, /^listen = 127\.0\.0\.1:6808$/m);
    assert.deepEqual(JSON.parse(readFileSync(join(root, 'etc/fussy/roles.json'), 'utf8')), { admin: ['alice'], operator: ['ops-1', 'ops-2'], viewer: [] });
    const ca = new X509Certificate(readFileSync(join(s.caDir, 'ca.crt')));
    const cert = new X509Certificate(readFileSync(join(root, 'etc/fussy/tls/server.crt')));
    assert.equal(cert.subject, `CN=${r.device}`);
    assert.ok(cert.verify(ca.publicKey));
    assert.match(cert.subjectAltName ?? '', /IP Address:10\.0\.0\.7/);
    assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(join(root, 'etc/fussy/tls/server.key')))));
    assert.equal(statSync(join(root, 'etc/fussy/tls/server.key')).mode & 0o777, 0o600);
    assert.deepEqual(readFileSync(join(root, 'etc/fussy/tls/client-ca.crt')), readFileSync(join(s.caDir, 'ca.crt')));
    assert.equal(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/fussyd.service')), '/usr/lib/systemd/system/fussyd.service');
    // The CA keeps no copy of the device's key.
    assert.equal(existsSync(join(s.caDir, 'issued', r.device)), false);

    // The device works: an update encrypted to its exported public key installs with its keyring.
    const tree2 = await writeTree(join(dir, 'build', 'factory-2'), [...FACTORY.filter((f) => f.path !== '.pre-install'), { path: 'bin/app', content: '#!/bin/sh\necho app 2\n', mode: 0o755 }].filter((f, i, all) => all.findLastIndex((g) => g.path === f.path) === i));
    const update = await pack({ source: tree2, output: join(dir, 'out') + '/', tmpDir: dir, signingKeyFiles: [s.signingSecret], recipientKeyFiles: [r.devicePublicKey] });
    await install({ package: update.path, keyring: keys, target });
    assert.equal((await status({ target })).current, 'factory-2');
    assert.equal(statSync(join(target, 'factory-2/share/data.bin')).ino, b.ino, 'the update shares unchanged files with failsafe');
  });

  it('a second run changes nothing and says so', async function () {
    const conf = writeConfig(dir, s);
    await provision({ config: conf, root });
    const before = await snapshotTree(root, { inodes: true });
    const site1 = await snapshotTree(join(dir, 'site'), { inodes: true });
    const r = await cli('fussy', ['provision', conf, '--root', root]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /nothing to do: .* is provisioned as .* says/);
    assert.match(r.stderr, /= factory release factory-1/);
    assert.deepEqual(await snapshotTree(root, { inodes: true }), before);
    assert.deepEqual(await snapshotTree(join(dir, 'site'), { inodes: true }), site1);
    assert.match(r.lastLine, /\/site\/gw-[0-9]+\.device\.asc$/);
  });

  it('--dry-run prints the plan and changes nothing, not even the key file next to the config', async function () {
    const conf = writeConfig(dir, s);
    const before = await snapshotTree(root, { inodes: true });
    const r = await cli('fussy', ['provision', conf, '--root', root, '--dry-run', '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { dryRun: boolean; changes: number; steps: { step: string; changed: string[] }[] };
    assert.equal(j.dryRun, true);
    assert.deepEqual(j.steps.map((x) => x.step), ['keyring', 'firmware', 'failsafe', 'link-tree', 'fussyd', 'enable']);
    assert.ok(j.steps.every((x) => x.changed.length > 0), r.stdout);
    assert.match(j.steps[3]?.changed[0] ?? '', /once the firmware is installed/);
    assert.deepEqual(await snapshotTree(root, { inodes: true }), before);
    assert.deepEqual(readdirSync(join(dir, 'site')), ['device.conf']);
  });

  it('refuses a root that holds something else (a policy, a fussyd.conf, an enable link), naming each, and changes nothing', async function () {
    const conf = writeConfig(dir, s);
    await mkdir(join(root, 'etc/fussy/keys'), { recursive: true });
    await writeFile(join(root, 'etc/fussy/keys/policy'), 'threshold = 1\n');
    await writeFile(join(root, 'etc/fussy/fussyd.conf'), 'listen = 0.0.0.0:1\n');
    await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
    await symlink('/dev/null', join(root, 'etc/systemd/system/multi-user.target.wants/fussyd.service'));
    const before = await snapshotTree(root, { inodes: true });
    const r = await cli('fussy', ['provision', conf, '--root', root]);
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, /3 things in .* differ from the config/);
    assert.match(r.stderr, /keyring: \/etc\/fussy\/keys\/policy holds something else/);
    assert.match(r.stderr, /fussyd: \/etc\/fussy\/fussyd\.conf holds something else/);
    assert.match(r.stderr, /enable: .*fussyd\.service is not the link systemctl enable makes/);
    assert.match(r.stderr, /nothing was changed/);
    assert.deepEqual(await snapshotTree(root, { inodes: true }), before);
  });

  it('a conflict found after the factory install stops there, names what is done and what is left; fixed, a second run finishes', async function () {
    const conf = writeConfig(dir, s, { replace: false });
    const err = await rejection(provision({ config: conf, root }));
    assert.equal(err.code, 'PROVISION_CONFLICT');
    assert.match(err.message, /stopped at link-tree: \/etc holds 1 entry that differs from the links to \/opt\/firmware\/current\/etc: \/etc\/hostname/);
    assert.match(err.hint ?? '', /done before it: keyring, firmware, failsafe; not done: link-tree, fussyd, enable/);
    assert.equal(existsSync(join(root, 'etc/app.conf')), false, 'no link of the entry was made');
    await rm(join(root, 'etc/hostname'));
    const r = await provision({ config: conf, root });
    assert.deepEqual(r.steps.filter((x) => x.changed.length > 0).map((x) => x.step), ['link-tree', 'fussyd', 'enable']);
    assert.equal(readlinkSync(join(root, 'etc/hostname')), '/opt/firmware/current/etc/hostname');
  });

  it('root-symlink-escape: an absolute symlink in the root is followed inside the root, never to the build host', async function () {
    // The host has a directory at the link's target; provisioning must not write there.
    const host = await makeTmp('fussy-host-etc-');
    await mkdir(join(root, 'etc/fussy'), { recursive: true });
    await symlink(host, join(root, 'etc/fussy/keys'));
    const r = await provision({ config: writeConfig(dir, s, { fussyd: false }), root });
    assert.ok(r.changes > 0);
    assert.deepEqual(readdirSync(host), []);
    assert.ok(readdirSync(join(root, host)).some((n) => n.startsWith('device-')), 'the keyring went to ROOT/<the link target>');
  });

  it('a package signed by a key the config does not trust is refused (exit 20) after the keyring step, which a second run keeps', async function () {
    const conf = writeConfig(dir, s, { package: s.rogueFactory });
    const r = await cli('fussy', ['provision', conf, '--root', root]);
    assert.equal(r.exitCode, 20, r.stderr);
    assert.match(r.stderr, /stopped at firmware/);
    assert.match(r.stderr, /done before it: keyring; not done: firmware, failsafe/);
    assert.equal(existsSync(join(root, 'opt/firmware/current')), false);
    const key = readdirSync(join(root, 'etc/fussy/keys')).find((n) => n.startsWith('device-'));
    const again = await cli('fussy', ['provision', conf, '--root', root]);
    assert.equal(again.exitCode, 20);
    assert.equal(readdirSync(join(root, 'etc/fussy/keys')).find((n) => n.startsWith('device-')), key, 'the device key is made once');
  });

  it('signing-secret-on-device: a trust file holding a secret key is refused before anything changes', async function () {
    const conf = writeConfig(dir, s);
    await writeFile(conf, readFileSync(conf, 'utf8').replace(`trust = ${s.signingPub}`, `trust = ${s.signingSecret}`));
    const before = await snapshotTree(root, { inodes: true });
    const err = await rejection(provision({ config: conf, root }));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /holds a secret key: a device trusts public keys only/);
    assert.deepEqual(await snapshotTree(root, { inodes: true }), before);
  });

  it('without the fussy package in the root, enabling fussyd is a conflict found before anything changes', async function () {
    const bare = await miniRoot(await makeTmp('fussy-prov-'), { unit: false });
    const before = await snapshotTree(bare, { inodes: true });
    const err = await rejection(provision({ config: writeConfig(dir, s), root: bare }));
    assert.equal(err.code, 'PROVISION_CONFLICT');
    assert.match(err.message, /fussyd\.service is not in .*: the fussy package is not installed there/);
    assert.deepEqual(await snapshotTree(bare, { inodes: true }), before);
    assert.deepEqual(readdirSync(join(dir, 'site')), ['device.conf']);
  });
});
