import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack, pkiInit } from '../../src/index.js';
import { signingKey } from '../helpers/keys.js';
import { makeTmp } from '../helpers/tmp.js';
import { writeTree, type SampleFile } from '../helpers/tree.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** What the provisioning tests share (made once: keys, packages and a CA cost seconds). */
export interface Site {
  dir: string;
  signingPub: string;
  signingSecret: string;
  /** factory-1: etc (app.conf, hostname), bin/app, a pre-install hook that writes /hook-ran. */
  factory: string;
  /** The same tree signed by a key no device trusts. */
  rogueFactory: string;
  caDir: string;
}

let made: Promise<Site> | undefined;

export function site(): Promise<Site> {
  made ??= makeSite();
  return made;
}

export const FACTORY: SampleFile[] = [
  { path: 'bin/app', content: '#!/bin/sh\necho app 1\n', mode: 0o755 },
  { path: 'etc/app.conf', content: 'level = 1\n' },
  { path: 'etc/hostname', content: 'factory\n' },
  { path: 'etc/cron.d/backup', content: '0 3 * * * root /opt/firmware/current/bin/app\n' },
  { path: 'share/data.bin', content: Buffer.alloc(64 * 1024, 7) },
  // Inside the root the hook writes /hook-ran; run on the build host it would write the host's.
  { path: '.pre-install', content: '#!/bin/sh\necho "$@" "$FUSSY_TARGET" > /hook-ran\necho hook ran\n', mode: 0o755 },
];

async function makeSite(): Promise<Site> {
  const dir = await makeTmp('fussy-provision-');
  const keys = join(dir, 'keys');
  const signing = await signingKey(keys, 'Release Signing');
  const rogue = await signingKey(keys, 'Rogue');
  const tree = await writeTree(join(dir, 'build', 'factory-1'), FACTORY);
  const factory = (await pack({ source: tree, output: join(dir, 'packages') + '/', tmpDir: dir, signingKeyFiles: [signing.secretKeyFile] })).path;
  const rogueFactory = (await pack({ source: tree, output: join(dir, 'rogue') + '/', tmpDir: dir, signingKeyFiles: [rogue.secretKeyFile] })).path;
  const caDir = join(dir, 'ca');
  await pkiInit({ dir: caDir, name: 'fleet CA' });
  return { dir, signingPub: signing.publicKeyFile, signingSecret: signing.secretKeyFile, factory, rogueFactory, caDir };
}

/**
 * A root file system as small as one can chroot into: /bin/sh (the host's, with the libraries
 * ldd names), /etc/hostname, and the fussyd unit where the package puts it (unless `unit` is false).
 */
export async function miniRoot(dir: string, o: { unit?: boolean } = {}): Promise<string> {
  const root = join(dir, 'root');
  const sh = realpathSync('/bin/sh');
  const libs = execFileSync('ldd', [sh], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(\/\S+)\s+\(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
  for (const [from, to] of [[sh, '/bin/sh'], ...libs.map((l) => [l, l])] as [string, string][]) {
    mkdirSync(join(root, dirname(to)), { recursive: true });
    copyFileSync(from, join(root, to));
  }
  execFileSync('chmod', ['755', join(root, 'bin/sh')]);
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc', 'hostname'), 'debian\n');
  if (o.unit !== false) {
    mkdirSync(join(root, 'usr/lib/systemd/system'), { recursive: true });
    writeFileSync(join(root, 'usr/lib/systemd/system/fussyd.service'), await readFile(join(REPO, 'debian', 'fussyd.service')));
  }
  return root;
}

/** A provisioning config in `dir`/site/device.conf (keys and package named relative to it). */
let units = 0;

/**
 * A provisioning config in `dir`/site/device.conf (keys and package named relative to it), for
 * a device name of its own: the fleet CA issues one valid certificate a name.
 */
export function writeConfig(dir: string, s: Site, o: { package?: string; extra?: string; replace?: boolean; fussyd?: boolean } = {}): string {
  const conf = join(dir, 'site', 'device.conf');
  mkdirSync(dirname(conf), { recursive: true });
  const lines = [
    '# a test device',
    '[device]',
    `name = gw-${++units}`,
    'type = acme-gw',
    '',
    '[firmware]',
    `package = ${o.package ?? s.factory}`,
    '',
    '[keyring]',
    `trust = ${s.signingPub}`,
    'legacy = refuse',
    '',
    '[link-tree]',
    'link = /opt/firmware/current/etc /etc',
    `replace = ${o.replace === false ? 'no' : 'yes'}`,
  ];
  if (o.fussyd !== false) {
    lines.push('', '[fussyd]', `ca = ${s.caDir}`, 'san = 10.0.0.7', 'listen = 127.0.0.1:6808', 'run-as = root', '', '[roles]', 'admin = alice', 'operator = ops-1, ops-2');
  }
  writeFileSync(conf, `${lines.join('\n')}\n${o.extra ?? ''}`);
  return conf;
}

export { rejection } from '../helpers/rejection.js';
