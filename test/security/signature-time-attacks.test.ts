import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { installInto, makeDevice, type Device } from '../helpers/device.js';
import { gpgHome, statusTokens, type GpgHome } from '../helpers/gpg.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree } from '../helpers/tree.js';
import { assertRefused } from './helpers.js';

const DAY = 86400;
const now = (): number => Math.floor(Date.now() / 1000);
/** gpg's clock frozen at `t` (seconds since the epoch). */
const at = (t: number): string[] => ['--faked-system-time', `${t}!`];

/**
 * Signature times, against real gpg and gpgv on the same package: the signer's key made by gpg
 * ten days ago (faked clock), packages made by the original pipeline (`tar czf - | gpg --sign`),
 * the key's public half exported into the device keyring.
 */
describe('security: signature times (expired signatures, post-dated signatures, expired and revoked keys)', function () {
  let dev: Device;
  let g: GpgHome;
  let fpr: string;
  let tgz: Buffer;

  /** gpg's exit code and status tokens for `pkg`, with `gpg --verify` and with `gpgv`. */
  async function gpgVerdicts(pkg: string, pubring: string): Promise<{ gpg: number; gpgTokens: string[]; gpgv: number; gpgvTokens: string[] }> {
    const a = await g.gpg(['--status-fd', '2', '--verify', pkg]);
    const b = await execa('gpgv', ['--status-fd', '2', '--keyring', pubring, pkg], { reject: false, env: { GNUPGHOME: g.home } });
    return { gpg: a.exitCode, gpgTokens: statusTokens(a.stderr), gpgv: b.exitCode ?? -1, gpgvTokens: statusTokens(String(b.stderr)) };
  }

  /** Export the key `uid` of the gpg home as a keyring file of `d` (and as gpgv's keyring). */
  async function trust(d: Device, uid: string, name: string): Promise<string> {
    const pub = (await g.gpg(['--export', uid])).stdout;
    await writeFile(join(d.keyring, `${name}.gpg`), pub);
    const ring = join(d.dir, `${name}.gpgv.gpg`);
    await writeFile(ring, pub);
    return ring;
  }

  async function signedPackage(name: string, args: string[], uid = 'timer@example.com'): Promise<string> {
    const r = await g.gpg(['--sign', '-u', uid, ...args], tgz);
    assert.equal(r.exitCode, 0, r.stderr);
    const f = join(dev.dir, name);
    await writeFile(f, r.stdout);
    return f;
  }

  let pubring: string;
  before(async function () {
    dev = await makeDevice(await makeTmp());
    g = await gpgHome(dev.dir);
    const made = await g.gpg([...at(now() - 10 * DAY), '--quick-gen-key', 'Timer <timer@example.com>', 'ed25519', 'sign', 'never']);
    assert.equal(made.exitCode, 0, made.stderr);
    const colons = (await g.gpg(['--with-colons', '--list-keys', 'timer@example.com'])).stdout.toString();
    fpr = (colons.split('\n').find((l) => l.startsWith('fpr:')) as string).split(':')[9] as string;
    await writeTree(join(dev.dir, 'build', 'fw-time'), [{ path: 'etc/version', content: 'time\n' }]);
    tgz = (await execa('tar', ['czf', '-', 'fw-time'], { cwd: join(dev.dir, 'build'), encoding: 'buffer', stripFinalNewline: false })).stdout as unknown as Buffer;
    pubring = await trust(dev, 'timer@example.com', 'timer');
  });

  it('expired-signature: a signature past its own expiration time (gpg --default-sig-expire 1d, made 9 days ago) is refused naming the key and the time; gpg and gpgv refuse it too (EXPSIG)', async function () {
    const made = now() - 9 * DAY;
    const pkg = await signedPackage('expired-sig.gpg', [...at(made), '--default-sig-expire', '1d']);
    const expires = new Date((made + DAY) * 1000).toISOString();
    await assertRefused(dev, pkg, 'BAD_SIGNATURE', new RegExp(`signature by ${fpr} expired at ${expires.replace(/\./g, '\\.')}`));
    const v = await gpgVerdicts(pkg, pubring);
    assert.notEqual(v.gpg, 0, 'gpg --verify accepts it');
    assert.notEqual(v.gpgv, 0, 'gpgv accepts it');
    assert.ok(v.gpgTokens.some((t) => t.startsWith(`EXPSIG `)), v.gpgTokens.join('\n'));
    assert.ok(v.gpgvTokens.some((t) => t.startsWith(`EXPSIG `)), v.gpgvTokens.join('\n'));
  });

  it('expired-signature control: the same key signing at the same time with an expiry still ahead installs, as gpg and gpgv accept it (GOODSIG)', async function () {
    const pkg = await signedPackage('valid-sig.gpg', [...at(now() - 9 * DAY), '--default-sig-expire', '30d']);
    const r = await installInto(dev, pkg);
    assert.match(r.release, /^fw-time/);
    assert.deepEqual(r.signers, [fpr]);
    const v = await gpgVerdicts(pkg, pubring);
    assert.deepEqual([v.gpg, v.gpgv], [0, 0]);
    assert.ok(v.gpgTokens.some((t) => t.startsWith('GOODSIG ')));
  });

  it('expired-signature, device clock before the signature was made: accepted, it cannot be told from a clock that is behind (same rule as for key expiry: checked at max(device clock, signature time))', async function () {
    const made = now() - 9 * DAY;
    const pkg = await signedPackage('expired-sig-1970.gpg', [...at(made), '--default-sig-expire', '1d']);
    const r = await installInto(dev, pkg, { now: new Date(0) });
    assert.deepEqual(r.signers, [fpr]);
    // One hour after it was made, it had not expired yet: gpg with that clock accepts it too.
    const v = await g.gpg([...at(made + 3600), '--status-fd', '2', '--verify', pkg]);
    assert.equal(v.exitCode, 0, v.stderr);
  });

  it('post-dated-signature: a signature made a day after the device clock is accepted, as gpg and gpgv accept it (no clock-skew refusal: post-dating can only bring a key\'s expiry or revocation nearer)', async function () {
    const pkg = await signedPackage('future-sig.gpg', at(now() + DAY));
    const r = await installInto(dev, pkg);
    assert.deepEqual(r.signers, [fpr]);
    const v = await gpgVerdicts(pkg, pubring);
    assert.deepEqual([v.gpg, v.gpgv], [0, 0], 'gpg refuses a post-dated signature now: revisit the decision');
    assert.ok(v.gpgTokens.some((t) => t.startsWith('GOODSIG ')));
  });

  it('expired-signing-key: a signature made while the key was valid, installed after it expired, is refused; gpg and gpgv only warn (EXPKEYSIG, exit 0): fussy is stricter on purpose', async function () {
    const made = await g.gpg([...at(now() - 10 * DAY), '--quick-gen-key', 'Brief <brief@example.com>', 'ed25519', 'sign', '1d']);
    assert.equal(made.exitCode, 0, made.stderr);
    const ring = await trust(dev, 'brief@example.com', 'brief');
    const pkg = await signedPackage('expired-key.gpg', at(now() - 10 * DAY + 3600), 'brief@example.com');
    await assertRefused(dev, pkg, 'BAD_SIGNATURE', /signature check failed/);
    const v = await gpgVerdicts(pkg, ring);
    assert.deepEqual([v.gpg, v.gpgv], [0, 0]);
    assert.ok(v.gpgTokens.some((t) => t.startsWith('EXPKEYSIG ')), v.gpgTokens.join('\n'));
  });

  it('revoked-signing-key: a signature by a key whose revocation is in the keyring is refused; gpg and gpgv only warn (REVKEYSIG, exit 0): fussy is stricter on purpose', async function () {
    const made = await g.gpg(['--quick-gen-key', 'Gone <gone@example.com>', 'ed25519', 'sign', 'never']);
    assert.equal(made.exitCode, 0, made.stderr);
    const pkg = await signedPackage('revoked-key.gpg', [], 'gone@example.com');
    const colons = (await g.gpg(['--with-colons', '--list-keys', 'gone@example.com'])).stdout.toString();
    const gone = (colons.split('\n').find((l) => l.startsWith('fpr:')) as string).split(':')[9] as string;
    // The revocation certificate gpg made with the key, armor "protected" by a leading colon.
    const rev = (await readFile(join(g.home, 'openpgp-revocs.d', `${gone}.rev`), 'utf8')).replace(/^:-----BEGIN/m, '-----BEGIN');
    assert.equal((await g.gpg(['--import'], rev)).exitCode, 0);
    const ring = await trust(dev, 'gone@example.com', 'gone');
    await assertRefused(dev, pkg, 'BAD_SIGNATURE', /revoked/i);
    const v = await gpgVerdicts(pkg, ring);
    assert.deepEqual([v.gpg, v.gpgv], [0, 0]);
    assert.ok(v.gpgTokens.some((t) => t.startsWith('REVKEYSIG ')), v.gpgTokens.join('\n'));
  });
});
