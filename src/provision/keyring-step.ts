import { lstatSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FussyError } from '../errors.js';
import { inspectKeys, keygen, type KeyInfo } from '../index.js';
import { fileAt, plan, wholeFile, writeNew, type StepContext, type StepPlan } from './step.js';

const DEVICE_KEY = /^device-[0-9A-F]{16}\.key$/;
const short = (fpr: string): string => fpr.slice(-16);

/** The public half of the device key, for the build server: next to the config, named after the device. */
export function devicePublicKeyFile(c: StepContext): string {
  return join(dirname(c.config.file), `${c.config.device.name}.device.asc`);
}

/**
 * The device keyring (docs/format.md, Keyrings): the signing keys it trusts as
 * `signing-<KEYID>.asc`, the policy and device-type files when the config sets them, any fleet
 * secret key, and a device key made here (fussy keygen device) whose public half is written next
 * to the config for the build server. A device key already in the keyring is kept: provisioning
 * again never changes what a build server encrypts to.
 */
export async function keyringStep(c: StepContext): Promise<StepPlan> {
  const p = plan('keyring');
  const k = c.config.keyring;
  const dir = c.host(k.dir);
  const writes: (() => void)[] = [];
  const trusted = new Set<string>();
  // The names this config puts in the keyring (the same key given twice is one file).
  const declared = new Map<string, { data: Buffer; file: string }>();
  for (const file of k.trust) {
    const keys = await keysOf(file);
    if (keys.some((x) => x.secret)) throw new FussyError('CONFIG_INVALID', `${file} holds a secret key: a device trusts public keys only`, { hint: 'give the public half (fussy keygen signing writes it with --public-key), and keep the secret key on the build server' });
    for (const key of keys) trusted.add(key.fingerprint);
    const name = `signing-${short((keys[0] as KeyInfo).fingerprint)}.asc`;
    const data = fileAt(file) as Buffer;
    if (same(declared, name, data, file)) continue;
    wholeFile(p, c, join(dir, name), data, `trusted key (${(keys[0] as KeyInfo).userIDs[0] ?? file})`, (at) => writeNew(at, data, 0o644), writes);
  }
  if ((k.threshold ?? 1) > trusted.size) {
    throw new FussyError('CONFIG_INVALID', `${c.config.file}: threshold ${k.threshold} asks for more signers than the ${trusted.size} keys it trusts`, { hint: 'add trust = FILE lines, or lower the threshold' });
  }
  for (const file of k.secretKeys) {
    const keys = await keysOf(file);
    const key = keys[0] as KeyInfo;
    if (keys.length !== 1 || !key.secret || key.protected) throw new FussyError('CONFIG_INVALID', `${file} is not one secret key without a passphrase`, { hint: 'a device decrypts unattended: give an unprotected secret key (fussy keygen device makes one)' });
    const name = `device-${short(key.fingerprint)}.key`;
    const data = fileAt(file) as Buffer;
    if (same(declared, name, data, file)) continue;
    wholeFile(p, c, join(dir, name), data, 'secret key', (at) => writeNew(at, data, 0o600), writes);
  }
  const policy = [k.threshold === undefined ? '' : `threshold = ${k.threshold}\n`, k.legacy === undefined ? '' : `legacy = ${k.legacy}\n`].join('');
  if (policy !== '') declared.set('policy', { data: Buffer.from(policy), file: c.config.file });
  if (c.config.device.type !== undefined) declared.set('device-type', { data: Buffer.from(''), file: c.config.file });
  undeclared(c, p, dir, declared);
  if (policy !== '') wholeFile(p, c, join(dir, 'policy'), Buffer.from(policy), 'policy', (at) => writeNew(at, policy, 0o644), writes);
  const type = c.config.device.type;
  if (type !== undefined) wholeFile(p, c, join(dir, 'device-type'), Buffer.from(`${type}\n`), 'device type', (at) => writeNew(at, `${type}\n`, 0o644), writes);
  let generate = false;
  if (k.deviceKey) generate = await deviceKey(c, p, dir);
  if (p.todo.length > 0) {
    p.apply = async () => {
      for (const w of writes) w();
      if (generate) await keygen({ role: 'device', name: `fussy device ${c.config.device.name}`, keyringDir: dir, publicKeyFile: devicePublicKeyFile(c), date: c.now });
    };
  }
  return p;
}

/** Plans the device key; true when one is to be made. */
async function deviceKey(c: StepContext, p: StepPlan, dir: string): Promise<boolean> {
  const given = new Set((await Promise.all(c.config.keyring.secretKeys.map(keysOf))).flat().map((x) => `device-${short(x.fingerprint)}.key`));
  // Never read through a link (undeclared() names it as a conflict).
  const names = (safeList(dir) ?? []).filter((n) => DEVICE_KEY.test(n) && !given.has(n) && lstatSync(join(dir, n)).isFile()).sort();
  const pub = devicePublicKeyFile(c);
  const exported = fileAt(pub);
  if (names.length === 0) {
    if (exported !== undefined) {
      p.conflicts.push({ path: pub, why: `exists, but the keyring ${c.config.keyring.dir} holds no device key: it is the public key of an earlier provisioning of ${c.config.device.name}`, fix: `move ${pub} away if that device is gone (its packages will not install here), or provision with its keyring` });
      return false;
    }
    p.todo.push(`generate the device key in ${c.config.keyring.dir}, its public half to ${pub}`);
    return true;
  }
  const mine = (await inspectKeys(join(dir, names[0] as string)))[0] as KeyInfo;
  if (names.length > 1 || !mine.secret || !mine.fingerprint.endsWith((names[0] as string).slice(7, 23))) {
    p.conflicts.push({ path: `${c.config.keyring.dir}/${names.join(', ')}`, why: 'is not the one device key provision makes (several, not secret, or not the key its name says)', fix: 'keep the one device key this device has, and remove the rest' });
    return false;
  }
  // A device key is this provisioning's only when its public half is next to the config: one in
  // a root without it came with the image (a unit cloned from another shares its key) or was
  // planted, and the build server must never be told to encrypt to it.
  if (exported === undefined) {
    p.conflicts.push({ path: `${c.config.keyring.dir}/${names[0] as string}`, why: `is a device key, and ${pub} (its public half, which provision writes when it makes the key) is not there: it was not made by this provisioning (an image cloned from another unit?)`, fix: `remove it and run again: provision makes this device a key of its own` });
    return false;
  }
  p.done.push(`device key ${mine.fingerprint} (${names[0] as string})`);
  if (exported === 'other' || !(await keysOf(pub)).some((x) => x.fingerprint === mine.fingerprint)) {
    p.conflicts.push({ path: pub, why: `is not the public half of the device key ${mine.fingerprint} in ${c.config.keyring.dir}`, fix: `move ${pub} away; provision writes the right one` });
  } else {
    p.done.push(`public key ${basename(pub)}`);
  }
  return false;
}

/**
 * The device trusts whatever is in its keyring: anything there that this config does not declare
 * (another signing key, a GnuPG home, a policy the config does not set, a link) is a conflict,
 * never silently kept. The device key provision made is the one thing it did not declare.
 */
function undeclared(c: StepContext, p: StepPlan, dir: string, declared: Map<string, unknown>): void {
  for (const name of (safeList(dir) ?? []).sort()) {
    if (declared.has(name)) continue;
    const st = lstatSync(join(dir, name));
    if (c.config.keyring.deviceKey && DEVICE_KEY.test(name) && st.isFile()) continue;
    const shown = `${c.config.keyring.dir}/${name}`;
    p.conflicts.push({ path: shown, why: `is in the keyring, and this config does not declare it: the device would ${name === 'policy' || name === 'device-type' ? 'use it' : 'trust or use it'}`, fix: `remove ${shown}, or declare it in [keyring]` });
  }
}

/** The same key file given twice is one; two different files that would get one name are a mistake in the config. */
function same(declared: Map<string, { data: Buffer; file: string }>, name: string, data: Buffer, file: string): boolean {
  const had = declared.get(name);
  if (had === undefined) {
    declared.set(name, { data, file });
    return false;
  }
  if (had.data.equals(data)) return true;
  throw new FussyError('CONFIG_INVALID', `${had.file} and ${file} both begin with the key ${name.replace(/^\w+-|\.\w+$/g, '')} but are different files: the keyring would hold one of them`, { hint: 'give each key once, in one file (or export each key to a file of its own)' });
}

async function keysOf(file: string): Promise<KeyInfo[]> {
  const keys = await inspectKeys(file);
  if (keys.length === 0) throw new FussyError('KEY_UNREADABLE', `${file} holds no OpenPGP key`, { hint: 'give an armored or binary key file' });
  return keys;
}

function safeList(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
