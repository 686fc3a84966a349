import { resolve } from 'node:path';
import { Argument, Command, Option } from 'commander';
import { FussyError, keygen } from '../index.js';
import type { KeyRole } from '../keyring/keygen.js';
import type { Io, OutputFlags } from './io.js';
import { passphraseSource, promptHidden } from './passphrase.js';
import type { CommandResult } from './render.js';
import { integer } from './parse.js';

interface KeygenFlags extends OutputFlags {
  name: string;
  email?: string;
  secretKey?: string;
  publicKey?: string;
  keyring?: string;
  passphraseFile?: string;
  passphrase: boolean;
  rsa?: number;
  force?: boolean;
}

export function keygenCommand(io: Io, done: (r: CommandResult) => void): Command {
  return new Command('keygen')
    .description('create a signing key (build server) or a device key (device keyring)')
    .addArgument(new Argument('<role>', 'signing | device').choices(['signing', 'device']))
    .requiredOption('--name <name>', 'user ID name, e.g. "Acme firmware signing"')
    .option('--email <email>', 'user ID email')
    .option('--secret-key <file>', 'signing: where to write the secret key (keep it on the build server)')
    .option('--public-key <file>', 'where to write the public key (default: <name>.pub.asc in the current directory)')
    .option('-k, --keyring <dir>', 'signing: also put the public key here; device: the keyring dir that receives the secret key')
    .option('--passphrase-file <file>', 'signing: protect the secret key with the first line of this file')
    .option('--no-passphrase', 'signing: do not protect the secret key (unattended build servers)')
    .addOption(new Option('--rsa <bits>', 'RSA key of this size instead of Ed25519/Curve25519').argParser(integer('--rsa', 2048, 8192)))
    .option('--force', 'replace existing key files')
    .option('--json', 'print one JSON object')
    .option('-q, --quiet', 'print only the fingerprint')
    .action(async (role: KeyRole, f: KeygenFlags) => done(await runKeygen(io, role, f)));
}

async function runKeygen(io: Io, role: KeyRole, f: KeygenFlags): Promise<CommandResult> {
  let passphrase: string | undefined;
  // A signing key is written unprotected only when asked for in so many words (--no-passphrase,
  // or an empty answer at the prompt): never because nobody was there to be asked.
  if (role === 'signing' && f.passphrase) {
    const fromFile = f.passphraseFile !== undefined || io.env.FUSSY_PASSPHRASE !== undefined;
    const source = await passphraseSource(io, f.passphraseFile);
    const hint = 'pass --passphrase-file FILE or set $FUSSY_PASSPHRASE, or --no-passphrase for an unprotected key (unattended build servers)';
    if (source === undefined) {
      throw new FussyError('USAGE', 'no passphrase for the new signing key: there is no terminal to ask on, and no --passphrase-file or $FUSSY_PASSPHRASE', { hint });
    }
    if (fromFile) {
      passphrase = await source('the new signing key');
      if (passphrase === '') throw new FussyError('USAGE', `the passphrase from ${f.passphraseFile ?? '$FUSSY_PASSPHRASE'} is empty`, { hint });
    } else {
      passphrase = await promptHidden(io, 'Passphrase for the new signing key (empty: none): ');
      if (passphrase !== '' && (await promptHidden(io, 'Repeat it: ')) !== passphrase) {
        throw new FussyError('BAD_PASSPHRASE', 'the two passphrases differ', { hint: 'run fussy keygen again' });
      }
    }
    if (passphrase === '') passphrase = undefined;
  }
  const slug = f.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || role;
  const r = await keygen({
    role,
    name: f.name,
    email: f.email,
    passphrase,
    rsaBits: f.rsa,
    secretKeyFile: f.secretKey === undefined ? (role === 'signing' ? resolve(io.cwd, `${slug}.key`) : undefined) : resolve(io.cwd, f.secretKey),
    publicKeyFile: resolve(io.cwd, f.publicKey ?? `${slug}.pub.asc`),
    keyringDir: f.keyring === undefined ? undefined : resolve(io.cwd, f.keyring),
    force: f.force,
    date: io.now(),
  });
  const summary = [`created ${role} key ${r.fingerprint} (${r.userID})`, `  secret key: ${r.secretKeyFile}${passphrase ? ' (passphrase-protected)' : ' (NOT passphrase-protected)'}`, `  public key: ${r.publicKeyFile}`];
  if (r.keyringFile !== undefined) summary.push(`  keyring copy: ${r.keyringFile}`);
  summary.push(role === 'signing' ? '  next: install the public key into each device keyring; pack with --signing-key ' + r.secretKeyFile : `  next: pack with --recipient-key ${r.publicKeyFile} -e ${r.fingerprint}`);
  return { json: { role, ...r, protected: passphrase !== undefined }, summary, stdoutLine: r.fingerprint };
}
