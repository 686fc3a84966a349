import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FussyError } from '../../src/index.js';
import { parseProvisionConfig } from '../../src/provision/config.js';

const DOC = fileURLToPath(new URL('../../../docs/provision.md', import.meta.url));
const FILE = '/srv/site/unit.conf';

const MINIMAL = '[device]\nname = u1\n[firmware]\npackage = f.tar.gz.gpg\n[keyring]\ntrust = k.asc\n';

function refused(text: string, re: RegExp, name?: string): void {
  assert.throws(
    () => parseProvisionConfig(text, FILE, name),
    (err: unknown) => err instanceof FussyError && err.code === 'CONFIG_INVALID' && re.test(err.message),
  );
}

describe('provisioning config: parsed strictly, every mistake named at file:line', function () {
  it("docs/provision.md's example is a config that parses, with every key it shows", function () {
    const text = /```ini\n([\s\S]*?)```/.exec(readFileSync(DOC, 'utf8'))?.[1] ?? '';
    const c = parseProvisionConfig(text, FILE);
    assert.equal(c.device.name, 'unit-17');
    assert.equal(c.firmware.package, '/srv/site/factory-2026.12.tar.gz.gpg', 'host files are relative to the config');
    assert.deepEqual(c.keyring.trust, ['/srv/site/release-signing.asc']);
    assert.equal(c.keyring.threshold, 2);
    assert.deepEqual(c.links, [{ source: '/opt/firmware/current/etc', dest: '/etc' }]);
    assert.equal(c.linkReplace, true);
    assert.deepEqual(c.fussyd?.settings, [['listen', '0.0.0.0:6808'], ['run-as', 'root']]);
    assert.equal(c.fussyd?.ca, '/srv/site/fleet-ca');
    assert.deepEqual(c.fussyd?.roles, { viewer: ['noc'], operator: ['ops-1', 'ops-2'], admin: ['alice'] });
  });

  it('defaults: target /opt/firmware, keyring /etc/fussy/keys, a device key, no fussyd; --device-name wins', function () {
    const c = parseProvisionConfig(MINIMAL, FILE, 'unit-2');
    assert.equal(c.device.name, 'unit-2');
    assert.equal(c.firmware.target, '/opt/firmware');
    assert.equal(c.keyring.dir, '/etc/fussy/keys');
    assert.equal(c.keyring.deviceKey, true);
    assert.equal(c.fussyd, undefined);
  });

  it("fussyd installs with the keyring and into the target provision sets up: a non-default one is written to fussyd.conf", function () {
    const c = parseProvisionConfig(`${MINIMAL.replace('[keyring]\n', '[keyring]\ndir = /etc/acme/keys\n')}[fussyd]\nca = ca\n`, FILE);
    assert.deepEqual(c.fussyd?.settings, [['keyring', '/etc/acme/keys']]);
    assert.equal(c.fussyd?.daemon.keyring, '/etc/acme/keys');
    const same = parseProvisionConfig(`${MINIMAL.replace('[keyring]\n', '[keyring]\ndir = /etc/acme/keys\n')}[fussyd]\nca = ca\nkeyring = /etc/acme/keys/\n`, FILE);
    assert.deepEqual(same.fussyd?.settings, [['keyring', '/etc/acme/keys']], 'the same directory spelled with a slash');
  });

  it('refuses an unknown section or key, a key set twice, a missing required key, each with file:line', function () {
    refused(`${MINIMAL}[network]\n`, /unit\.conf:7: unknown section \[network\]/);
    refused(`${MINIMAL}colour = blue\n`, /unit\.conf:7: unknown key "colour" in \[keyring\]/);
    refused(MINIMAL.replace('name = u1\n', 'name = u1\nname = u2\n'), /unit\.conf:3: "name" is set twice in \[device\] \(first at .*unit\.conf:2\)/);
    refused('[device]\nname = u1\n[keyring]\ntrust = k\n', /\[firmware\] package is required/);
    refused('[device]\nname = u1\n[firmware]\npackage = p\n[keyring]\n', /names no signing key to trust/);
    refused('name = u1\n', /a key before the first \[section\]/);
  });

  it('refuses relative device paths, bad names and values, and a fussyd.conf key fussyd would refuse', function () {
    refused(`${MINIMAL}[link-tree]\nlink = etc /etc\n`, /unit\.conf:8: "etc" is not an absolute path on the device/);
    refused(`${MINIMAL}[link-tree]\nlink = /a\n`, /is not "SOURCE DEST"/);
    refused(MINIMAL.replace('[firmware]\n', '[firmware]\ntarget = opt/firmware\n'), /not an absolute path on the device/);
    refused(MINIMAL, /"\.\.\/x" is not a device name/, '../x');
    refused(`${MINIMAL}threshold = 0\n`, /threshold must be a whole number >= 1/);
    refused(`${MINIMAL}device-key = maybe\n`, /"maybe" is not yes or no/);
    refused(`${MINIMAL}[fussyd]\nca = ca\nlisten = everywhere\n`, /unit\.conf:9: "everywhere" is not HOST:PORT/);
    refused(`${MINIMAL}[fussyd]\nca = ca\nmax-runs = lots\n`, /unit\.conf:9: "lots" is not a whole number/);
    refused(`${MINIMAL}[fussyd]\nlisten = 0.0.0.0:1\n`, /\[fussyd\] ca is required/);
    refused(`${MINIMAL}[fussyd]\nca = ca\n[roles]\nadmin = al$ice\n`, /"al\$ice" is not a certificate CN/);
    refused(`${MINIMAL}[roles]\nadmin = alice\n`, /\[roles\] without \[fussyd\]/);
    refused(`${MINIMAL}[fussyd]\nca = ca\nsan = not a name\n`, /unit\.conf:9: san "not a name" is neither a DNS name nor an IP address/);
    refused(`${MINIMAL}[fussyd]\nca = ca\nsan = fe80::1%eth0\n`, /san "fe80::1%eth0" is neither/);
    refused(`${MINIMAL}[fussyd]\nca = ca\nsan = 001.2.3.4\n`, /san "001\.2\.3\.4" is neither/);
    refused(`${MINIMAL}[fussyd]\nca = ca\n`, /the device name "unit_1" is not a DNS name/, 'unit_1');
    refused(`${MINIMAL}[fussyd]\nca = ca\nkeyring = /etc/other\n`, /\[fussyd\] keyring = \/etc\/other is not the \[keyring\] dir \/etc\/fussy\/keys/);
  });
});
