/**
 * npm run demo: the release engineer's side of fussy on throwaway keys, in a temp dir.
 * Makes a signing key and a device key, packs the sample firmware signed and encrypted for the
 * device, shows what is inside, proves the build is reproducible, lets GnuPG check it, then
 * installs it on a simulated device (factory image -> failsafe), installs an update, and shows
 * the hooks, the hard-linked unchanged files and the `current` link.
 */
import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { execa } from 'execa';
import * as openpgp from 'openpgp';
import { Parser, type ReadEntry } from 'tar';

const repo = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const fussyBin = join(repo, 'bin', 'fussy.js');

async function fussy(args: string[], env: Record<string, string> = {}): Promise<string> {
  process.stdout.write(`\n$ fussy ${args.join(' ')}\n`);
  const r = await execa(process.execPath, [fussyBin, ...args], { cwd: work, env, reject: false, all: true });
  process.stdout.write(String(r.all) + '\n');
  if (r.exitCode !== 0) throw new Error(`fussy ${args[0]} exited ${r.exitCode}`);
  return String(r.stdout).trim().split('\n').pop() as string;
}

const work = await mkdtemp(join(tmpdir(), 'fussy-demo-'));
process.stdout.write(`fussy demo in ${work}\n`);
const release = 'firmware-2026-11-23T10.00.00';
const build = join(work, 'build', release);
await mkdir(join(work, 'build'), { recursive: true });
await cp(join(repo, 'fixtures', 'sample-firmware', 'firmware-demo'), build, { recursive: true, verbatimSymlinks: true });

const signingFpr = await fussy(['keygen', 'signing', '--name', 'Demo Build Server', '--email', 'build@demo.example', '--secret-key', 'signing.key', '--no-passphrase', '--keyring', 'device/etc/fussy/keys']);
const deviceFpr = await fussy(['keygen', 'device', '--name', 'Demo Device', '--email', 'device@demo.example', '--keyring', 'device/etc/fussy/keys', '--public-key', 'device.pub.asc']);
const pkg = await fussy(['pack', `build/${release}`, '--signing-key', 'signing.key', '--recipient-key', 'device.pub.asc', '-e', 'device@demo.example', '--compatible', 'demo-board', '-o', 'packages/']);

// What the device will see: decrypt with its key, verify with the build key, list the archive.
const deviceKeyFile = join(work, 'device', 'etc', 'fussy', 'keys', `device-${deviceFpr.slice(-16)}.key`);
const decryptionKeys = await openpgp.readPrivateKey({ armoredKey: await readFile(deviceKeyFile, 'utf8') });
const verificationKeys = await openpgp.readKey({ armoredKey: await readFile(join(work, 'device', 'etc', 'fussy', 'keys', `signing-${signingFpr.slice(-16)}.asc`), 'utf8') });
const message = await openpgp.readMessage({ binaryMessage: await readFile(pkg) });
const { data, signatures } = await openpgp.decrypt({ message, decryptionKeys, verificationKeys, expectSigned: true, format: 'binary' });
await signatures[0]?.verified;
process.stdout.write(`\nInside ${pkg} (decrypted with the device key, signature by ${signatures[0]?.keyID.toHex().toUpperCase()} verified):\n`);
const parser = new Parser();
let manifest = '';
parser.on('entry', (e: ReadEntry) => {
  const chunks: Buffer[] = [];
  e.on('data', (c: Buffer) => chunks.push(c));
  e.on('end', () => {
    if (e.path.endsWith('.fussy-manifest.json')) manifest = Buffer.concat(chunks).toString();
  });
  process.stdout.write(`  ${e.type.padEnd(12)} ${e.path}${e.linkpath ? ' -> ' + e.linkpath : ''}\n`);
});
await new Promise<void>((res, rej) => {
  Readable.from([Buffer.from(data as Uint8Array)]).pipe(createGunzip()).pipe(parser).on('end', res).on('error', rej);
});
const m = JSON.parse(manifest) as { release: string; sequence: number; fileCount: number; totalBytes: number; compatible: string[] };
process.stdout.write(`manifest (first entry, inside the signature): release ${m.release}, sequence ${m.sequence}, ${m.fileCount} files, ${m.totalBytes} bytes, compatible ${m.compatible.join(',')}\n`);

// Reproducible builds: same tree, same key, same SOURCE_DATE_EPOCH -> the same bytes.
const sums: string[] = [];
for (const out of ['repro-a/', 'repro-b/']) {
  const p = await fussy(['pack', `build/${release}`, '--signing-key', 'signing.key', '-o', out, '-q'], { SOURCE_DATE_EPOCH: '1795435200' });
  sums.push(createHash('sha256').update(await readFile(p)).digest('hex'));
}
process.stdout.write(`sha256 of both: ${sums[0]} / ${sums[1]} -> ${sums[0] === sums[1] ? 'byte-identical' : 'DIFFERENT'}\n`);

// GnuPG reads what fussy writes (when gpg is installed).
const gpgOk = await execa('gpg', ['--version'], { reject: false }).then((r) => r.exitCode === 0, () => false);
if (gpgOk) {
  const home = join(work, 'gnupg');
  await mkdir(home, { mode: 0o700 });
  await execa('gpg', ['--homedir', home, '--batch', '--import', deviceKeyFile, join(work, 'signing.key')], { reject: false });
  const r = await execa('gpg', ['--homedir', home, '--batch', '--status-fd', '1', '--decrypt', '--output', '/dev/null', pkg], { reject: false });
  const ok = String(r.stdout).includes('GOODSIG') && String(r.stdout).includes('DECRYPTION_OKAY');
  process.stdout.write(`\n$ gpg --decrypt ${pkg}\n${ok ? 'gpg: good signature, decryption okay' : String(r.stderr)}\n`);
  // The secret key import started a gpg-agent for this throwaway home: it must not outlive the demo.
  await execa('gpgconf', ['--homedir', home, '--kill', 'all'], { reject: false });
} else {
  process.stdout.write('\n(gpg not installed: skipping the GnuPG cross-check)\n');
}
// The device side: a factory image in /opt/firmware/current, the keyring in /etc/fussy/keys.
const target = join(work, 'device', 'opt', 'firmware');
await mkdir(join(target, 'current', 'bin'), { recursive: true });
await writeFile(join(target, 'current', 'bin', 'demo-app'), '#!/bin/sh\necho factory image\n');
const keyring = 'device/etc/fussy/keys';
// The package says `compatible: demo-board`; the device says what it is (else: refused, exit 21).
await writeFile(join(work, keyring, 'device-type'), 'demo-board\n');
process.stdout.write(`\n$ echo demo-board > ${keyring}/device-type\n`);
await fussy(['install', pkg, '-k', keyring, '-t', 'device/opt/firmware']);

// Release 2: one file changed. Everything else is hard-linked to release 1, not copied.
const release2 = 'firmware-2026-11-24T09.00.00';
await cp(build, join(work, 'build', release2), { recursive: true, verbatimSymlinks: true });
await writeFile(join(work, 'build', release2, 'etc', 'app', 'app.conf'), '[app]\nlisten = 0.0.0.0:8080\nlog = debug\n');
const pkg2 = await fussy(['pack', `build/${release2}`, '--signing-key', 'signing.key', '--recipient-key', 'device.pub.asc', '-e', 'device@demo.example', '-o', 'packages/', '-q']);
await fussy(['install', pkg2, '-k', keyring, '-t', 'device/opt/firmware']);

process.stdout.write(`\n$ ls -l ${target}\n`);
for (const name of (await readdir(target)).sort()) {
  const st = await lstat(join(target, name));
  process.stdout.write(`  ${name}${st.isSymbolicLink() ? ` -> ${await readlink(join(target, name))}` : '/'}\n`);
}
process.stdout.write('\nInode numbers (same number = one file on disk, shared by both releases):\n');
for (const rel of ['lib/libdemo.so.1.2', 'share/web/index.html', 'etc/app/app.conf']) {
  const a = await stat(join(target, release, rel));
  const b = await stat(join(target, release2, rel));
  process.stdout.write(`  ${rel.padEnd(22)} ${String(a.ino).padStart(9)} ${String(b.ino).padStart(9)}  ${a.ino === b.ino ? 'shared' : 'new copy (changed)'}\n`);
}
// What the device knows now: releases, sharing, the last transaction, and its tamper-evident log.
await fussy(['status', '-t', 'device/opt/firmware']);
await fussy(['history', '-t', 'device/opt/firmware']);
process.stdout.write(`\nDone. Everything is in ${work}\n`);
