import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import { Header, Pax, type HeaderData } from 'tar';
import type { FussyEvent } from '../../src/events.js';
import { install, type InstallOptions } from '../../src/ops/install.js';
import { keygen } from '../../src/keyring/keygen.js';
import { pack } from '../../src/pack/pack.js';
import { makeTmp } from './tmp.js';
import { snapshotTree, writeTree, type SampleFile, type TreeNode } from './tree.js';

export interface Device {
  dir: string;
  keyring: string;
  target: string;
  signingKeyFile: string;
  signingKey: openpgp.PrivateKey;
  devicePublicKeyFile: string;
  deviceFingerprint: string;
  hookLog: string;
}

/** A device in `dir`: keyring with the build key (public) and the device key (secret), and a target with a factory `current` dir. */
export async function makeDevice(dir: string, opts: { factory?: boolean } = {}): Promise<Device> {
  const keyring = join(dir, 'keys');
  const target = join(dir, 'firmware');
  await mkdir(target, { recursive: true });
  const s = await keygen({ role: 'signing', name: 'Build', email: 'build@example.com', secretKeyFile: join(dir, 'build.key'), publicKeyFile: join(dir, 'build.pub.asc'), keyringDir: keyring });
  const d = await keygen({ role: 'device', name: 'Device', email: 'device@example.com', keyringDir: keyring, publicKeyFile: join(dir, 'device.pub.asc') });
  if (opts.factory !== false) {
    await mkdir(join(target, 'current', 'etc'), { recursive: true });
    await writeFile(join(target, 'current', 'etc', 'version'), 'factory\n');
  }
  const signingKey = await openpgp.readPrivateKey({ armoredKey: await readFile(s.secretKeyFile, 'utf8') });
  return { dir, keyring, target, signingKeyFile: s.secretKeyFile, signingKey, devicePublicKeyFile: d.publicKeyFile, deviceFingerprint: d.fingerprint, hookLog: join(dir, 'hooks.log') };
}

export async function installInto(dev: Device, pkg: string, extra: Partial<InstallOptions> = {}, events: FussyEvent[] = []) {
  return install({
    package: pkg,
    keyring: dev.keyring,
    target: dev.target,
    env: { PATH: process.env.PATH, FUSSY_HOOK_LOG: dev.hookLog },
    cwd: dev.dir,
    owner: { asRoot: process.getuid?.() === 0, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    onEvent: (e) => events.push(e),
    ...extra,
    hookTimeoutMs: extra.hookTimeoutMs ?? 600_000,
  });
}

/** Everything in the target except fussy's own state dir: what a refused package must not change. */
export async function targetState(target: string): Promise<TreeNode[]> {
  return (await snapshotTree(target, { inodes: true, skip: ['.fussy'] })).filter((n) => n.path !== '.fussy' && !n.path.startsWith('.fussy/') && n.path !== '.');
}

export interface RawEntry {
  path: string;
  type?: HeaderData['type'];
  data?: Buffer | string;
  linkpath?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Extra pax records written before this entry (e.g. a path override). */
  pax?: HeaderData;
}

/** A tar archive built entry by entry, exactly as given: for packages no honest packer makes. */
export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    // A Buffer as it is (concat copies it once): attack packages carry 16 MiB and more.
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
    if (e.pax !== undefined) parts.push(new Pax({ ...e.pax, mtime: new Date(1_700_000_000_000) }).encode());
    const block = Buffer.alloc(512);
    const h = new Header({ path: e.path, type: e.type ?? 'File', mode: e.mode ?? (e.type === 'Directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, size: data.length, mtime: new Date(1_700_000_000_000), linkpath: e.linkpath ?? '', uname: '', gname: '' });
    if (h.encode(block)) parts.push(new Pax({ path: e.path, linkpath: e.linkpath }).encode());
    parts.push(block, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** gzip + OpenPGP sign (and optionally encrypt) arbitrary payload bytes, as a package file. */
export async function signPayload(file: string, payload: Buffer, o: { signingKeys?: openpgp.PrivateKey[]; encryptionKeys?: openpgp.Key[]; gzip?: boolean; armor?: boolean } = {}): Promise<string> {
  const message = await openpgp.createMessage({ binary: o.gzip === false ? payload : gzipSync(payload), format: 'binary' });
  const signingKeys = o.signingKeys ?? [];
  const out =
    o.encryptionKeys !== undefined
      ? await openpgp.encrypt({ message, encryptionKeys: o.encryptionKeys, signingKeys, format: 'binary' })
      : signingKeys.length === 0
        ? message.write()
        : await openpgp.sign({ message, signingKeys, format: 'binary' });
  await writeFile(file, out as Uint8Array);
  return file;
}

/** Another target beside `dev`, on the same keys: a factory `current` dir, then `packages` installed in order. */
export async function deviceBeside(dev: Device, name: string, packages: string[] = []): Promise<Device> {
  const dir = join(dev.dir, '..', name);
  const d: Device = { ...dev, dir, target: join(dir, 'firmware'), hookLog: join(dir, 'hooks.log') };
  await mkdir(join(d.target, 'current', 'etc'), { recursive: true });
  await writeFile(join(d.target, 'current', 'etc', 'version'), 'factory\n');
  for (const p of packages) await installInto(d, p);
  return d;
}

export interface PackedDevice {
  /** Keys in TMP/keys, a target without a factory image; other targets go beside it (deviceBeside). */
  dev: Device;
  /** Release name -> its package (TMP/NAME.gpg), signed by the device's build key. */
  pkgs: Record<string, string>;
}

/** A release that holds only etc/version, saying its name. */
export const versionOnly = (name: string): SampleFile[] => [{ path: 'etc/version', content: `${name}\n` }];

/**
 * The set-up of the tests that install, roll back and clean: a device in a fresh temp dir (keys
 * only, no factory `current`) and one signed package per name, the release `files(name)` built
 * under TMP/build/NAME.
 */
export async function deviceWithPackages(names: string[], files: (name: string) => SampleFile[] = versionOnly): Promise<PackedDevice> {
  const tmp = await makeTmp();
  const dev = await makeDevice(join(tmp, 'keys'), { factory: false });
  const pkgs: Record<string, string> = {};
  for (const n of names) {
    pkgs[n] = (await pack({ source: await writeTree(join(tmp, 'build', n), files(n)), tmpDir: tmp, signingKeyFiles: [dev.signingKeyFile], output: join(tmp, `${n}.gpg`) })).path;
  }
  return { dev, pkgs };
}

/** A target beside `p.dev` with the packages of `installs` (release names) installed in order. */
export function installedBeside(p: PackedDevice, name: string, installs: string[]): Promise<Device> {
  return deviceBeside(p.dev, name, installs.map((n) => {
    const pkg = p.pkgs[n];
    if (pkg === undefined) throw new Error(`no package ${n}`);
    return pkg;
  }));
}
