import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FussyError } from '../errors.js';
import { pkiIssue } from '../index.js';
import { DEFAULT_CONFIG_FILE, DEFAULT_CRL } from '../daemon/config.js';
import { fsyncDir } from '../util/fs-atomic.js';
import { removeTree } from '../util/remove-tree.js';
import { fileAt, plan, wholeFile, writeNew, type StepContext, type StepPlan } from './step.js';

const HEADER = "# fussyd's configuration (man 5 fussyd.conf), written by fussy provision: key = value, one a\n# line; every key is also a fussyd option, and options win.\n";

/**
 * fussyd on the device: its configuration file with the keys the config's [fussyd] gives, the
 * roles file from [roles], the fleet CA's certificate as the client CA, its CRL, and a server
 * certificate for the device name issued by the fleet CA (fussy pki issue) with its key made in
 * the root, never kept by the CA. A configuration file of comments alone (the package's) counts
 * as absent; any other one must already say the same.
 */
export async function fussydStep(c: StepContext): Promise<StepPlan> {
  const p = plan('fussyd');
  const f = c.config.fussyd;
  if (f === undefined) return p;
  const writes: (() => void)[] = [];
  const caCert = fileAt(join(f.ca, 'ca.crt'));
  if (caCert === undefined || caCert === 'other') throw new FussyError('PKI_NOT_A_CA', `${f.ca} holds no ca.crt: it is not a CA made by fussy pki init`, { hint: 'check [fussyd] ca (relative to the config file)' });

  const conf = c.host(DEFAULT_CONFIG_FILE);
  const text = HEADER + f.settings.map(([k, v]) => `${k} = ${v}\n`).join('');
  const have = fileAt(conf);
  const onlyComments = have instanceof Buffer && have.toString('utf8').split('\n').every((l) => l.trim() === '' || l.trim().startsWith('#'));
  if (f.settings.length === 0 && (have === undefined || onlyComments)) p.done.push(`${DEFAULT_CONFIG_FILE}: the defaults`);
  else if (onlyComments && !(have as Buffer).equals(Buffer.from(text))) {
    p.todo.push(`write ${DEFAULT_CONFIG_FILE} (${f.settings.map(([k]) => k).join(', ')})`);
    writes.push(() => replaceComments(conf, text));
  } else wholeFile(p, c, conf, Buffer.from(text), 'fussyd configuration', (at) => writeNew(at, text, 0o644), writes);

  if (f.roles !== undefined) {
    const roles = `${JSON.stringify({ admin: f.roles.admin, operator: f.roles.operator, viewer: f.roles.viewer }, null, 2)}\n`;
    wholeFile(p, c, c.host(f.daemon.roles), Buffer.from(roles), 'roles file', (at) => writeNew(at, roles, 0o644), writes);
  }
  wholeFile(p, c, c.host(f.daemon.clientCa), caCert, 'client CA (the fleet CA)', (at) => writeNew(at, caCert, 0o644), writes);
  const crl = fileAt(join(f.ca, 'ca.crl'));
  const crlAt = c.host(f.daemon.crl ?? DEFAULT_CRL);
  if (crl instanceof Buffer) {
    // The device's CRL is replaced by the fleet's as it changes; provision only puts the first one there.
    if (fileAt(crlAt) === undefined) {
      p.todo.push(`write the CRL ${c.device(crlAt)}`);
      writes.push(() => writeNew(crlAt, crl, 0o644));
    } else p.done.push(`CRL ${c.device(crlAt)} (kept as it is)`);
  }
  const issue = serverCertificate(c, p, caCert);
  if (p.todo.length > 0) {
    p.apply = async () => {
      for (const w of writes) w();
      await issue?.();
    };
  }
  return p;
}

function replaceComments(path: string, text: string): void {
  const tmp = `${path}.fussy-provision`;
  writeNew(tmp, text, 0o644);
  renameSync(tmp, path);
}

/** Plans the server certificate; returns the issue to run, if one is to be made. */
function serverCertificate(c: StepContext, p: StepPlan, caPem: Buffer): (() => Promise<void>) | undefined {
  const f = c.config.fussyd as NonNullable<typeof c.config.fussyd>;
  const name = c.config.device.name;
  const certAt = c.host(f.daemon.cert);
  const keyAt = c.host(f.daemon.key);
  const cert = fileAt(certAt);
  const key = fileAt(keyAt);
  const shown = `${f.daemon.cert} and ${f.daemon.key}`;
  if (cert === undefined && key === undefined) {
    p.todo.push(`issue the server certificate CN=${name}${f.sans.length > 0 ? ` (${f.sans.join(', ')})` : ''} from ${f.ca} into ${f.daemon.cert}`);
    return () => issue(c, certAt, keyAt);
  }
  const wrong = certificateProblem(cert, key, caPem, name, f.sans, c.now ?? new Date());
  if (wrong === undefined) p.done.push(`server certificate CN=${name} (${f.daemon.cert})`);
  else p.conflicts.push({ path: f.daemon.cert, why: wrong, fix: `remove ${shown} to have provision issue a new certificate (revoke the old one with fussy pki revoke if it was issued)` });
  return undefined;
}

function certificateProblem(cert: Buffer | 'other' | undefined, key: Buffer | 'other' | undefined, caPem: Buffer, name: string, sans: string[], now: Date): string | undefined {
  if (!(cert instanceof Buffer) || !(key instanceof Buffer)) return 'the certificate and its key are not both there (a provisioning stopped half way?)';
  try {
    const x = new X509Certificate(cert);
    const ca = new X509Certificate(caPem);
    if (!x.checkIssued(ca) || !x.verify(ca.publicKey)) return 'was not issued by the fleet CA of this config';
    if (x.subject !== `CN=${name}`) return `is for ${x.subject.replace(/\n/g, ', ')}, not CN=${name}`;
    if (new Date(x.validTo) <= now) return `expired on ${x.validTo}`;
    const alt = x.subjectAltName ?? '';
    const missing = sans.filter((s) => !alt.includes(`:${s}`));
    if (missing.length > 0) return `lacks the names ${missing.join(', ')} that the config gives`;
    if (!x.checkPrivateKey(createPrivateKey(key))) return 'does not match its key';
  } catch (err) {
    return `cannot be read: ${(err as Error).message}`;
  }
  return undefined;
}

async function issue(c: StepContext, certAt: string, keyAt: string): Promise<void> {
  const f = c.config.fussyd as NonNullable<typeof c.config.fussyd>;
  const name = c.config.device.name;
  const stage = join(dirname(keyAt), '.fussy-provision-tls');
  mkdirSync(dirname(keyAt), { recursive: true, mode: 0o755 });
  mkdirSync(dirname(certAt), { recursive: true, mode: 0o755 });
  await removeTree(stage);
  try {
    await pkiIssue({ dir: f.ca, kind: 'server', name, sans: f.sans, days: f.days, out: stage, now: c.now });
  } catch (err) {
    if (err instanceof FussyError && err.code === 'PKI_NAME_TAKEN') {
      throw new FussyError('PKI_NAME_TAKEN', `${err.message}, and this root holds neither its certificate nor its key`, { cause: err, hint: `if ${name} is being provisioned again, revoke the old certificate (fussy pki revoke ${name} --ca-dir ${f.ca}) and run provision again`, details: err.details });
    }
    throw err;
  }
  renameSync(join(stage, `${name}.key`), keyAt);
  renameSync(join(stage, `${name}.crt`), certAt);
  await removeTree(stage);
  await fsyncDir(dirname(keyAt));
  await fsyncDir(dirname(certAt));
}
