/**
 * fussyd for tests: a state directory, roles file and configuration in a temp dir, the daemon
 * started in this process (Daemon.start) or as a real child (bin/fussyd), and HTTPS requests with
 * a chosen client certificate and a raw request target (no URL normalisation on the way).
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { request } from 'node:https';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { defaultConfig, type DaemonConfig } from '../../src/daemon/config.js';
import { Daemon } from '../../src/daemon/server.js';
import { cli } from './cli.js';
import { makeTmp } from './tmp.js';
import { tlsFixtures, type Creds } from './tls-fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));

export const ROLES = { admin: ['admin-cn'], operator: ['operator-cn'], viewer: ['viewer-cn'] };

export interface Setup {
  dir: string;
  config: DaemonConfig;
  stateDir: string;
  dataDir: string;
  rolesFile: string;
  crlFile: string;
}

/** Files for a daemon in `dir`: roles, a copy of the CRL (tests change it), state and target dirs. */
export async function setup(dir: string, o: { crl?: 'empty' | 'revoked' } = {}): Promise<Setup> {
  const f = await tlsFixtures();
  const stateDir = join(dir, 'state');
  const rolesFile = join(dir, 'roles.json');
  const crlFile = join(dir, 'client-ca.crl');
  mkdirSync(join(dir, 'target'), { recursive: true });
  writeFileSync(rolesFile, JSON.stringify(ROLES));
  writeFileSync(crlFile, readFileSync(o.crl === 'empty' ? f.emptyCrl : f.crl));
  const config: DaemonConfig = {
    ...defaultConfig(),
    listen: { host: '127.0.0.1', port: 0 },
    cert: f.server.cert,
    key: f.server.key,
    clientCa: f.ca,
    crl: crlFile,
    roles: rolesFile,
    stateDir,
    target: join(dir, 'target'),
  };
  return { dir, config, stateDir, dataDir: join(stateDir, 'data'), rolesFile, crlFile };
}

export async function startInProcess(s: Setup, overrides: Partial<DaemonConfig> = {}): Promise<{ daemon: Daemon; port: number; log: Array<Record<string, unknown>> }> {
  const log: Array<Record<string, unknown>> = [];
  const daemon = await Daemon.start({ ...s.config, ...overrides }, { log: (e) => log.push(e), watchIntervalMs: 50 });
  return { daemon, port: daemon.address.port, log };
}

/** The configuration file for `s` (every key written out), for bin/fussyd. */
export function writeConfigFile(s: Setup, extra: string[] = []): string {
  const c = s.config;
  const file = join(s.dir, 'fussyd.conf');
  writeFileSync(
    file,
    ['# written by test/helpers/fussyd.ts', `listen = ${c.listen.host}:${c.listen.port}`, `cert = ${c.cert}`, `key = ${c.key}`, `client-ca = ${c.clientCa}`, `crl = ${c.crl}`, `roles = ${c.roles}`, `state-dir = ${c.stateDir}`, `target = ${c.target}`, ...extra, ''].join('\n'),
  );
  return file;
}

export interface Child {
  child: ResultPromise;
  port: number;
  stderr: () => string;
  /** Resolves when stderr matches `re` (from the start). */
  waitFor: (re: RegExp) => Promise<void>;
  stop: () => Promise<void>;
}

/**
 * bin/fussyd.js as a child process (`launcher`: through the bin/fussyd sh launcher, with its node
 * flags, as a device runs it; it execs node, so the child's pid is node's); resolves once it listens.
 */
export async function startChild(args: string[], o: { launcher?: boolean; timeoutMs?: number } = {}): Promise<Child> {
  const timeout = o.timeoutMs ?? 120_000; // a hung test does not leave a fussyd behind
  const child = o.launcher === true ? execa(`${BIN}fussyd`, args, { reject: false, stdin: 'ignore', timeout }) : execa(process.execPath, [`${BIN}fussyd.js`, ...args], { reject: false, stdin: 'ignore', timeout });
  let err = '';
  const waiters: Array<() => void> = [];
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = (re: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (re.test(err)) resolve();
        else if (child.exitCode !== null) reject(new Error(`fussyd ended (${child.exitCode}) before ${re}: ${err}`));
        else waiters.push(check);
      };
      void child.then(() => waiters.length > 0 && check());
      check();
    });
  await waitFor(/"event":"listening"/);
  const port = Number(/"event":"listening".*?"port":(\d+)/.exec(err)?.[1]);
  return {
    child,
    port,
    stderr: () => err,
    waitFor,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

export interface Answer {
  status: number;
  body: Buffer;
  json: Record<string, unknown> & { error?: { code: string; message: string } };
}

/** One request with `creds` (undefined: no client certificate) to the raw `path`. */
export async function call(port: number, creds: Creds | undefined, method: string, path: string, o: { body?: Buffer | string; type?: string; agent?: Agent; ca?: Buffer } = {}): Promise<Answer> {
  const f = await tlsFixtures();
  return new Promise((resolve, reject) => {
    const body = typeof o.body === 'string' ? Buffer.from(o.body) : o.body;
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        ca: o.ca ?? f.caPem,
        ...(creds === undefined ? {} : { cert: creds.certPem, key: creds.keyPem }),
        agent: o.agent ?? false,
        headers: body === undefined ? {} : { 'content-type': o.type ?? 'application/octet-stream', 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          let json = {};
          if ((res.headers['content-type'] ?? '').startsWith('application/json')) json = JSON.parse(b.toString()) as Record<string, unknown>;
          resolve({ status: res.statusCode ?? 0, body: b, json });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface AuditLine {
  cn: string;
  fingerprint: string;
  remote: string;
  action: string;
  resource: string;
  decision: 'allow' | 'deny';
  reason?: string;
}

export function auditLines(s: Setup): AuditLine[] {
  let text = '';
  try {
    text = readFileSync(join(s.stateDir, 'audit.jsonl'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as AuditLine);
}

/** The SHA-256 fingerprint of a PEM certificate, as the daemon records it. */
export async function fingerprintOf(creds: Creds): Promise<string> {
  const { X509Certificate } = await import('node:crypto');
  return new X509Certificate(creds.certPem).fingerprint256;
}

/** A describe block's real bin/fussyd, made before its tests; `work` is an empty dir for the client's files. */
export interface UsedChild {
  readonly s: Setup;
  readonly d: Child;
  readonly work: string;
  /** `fussy remote` as `creds` against this fussyd, run in `work` with HOME there (no remote.json of this machine's). */
  remote(creds: Creds, args: string[], env?: Record<string, string>): ReturnType<typeof cli>;
}

/** Start a real bin/fussyd before the block's tests and stop it after (its log printed when a test failed). */
export function useChild(prefix: string, o: { timeoutMs?: number } = {}): UsedChild {
  const state = {} as { s: Setup; d: Child; work: string };
  before(async function () {
    state.s = await setup(await makeTmp(prefix));
    state.d = await startChild(['--config', writeConfigFile(state.s)], o);
    state.work = join(state.s.dir, 'work');
    mkdirSync(state.work);
  });
  after(async function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(state.d.stderr());
    await state.d?.stop();
  });
  return {
    get s() {
      return state.s;
    },
    get d() {
      return state.d;
    },
    get work() {
      return state.work;
    },
    async remote(creds, args, env = {}) {
      const f = await tlsFixtures();
      return cli('fussy', ['remote', '--host', '127.0.0.1', '--port', String(state.d.port), '--ca', f.ca, '--cert', creds.cert, '--key', creds.key, ...args], { cwd: state.work, env: { HOME: state.work, ...env } });
    },
  };
}

/** A describe block's fussyd in this process (Daemon.start), made before its tests and closed after. */
export interface UsedInProcess {
  readonly s: Setup;
  readonly daemon: Daemon;
  readonly port: number;
  readonly log: Array<Record<string, unknown>>;
}

export function useInProcess(prefix: string, overrides: Partial<DaemonConfig> = {}): UsedInProcess {
  const state = {} as { s: Setup; daemon: Daemon; port: number; log: Array<Record<string, unknown>> };
  before(async function () {
    state.s = await setup(await makeTmp(prefix));
    Object.assign(state, await startInProcess(state.s, overrides));
  });
  after(async function () {
    await state.daemon?.close();
  });
  return state;
}
