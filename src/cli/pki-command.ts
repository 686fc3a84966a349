import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { FussyError, pkiCrl, pkiInit, pkiIssue, pkiList, pkiRevoke, type PkiIssueResult } from '../index.js';
import type { Io, OutputFlags } from './io.js';
import { collect, integer } from './parse.js';
import type { CommandResult } from './render.js';

type Done = (r: CommandResult) => void;

interface CaFlags extends OutputFlags {
  caDir?: string;
}

/**
 * The CA directory: --ca-dir, else $FUSSY_CA_DIR, else $XDG_CONFIG_HOME/fussy/ca (~/.config/fussy/ca),
 * beside remote.json: the CA belongs to the operator who runs it, on that operator's machine.
 */
export function caDir(io: Io, given: string | undefined): string {
  if (given !== undefined) return resolve(io.cwd, given);
  if (io.env.FUSSY_CA_DIR !== undefined && io.env.FUSSY_CA_DIR !== '') return resolve(io.cwd, io.env.FUSSY_CA_DIR);
  const config = io.env.XDG_CONFIG_HOME ?? (io.env.HOME === undefined ? undefined : join(io.env.HOME, '.config'));
  if (config === undefined) throw new FussyError('USAGE', 'no CA directory: neither --ca-dir, $FUSSY_CA_DIR nor $HOME is set', { hint: 'pass --ca-dir DIR' });
  return join(config, 'fussy', 'ca');
}

const caOption = (): Option => new Option('--ca-dir <dir>', 'the CA directory (default $FUSSY_CA_DIR, else ~/.config/fussy/ca)');

/** `fussy pki init|issue|revoke|crl|ls`: a small CA for fussyd and fussy remote (docs/commands.md). */
export function pkiCommand(io: Io, done: Done): Command {
  const pki = new Command('pki').description('a small CA for the fleet: certificates for fussyd (devices) and fussy remote (operators), with openssl');
  pki.addCommand(
    new Command('init')
      .description('create a CA directory (0700): ca.key, ca.crt, an empty ca.crl, openssl\'s database')
      .argument('[dir]', 'the new CA directory (default: --ca-dir\'s default)')
      .addOption(caOption())
      .option('--name <cn>', 'the CA\'s name (CN)', 'fussy fleet CA')
      .addOption(new Option('--days <n>', 'validity of the CA certificate').argParser(integer('--days', 1, 36500)))
      .option('--json', 'print one JSON object')
      .action(async (dir: string | undefined, f: CaFlags & { name: string; days?: number }) => {
        const r = await pkiInit({ dir: dir === undefined ? caDir(io, f.caDir) : resolve(io.cwd, dir), name: f.name, days: f.days });
        done({ json: { ...r }, summary: [`created CA "${r.name}" in ${r.dir}, valid until ${r.notAfter}`, `  fingerprint: ${r.fingerprint256}`, `  next: fussy pki issue --server DEVICE --ca-dir ${r.dir}; fussy pki issue --client YOU --ca-dir ${r.dir}`], stdoutLine: r.dir });
      }),
  );
  pki.addCommand(
    new Command('issue')
      .description('issue a server certificate (a device running fussyd) or a client certificate (an operator)')
      .option('--server <name>', 'a device: its host name or address (the CN, and a subjectAltName)')
      .option('--client <cn>', 'an operator: the CN the roles file names')
      .option('--san <name>', '--server: another DNS name or IP address (repeatable)', collect, [] as string[])
      .addOption(new Option('--days <n>', 'validity (default 825 for a server, 365 for a client)').argParser(integer('--days', 1, 36500)))
      .option('--csr <file>', 'sign this PEM request, made where its key lives (no key is made here)')
      .option('--out <dir>', 'where NAME.crt, NAME.key and ca.crt go (default CA_DIR/issued/NAME)')
      .option('--force', 'issue although NAME has a valid certificate (a rollover), and replace files in --out')
      .addOption(caOption())
      .option('--json', 'print one JSON object')
      .action(async (f: CaFlags & { server?: string; client?: string; san: string[]; days?: number; csr?: string; out?: string; force?: boolean }) => {
        if ((f.server === undefined) === (f.client === undefined)) throw new FussyError('USAGE', 'issue takes --server NAME or --client CN, one of them', { hint: 'fussy pki issue --server unit-17.example, or --client alice' });
        const r = await pkiIssue({
          dir: caDir(io, f.caDir),
          kind: f.server === undefined ? 'client' : 'server',
          name: (f.server ?? f.client) as string,
          sans: f.san,
          days: f.days,
          csr: f.csr === undefined ? undefined : resolve(io.cwd, f.csr),
          out: f.out === undefined ? undefined : resolve(io.cwd, f.out),
          force: f.force,
          now: io.now(),
        });
        done({ json: { ...r }, summary: issued(r), stdoutLine: r.cert });
      }),
  );
  pki.addCommand(
    new Command('revoke')
      .description('revoke a certificate (every valid one of a CN, or one serial) and regenerate ca.crl')
      .argument('[name-or-serial]', 'a CN, or a serial as fussy pki ls shows it')
      .option('--serial <hex>', 'the serial (a CN that looks like a serial wins over the positional form)')
      .addOption(caOption())
      .option('--json', 'print one JSON object')
      .action(async (which: string | undefined, f: CaFlags & { serial?: string }) => {
        const dir = caDir(io, f.caDir);
        const r = await pkiRevoke({ dir, ...(await revokeTarget(dir, which, f.serial, io.now())), now: io.now() });
        done({ json: { ...r }, summary: [...r.revoked.map((c) => `revoked ${c.name} (serial ${c.serial})`), `wrote ${r.crl}, valid until ${r.nextUpdate}: copy it to every device (fussyd's crl)`], stdoutLine: r.crl });
      }),
  );
  pki.addCommand(
    new Command('crl')
      .description('regenerate ca.crl: it expires (default 30 days), so run this from cron and copy it to the devices')
      .addOption(new Option('--days <n>', 'days until its nextUpdate (default: the CA\'s, 30)').argParser(integer('--days', 1, 3650)))
      .addOption(caOption())
      .option('--json', 'print one JSON object')
      .action(async (f: CaFlags & { days?: number }) => {
        const r = await pkiCrl({ dir: caDir(io, f.caDir), days: f.days, now: io.now() });
        done({ json: { ...r }, summary: [`wrote ${r.crl}, valid until ${r.nextUpdate}`], stdoutLine: r.crl });
      }),
  );
  pki.addCommand(
    new Command('ls')
      .description('every certificate issued: serial, kind, CN, SANs, not-after, status (valid, revoked, expired)')
      .addOption(caOption())
      .option('--json', 'print one JSON object')
      .action(async (f: CaFlags) => {
        const r = await pkiList({ dir: caDir(io, f.caDir), now: io.now() });
        const rows = r.certificates.map((c) => `${c.serial.padEnd(18)} ${c.kind.padEnd(7)} ${c.status.padEnd(8)} ${c.notAfter.slice(0, 10)}  ${c.name}${c.sans.length > 1 || (c.sans[0] !== undefined && c.sans[0] !== c.name) ? `  (${c.sans.join(', ')})` : ''}`);
        if (f.json !== true) io.stdout.write([`CA "${r.ca.name}" in ${r.dir}, valid until ${r.ca.notAfter.slice(0, 10)}`, `${'SERIAL'.padEnd(18)} ${'KIND'.padEnd(7)} ${'STATUS'.padEnd(8)} NOT-AFTER   NAME`, ...rows].join('\n') + '\n');
        done({ json: { ...r }, summary: [] });
      }),
  );
  return pki;
}

function issued(r: PkiIssueResult): string[] {
  const where = r.kind === 'server' ? ['cert', 'key', 'client-ca'] : ['--cert', '--key', '--ca'];
  return [
    `issued ${r.kind} certificate ${r.name} (serial ${r.serial}), valid until ${r.notAfter}${r.sans.length > 0 ? `, names ${r.sans.join(', ')}` : ''}`,
    `  ${where[0]}: ${r.cert}`,
    `  ${where[1]}: ${r.key ?? '(the key of the request, where it was made)'}`,
    `  ${where[2]}: ${r.ca}`,
    r.kind === 'server' ? '  on the device: /etc/fussy/tls/server.crt, server.key (0600), client-ca.crt, and the CA\'s ca.crl as client-ca.crl' : '  for fussy remote: ~/.config/fussy/remote.json {"cert", "key", "ca"}',
  ];
}

/** revoke's argument: a CN when a valid certificate has it, else a serial of a valid certificate, else a CN (PKI_NOT_FOUND). */
async function revokeTarget(dir: string, which: string | undefined, serial: string | undefined, now: Date): Promise<{ name: string } | { serial: string }> {
  if (serial !== undefined) {
    if (which !== undefined) throw new FussyError('USAGE', 'revoke takes a name or --serial, not both', { hint: 'fussy pki revoke NAME, or fussy pki revoke --serial HEX' });
    return { serial };
  }
  if (which === undefined) throw new FussyError('USAGE', 'revoke needs the CN or serial of the certificate to revoke', { hint: 'fussy pki ls shows them' });
  const valid = (await pkiList({ dir, now })).certificates.filter((c) => c.status === 'valid');
  if (valid.some((c) => c.name === which)) return { name: which };
  const bySerial = /^(0x)?[0-9A-Fa-f]+$/.test(which) && valid.some((c) => c.serial.replace(/^0+/, '') === which.replace(/^0x/, '').replace(/^0+/, '').toUpperCase());
  return bySerial ? { serial: which } : { name: which };
}
