import { createPrivateKey, X509Certificate } from 'node:crypto';
import { lstatSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FussyError } from '../errors.js';
import { pkiIssue, pkiList } from '../index.js';
import { DEFAULT_CONFIG_FILE, DEFAULT_CRL } from '../daemon/config.js';
import { fsyncDir, writeAtomic } from '../util/fs-atomic.js';
import { sanEntry } from '../util/host-name.js';
import { removeTree } from '../util/remove-tree.js';
import { fileAt, plan, wholeFile, writeNew, type StepContext, type StepPlan } from './step.js';

const STAGE = '.fussy-provision-tls';
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
  const replaces: (() => Promise<void>)[] = [];
  const caCert = fileAt(join(f.ca, 'ca.crt'));
  if (caCert === undefined || caCert === 'other') throw new FussyError('PKI_NOT_A_CA', `${f.ca} holds no ca.crt: it is not a CA made by fussy pki init`, { hint: 'check [fussyd] ca (relative to the config file)' });

  const conf = c.host(DEFAULT_CONFIG_FILE);
  const text = HEADER + f.settings.map(([k, v]) => `${k} = ${v}\n`).join('');
  const have = fileAt(conf);
  const onlyComments = have instanceof Buffer && have.toString('utf8').split('\n').every((l) => l.trim() === '' || l.trim().startsWith('#'));
  if (f.settings.length === 0 && (have === undefined || onlyComments)) p.done.push(`${DEFAULT_CONFIG_FILE}: the defaults`);
  else if (onlyComments && !(have as Buffer).equals(Buffer.from(text))) {
    p.todo.push(`write ${DEFAULT_CONFIG_FILE} (${f.settings.map(([k]) => k).join(', ')})`);
    replaces.push(() => writeAtomic(conf, text, { mode: 0o644, purpose: 'provision' }));
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
  const issue = await serverCertificate(c, p, caCert);
  if (p.todo.length > 0) {
    p.apply = async () => {
      for (const w of writes) w();
      for (const r of replaces) await r();
      await issue?.();
    };
  }
  return p;
}


/**
 * Plans the server certificate; returns what to run, if anything. The pair may also lie in the
 * stage directory, issued by a run that stopped before it placed both files: it is checked like
 * a placed one and moved into place, so a stop at any point is finished by running again
 * (issuing again would meet the CA's valid certificate for the name).
 */
async function serverCertificate(c: StepContext, p: StepPlan, caPem: Buffer): Promise<(() => Promise<void>) | undefined> {
  const f = c.config.fussyd as NonNullable<typeof c.config.fussyd>;
  const name = c.config.device.name;
  const certAt = c.host(f.daemon.cert);
  const keyAt = c.host(f.daemon.key);
  const stage = join(dirname(keyAt), STAGE);
  const staged = { cert: join(stage, `${name}.crt`), key: join(stage, `${name}.key`) };
  const stageSt = lstatSync(stage, { throwIfNoEntry: false });
  if (stageSt !== undefined && !stageSt.isDirectory()) {
    p.conflicts.push({ path: c.device(stage), why: 'is not a directory (a link?): provision issues the certificate there', fix: `remove ${c.device(stage)}` });
    return undefined;
  }
  // Only the stage provision made is looked in; never through a link (above).
  const found = (at: string, inStage: string): string | undefined => (fileAt(at) !== undefined ? at : stageSt !== undefined && fileAt(inStage) instanceof Buffer ? inStage : undefined);
  const cert = found(certAt, staged.cert);
  const key = found(keyAt, staged.key);
  const fromStage = cert === staged.cert || key === staged.key;
  const shown = [cert, key].filter((x): x is string => x !== undefined).map(c.device).join(' and ');
  if (cert === undefined && key === undefined) {
    p.todo.push(`issue the server certificate CN=${name}${f.sans.length > 0 ? ` (${f.sans.join(', ')})` : ''} from ${f.ca} into ${f.daemon.cert}`);
    return async () => {
      await issue(c, stage);
      await place(staged, { cert: certAt, key: keyAt }, stage);
    };
  }
  const wrong = await certificateProblem(cert, key, caPem, c);
  if (wrong !== undefined) {
    const what = fromStage ? `${c.device(stage)} (left by a provisioning that stopped half way)` : shown;
    p.conflicts.push({ path: fromStage ? c.device(stage) : f.daemon.cert, why: wrong, fix: `remove ${what} to have provision issue a new certificate (revoke the old one with fussy pki revoke ${name} if it was issued)` });
    return undefined;
  }
  if (cert === certAt && key === keyAt) {
    p.done.push(`server certificate CN=${name} (${f.daemon.cert})`);
    if (stageSt === undefined) return undefined;
    p.todo.push(`remove ${c.device(stage)}, left by a provisioning that stopped after placing the certificate`);
    return () => removeTree(stage);
  }
  p.todo.push(`put the server certificate CN=${name}, issued by an earlier run, into ${f.daemon.cert}`);
  return () => place(staged, { cert: certAt, key: keyAt }, stage);
}

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

async function certificateProblem(certFile: string | undefined, keyFile: string | undefined, caPem: Buffer, c: StepContext): Promise<string | undefined> {
  const f = c.config.fussyd as NonNullable<typeof c.config.fussyd>;
  const cert = certFile === undefined ? undefined : fileAt(certFile);
  const key = keyFile === undefined ? undefined : fileAt(keyFile);
  if (!(cert instanceof Buffer) || !(key instanceof Buffer)) return 'the certificate and its key are not both there as files';
  try {
    const x = new X509Certificate(cert);
    const ca = new X509Certificate(caPem);
    if (!x.checkIssued(ca) || !x.verify(ca.publicKey)) return 'was not issued by the fleet CA of this config';
    if (x.subject !== `CN=${c.config.device.name}`) return `is for ${x.subject.replace(/\n/g, ', ')}, not CN=${c.config.device.name}`;
    if (!(x.keyUsage ?? []).includes(SERVER_AUTH)) return 'is not a server certificate (no serverAuth)';
    if (new Date(x.validTo) <= (c.now ?? new Date())) return `expired on ${x.validTo}`;
    const want = new Set([c.config.device.name, ...f.sans].map((n) => sanEntry(n)));
    const have = new Set((x.subjectAltName ?? '').split(', ').map((e) => sanEntry(e.replace(/^(DNS|IP Address):/, ''))));
    if (want.size !== have.size || [...want].some((e) => !have.has(e))) return `names ${x.subjectAltName ?? 'nothing'}, not the names this config gives (${[...want].join(', ')})`;
    if (!x.checkPrivateKey(createPrivateKey(key))) return 'does not match its key';
    const serial = x.serialNumber.replace(/^0+(?=.)/, '').toUpperCase();
    const listed = (await pkiList({ dir: f.ca })).certificates.find((e) => e.serial.replace(/^0+(?=.)/, '').toUpperCase() === serial);
    if (listed?.status === 'revoked') return `was revoked (serial ${listed.serial})`;
  } catch (err) {
    if (err instanceof FussyError) throw err;
    return `cannot be read: ${(err as Error).message}`;
  }
  return undefined;
}

async function issue(c: StepContext, stage: string): Promise<void> {
  const f = c.config.fussyd as NonNullable<typeof c.config.fussyd>;
  const name = c.config.device.name;
  mkdirSync(dirname(stage), { recursive: true, mode: 0o755 });
  await removeTree(stage);
  try {
    await pkiIssue({ dir: f.ca, kind: 'server', name, sans: f.sans, days: f.days, out: stage, now: c.now });
  } catch (err) {
    if (err instanceof FussyError && err.code === 'PKI_NAME_TAKEN') {
      throw new FussyError('PKI_NAME_TAKEN', `${err.message}, and this root holds neither its certificate nor its key`, { cause: err, hint: `if ${name} is being provisioned again, revoke the old certificate (fussy pki revoke ${name} --ca-dir ${f.ca}) and run provision again`, details: err.details });
    }
    throw err;
  }
}

/** The key first, then the certificate: a stop between them leaves the certificate in the stage, where the next run finds it. */
async function place(from: { cert: string; key: string }, to: { cert: string; key: string }, stage: string): Promise<void> {
  mkdirSync(dirname(to.key), { recursive: true, mode: 0o755 });
  mkdirSync(dirname(to.cert), { recursive: true, mode: 0o755 });
  if (fileAt(to.key) === undefined) renameSync(from.key, to.key);
  await fsyncDir(dirname(to.key));
  if (fileAt(to.cert) === undefined) renameSync(from.cert, to.cert);
  await fsyncDir(dirname(to.cert));
  await removeTree(stage);
}
