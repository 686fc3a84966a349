import { Command, Option } from 'commander';
import { FussyError, pack, type PackOptions } from '../index.js';
import { formatBytes, Reporter, type Io, type OutputFlags } from './io.js';
import { passphraseSource } from './passphrase.js';
import type { CommandResult } from './render.js';
import { collect, integer } from './parse.js';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';

export interface PackFlags extends OutputFlags {
  encryptFor: string[];
  recipientKey: string[];
  gnupghome?: string;
  signingKey: string[];
  passphraseFile?: string;
  gpg?: boolean;
  localUser: string[];
  exclude: string[];
  output?: string;
  compatible: string[];
  sequence?: number;
  minSequence?: number;
  rollback?: boolean;
  level?: number;
  deltaFrom: string[];
  deltaKeyring?: string;
}

export function addPackOptions(cmd: Command): Command {
  return cmd
    .option('-e, --encrypt-for <id>', 'encrypt for this device key (key id, fingerprint or unique email); repeatable', collect, [])
    .option('--recipient-key <file>', 'OpenPGP public key file to look recipients up in; repeatable', collect, [])
    .option('--gnupghome <dir>', 'GnuPG home to look recipients up in (default $GNUPGHOME or ~/.gnupg)')
    .option('--signing-key <file>', 'OpenPGP secret key file to sign with; repeatable (every key signs)', collect, [])
    .option('--passphrase-file <file>', 'first line is the signing key passphrase (else $FUSSY_PASSPHRASE, else a prompt)')
    .option('--gpg', 'sign with the system gpg (gpg-agent or smartcard keys) instead of --signing-key')
    .option('--local-user <id>', 'with --gpg: the key to sign with (gpg -u); repeatable', collect, [])
    .option('--exclude <pattern>', 'leave out matching names or paths; repeatable (.git, .svn, .bzr always)', collect, [])
    .option('-o, --output <path>', 'package file, or directory (existing, or ending in /) to put <release>.tar.gz.gpg in')
    .option('--compatible <type>', 'device type this firmware is for; repeatable', collect, [])
    .option('--sequence <n>', 'release sequence number (default: creation time in ms)', integer('--sequence'))
    .option('--min-sequence <n>', 'lowest installed sequence this release may upgrade from', integer('--min-sequence'))
    .option('--rollback', 'mark this (older) release as an intended rollback: devices accept it below their recorded sequence')
    .addOption(new Option('--level <n>', 'gzip level 1-9 for compressible data').argParser(integer('--level', 1, 9)))
    .option('--delta-from <base>', 'make a delta package: leave out every file the devices on BASE have (a package, a .fussy-manifest.json or a release directory); repeatable', collect, [])
    .option('--delta-keyring <dir>', 'with --delta-from: the keyring that opens encrypted base packages (the build server\'s keys)');
}

/** Turn parsed flags into a pack() call and its result into output. */
export async function runPack(io: Io, source: string, f: PackFlags, extra: Partial<PackOptions> = {}): Promise<CommandResult> {
  const reporter = new Reporter(io, f);
  const epoch = io.env.SOURCE_DATE_EPOCH;
  let sourceDateEpoch: number | undefined;
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch)) throw new FussyError('USAGE', `SOURCE_DATE_EPOCH must be a whole number of seconds, not "${epoch}"`);
    sourceDateEpoch = Number(epoch);
  }
  if (f.recipientKey.length > 0 && f.encryptFor.length === 0) {
    // Encryption is per recipient (-e); a key file only says where to look recipients up. Without
    // one the package would go out unencrypted while the command line reads as if it were not.
    throw new FussyError('USAGE', `--recipient-key ${f.recipientKey.join(', ')} given without -e/--encrypt-for: the package would not be encrypted`, {
      hint: 'name the device key to encrypt for with -e ID (fingerprint, key id or email), or drop --recipient-key for an unencrypted package',
    });
  }
  const useGpg = f.gpg === true || (f.localUser.length > 0 && f.signingKey.length === 0);
  const { defaultGnupgHome } = await import('../keyring/recipients.js');
  const r = await pack({
    source: resolve(io.cwd, source),
    output: f.output === undefined ? undefined : f.output.endsWith('/') ? resolve(io.cwd, f.output) + '/' : resolve(io.cwd, f.output),
    excludes: f.exclude,
    signingKeyFiles: f.signingKey.map((k) => resolve(io.cwd, k)),
    passphrase: useGpg ? undefined : await passphraseSource(io, f.passphraseFile),
    gpg: useGpg ? { localUsers: f.localUser, passphraseFile: f.passphraseFile } : undefined,
    recipients: f.encryptFor,
    recipientKeyFiles: f.recipientKey.map((k) => resolve(io.cwd, k)),
    gnupgHome: f.gnupghome ?? defaultGnupgHome(io.env),
    compatible: f.compatible,
    sequence: f.sequence,
    minSequence: f.minSequence,
    rollback: f.rollback,
    level: f.level,
    deltaFrom: (f.deltaFrom ?? []).map((b) => resolve(io.cwd, b)),
    deltaKeyring: f.deltaKeyring === undefined ? undefined : resolve(io.cwd, f.deltaKeyring),
    sourceDateEpoch,
    now: io.now(),
    tmpDir: io.env.TMPDIR ?? tmpdir(),
    onEvent: (e) => reporter.event(e),
    ...extra,
  });
  reporter.clearBar();
  const how = r.signedBy.length > 0 ? `signed by ${r.signedBy.map((s) => s.slice(-16)).join(', ')}` : extra.unsigned ? 'UNSIGNED' : 'signed by gpg';
  const enc = r.encryptedFor.length > 0 ? `, encrypted for ${r.encryptedFor.map((s) => s.slice(-16)).join(', ')}` : '';
  return {
    json: { ...r },
    summary: [
      `packed ${r.release}: ${r.files} files, ${formatBytes(r.treeBytes)} -> ${formatBytes(r.bytes)} in ${(r.durationMs / 1000).toFixed(1)} s, ${how}${enc}`,
      ...(r.bases === undefined ? [] : [`delta against ${r.bases.map((b) => b.release).join(', ')}: ${r.omittedFiles} files (${formatBytes(r.omittedBytes)}) left to the device`]),
    ],
    stdoutLine: r.path,
  };
}
