import { resolve } from 'node:path';
import { FussyError } from '../errors.js';
import { readSettingFile } from './read-setting-file.js';

/**
 * fussyd's configuration (docs/daemon.md, "Configuration"): `/etc/fussy/fussyd.conf`, lines
 * `key = value`, `#` comment lines, blank lines; the keys are the long flag names, every key is
 * also a flag and flags win. An unknown key, a key given twice or a bad value is CONFIG_INVALID
 * naming `file:line` (or the flag). No quoting and no trailing comments: a path may hold `#`.
 */

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

export interface Listen {
  host: string;
  port: number;
}

export interface DaemonConfig {
  listen: Listen;
  cert: string;
  key: string;
  clientCa: string;
  /** Undefined: no CRL (the default file is used only when it exists). */
  crl: string | undefined;
  roles: string;
  stateDir: string;
  target: string;
  keyring: string;
  runAs: string;
  maxConnections: number;
  maxRuns: number;
  maxScriptBytes: number;
  maxDataBytes: number;
  maxUploadBytes: number;
  maxUploads: number;
  maxHeaderBytes: number;
  /** Seconds. */
  runTimeout: number;
  maxRunTimeout: number;
  outputHead: number;
  outputTail: number;
  historyKeep: number;
  historyDays: number;
  /** A stored script run when a job that names no notify command fails or recovers; undefined: none. */
  scheduleNotify: string | undefined;
  /** Milliseconds: a client must finish its TLS handshake, its headers, its whole request within these; idle sockets close. */
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
}

type Kind = 'path' | 'listen' | 'count' | 'bytes' | 'seconds' | 'user' | 'script';

interface Key {
  field: keyof DaemonConfig;
  kind: Kind;
  /** ms: the value is seconds in the file, milliseconds in DaemonConfig. */
  ms?: boolean;
  /** One line for --help and the man page: what it is, and its default. */
  help: string;
  min?: number;
  max?: number;
}

/** Every key of fussyd.conf and flag of fussyd, by its long name. */
export const CONFIG_KEYS: Readonly<Record<string, Key>> = {
  listen: { field: 'listen', kind: 'listen', help: 'HOST:PORT to listen on (0.0.0.0:6808)' },
  cert: { field: 'cert', kind: 'path', help: "the device's server certificate, PEM (/etc/fussy/tls/server.crt)" },
  key: { field: 'key', kind: 'path', help: 'its private key, PEM (/etc/fussy/tls/server.key)' },
  'client-ca': { field: 'clientCa', kind: 'path', help: 'the only CA whose client certificates are accepted (/etc/fussy/tls/client-ca.crt)' },
  crl: { field: 'crl', kind: 'path', help: 'revoked client certificates (/etc/fussy/tls/client-ca.crl when present)' },
  roles: { field: 'roles', kind: 'path', help: 'JSON: role -> certificate CNs (/etc/fussy/roles.json)' },
  'state-dir': { field: 'stateDir', kind: 'path', help: 'scripts, data, runs, uploads, audit (/var/lib/fussy)' },
  target: { field: 'target', kind: 'path', help: 'the firmware directory uploads install into (/opt/firmware)' },
  keyring: { field: 'keyring', kind: 'path', help: 'the device keyring that decides what installs (/etc/fussy/keys)' },
  'run-as': { field: 'runAs', kind: 'user', help: 'the user scripts run as (root)' },
  'max-connections': { field: 'maxConnections', kind: 'count', min: 1, max: 65536, help: 'open TLS connections at most (64)' },
  'max-runs': { field: 'maxRuns', kind: 'count', min: 1, max: 1024, help: 'runs at once; the rest wait in a priority queue (4)' },
  'max-script-bytes': { field: 'maxScriptBytes', kind: 'bytes', min: 1, help: 'largest script (1M)' },
  'max-data-bytes': { field: 'maxDataBytes', kind: 'bytes', min: 1, help: 'largest data file (64M)' },
  'max-upload-bytes': { field: 'maxUploadBytes', kind: 'bytes', min: 1, help: 'largest firmware upload (2G)' },
  'max-uploads': { field: 'maxUploads', kind: 'count', min: 1, max: 1024, help: 'uploads held at once, partial or whole; the least recently written one not in use makes room for a new one (4)' },
  'max-header-bytes': { field: 'maxHeaderBytes', kind: 'bytes', min: 1024, max: 1 * MIB, help: 'request line and headers at most (16K)' },
  'run-timeout': { field: 'runTimeout', kind: 'seconds', min: 1, help: "a run's time limit unless exec --timeout says otherwise (1h)" },
  'max-run-timeout': { field: 'maxRunTimeout', kind: 'seconds', min: 1, help: 'the longest exec --timeout allowed (1d)' },
  'output-head': { field: 'outputHead', kind: 'bytes', min: 0, help: 'output kept from the start of each stream of a run (1M)' },
  'output-tail': { field: 'outputTail', kind: 'bytes', min: 0, help: 'output kept from the end of each stream of a run (64K)' },
  'history-keep': { field: 'historyKeep', kind: 'count', min: 1, help: 'runs kept in the history (10000)' },
  'history-days': { field: 'historyDays', kind: 'count', min: 1, help: 'days a run is kept in the history (90)' },
  'schedule-notify': { field: 'scheduleNotify', kind: 'script', help: 'a stored script run when a scheduled job that names no notify fails, and when it recovers (none)' },
  'handshake-timeout': { field: 'handshakeTimeoutMs', kind: 'seconds', ms: true, min: 1, max: 3600, help: 'a TLS handshake must end within (10s)' },
  'headers-timeout': { field: 'headersTimeoutMs', kind: 'seconds', ms: true, min: 1, max: 3600, help: 'request headers must arrive within (20s)' },
  'request-timeout': { field: 'requestTimeoutMs', kind: 'seconds', ms: true, min: 1, max: 86400, help: 'a whole request must arrive within (1h)' },
  'keep-alive-timeout': { field: 'keepAliveTimeoutMs', kind: 'seconds', ms: true, min: 1, max: 3600, help: 'an idle kept-alive connection is closed after (5s)' },
  'idle-timeout': { field: 'idleTimeoutMs', kind: 'seconds', ms: true, min: 1, max: 86400, help: 'a connection without a byte is closed after (60s)' },
};

export const DEFAULT_CONFIG_FILE = '/etc/fussy/fussyd.conf';
/** Used when present, unless `crl` is set. */
export const DEFAULT_CRL = '/etc/fussy/tls/client-ca.crl';

export function defaultConfig(): DaemonConfig {
  return {
    listen: { host: '0.0.0.0', port: 6808 },
    cert: '/etc/fussy/tls/server.crt',
    key: '/etc/fussy/tls/server.key',
    clientCa: '/etc/fussy/tls/client-ca.crt',
    crl: undefined,
    roles: '/etc/fussy/roles.json',
    stateDir: '/var/lib/fussy',
    target: '/opt/firmware',
    keyring: '/etc/fussy/keys',
    runAs: 'root',
    maxConnections: 64,
    maxRuns: 4,
    maxScriptBytes: 1 * MIB,
    maxDataBytes: 64 * MIB,
    maxUploadBytes: 2 * GIB,
    maxUploads: 4,
    maxHeaderBytes: 16 * KIB,
    runTimeout: 3600,
    maxRunTimeout: 86400,
    outputHead: 1 * MIB,
    outputTail: 64 * KIB,
    historyKeep: 10000,
    historyDays: 90,
    scheduleNotify: undefined,
    handshakeTimeoutMs: 10_000,
    headersTimeoutMs: 20_000,
    requestTimeoutMs: 3_600_000,
    keepAliveTimeoutMs: 5_000,
    idleTimeoutMs: 60_000,
  };
}

/** The settings of one file or of the flags: key -> [raw value, where it came from]. */
export type Settings = Map<string, { value: string; where: string }>;

/** Parse the text of fussyd.conf; `file` names it in errors. */
export function parseConfigText(text: string, file: string): Settings {
  const out: Settings = new Map();
  text.split('\n').forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw invalid(where, `"${clip(line)}" is not "key = value"`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!(key in CONFIG_KEYS)) throw invalid(where, `unknown key "${clip(key)}"`, `the keys are: ${Object.keys(CONFIG_KEYS).join(', ')}`);
    const before = out.get(key);
    if (before !== undefined) throw invalid(where, `"${key}" is set twice (first at ${before.where})`);
    out.set(key, { value, where });
  });
  return out;
}

/**
 * The configuration: defaults, then the file, then the flags. `file` undefined: the default
 * file if it exists; a file named explicitly must exist.
 */
export function loadConfig(o: { file?: string; flags: Settings; exists?: (path: string) => boolean }): DaemonConfig {
  const path = o.file ?? DEFAULT_CONFIG_FILE;
  const data = readSettingFile(path, 'CONFIG_INVALID', 'configuration file');
  if (data === undefined && o.file !== undefined) throw new FussyError('CONFIG_INVALID', `the configuration file ${path} does not exist`, { hint: 'give an existing file with --config, or none to use the defaults' });
  const text = data?.toString('utf8') ?? '';
  const merged: Settings = new Map([...parseConfigText(text, path), ...o.flags]);
  const config = applySettings(merged);
  if (!merged.has('crl') && (o.exists ?? (() => false))(DEFAULT_CRL)) config.crl = DEFAULT_CRL;
  return config;
}

/** The defaults with `settings` applied, each value checked (CONFIG_INVALID naming where it came from). */
export function applySettings(settings: Settings): DaemonConfig {
  const config = defaultConfig();
  const target = config as unknown as Record<string, unknown>;
  for (const [name, { value, where }] of settings) {
    const key = CONFIG_KEYS[name];
    if (key === undefined) throw invalid(where, `unknown key "${clip(name)}"`);
    target[key.field] = parseValue(key, value, where);
  }
  return config;
}

function parseValue(key: Key, value: string, where: string): unknown {
  if (value === '') throw invalid(where, 'empty value');
  switch (key.kind) {
    case 'path':
      if (value.includes('\0')) throw invalid(where, 'a path holds a NUL byte');
      // A flag is typed in a shell: relative to its working directory. The file must say where.
      if (where.startsWith('--')) return resolve(value);
      if (!value.startsWith('/')) throw invalid(where, `"${clip(value)}" is not an absolute path`);
      return value;
    case 'user':
      if (!/^[a-z_][a-z0-9_-]{0,31}$|^[0-9]+$/.test(value)) throw invalid(where, `"${clip(value)}" is not a user name or uid`);
      return value;
    case 'listen':
      return parseListen(value, where);
    case 'script':
      if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(value)) throw invalid(where, `"${clip(value)}" is not a script name`, 'name a stored script (fussy remote ls), e.g. notify.sh');
      return value;
    case 'count':
      return bounded(key, Number(/^[0-9]+$/.test(value) ? value : NaN), value, where);
    case 'bytes':
      return bounded(key, parseBytes(value), value, where);
    case 'seconds': {
      const s = bounded(key, parseSeconds(value), value, where);
      return key.ms === true ? s * 1000 : s;
    }
  }
}

function bounded(key: Key, n: number, value: string, where: string): number {
  if (!Number.isSafeInteger(n)) throw invalid(where, `"${clip(value)}" is not a ${key.kind === 'count' ? 'whole number' : key.kind === 'bytes' ? 'size (1048576, 64K, 64M, 2G)' : 'duration (90, 90s, 15m, 2h, 1d)'}`);
  if (key.min !== undefined && n < key.min) throw invalid(where, `${value} is below the least allowed, ${key.min}`);
  if (key.max !== undefined && n > key.max) throw invalid(where, `${value} is above the most allowed, ${key.max}`);
  return n;
}

/** `1048576`, `64K`, `64M`, `2G` (also `KiB`, `MiB`, `GiB`): powers of 1024. */
export function parseBytes(value: string): number {
  const m = /^([0-9]+)\s*(?:([KMG])(?:iB)?)?$/i.exec(value);
  if (m === null) return NaN;
  const unit = { K: KIB, M: MIB, G: GIB }[(m[2] ?? '').toUpperCase() as 'K' | 'M' | 'G'] ?? 1;
  return Number(m[1]) * unit;
}

/** `90`, `90s`, `15m`, `2h`, `1d`: whole seconds. */
export function parseSeconds(value: string): number {
  const m = /^([0-9]+)\s*([smhd])?$/.exec(value);
  if (m === null) return NaN;
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'] ?? 1);
}

/** `HOST:PORT`, `[v6]:PORT`; port 0 picks a free one (tests). */
export function parseListen(value: string, where: string): Listen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) throw invalid(where, `"${clip(value)}" is not HOST:PORT`, 'for example 0.0.0.0:6808, or [::]:6808 for IPv6');
  return { host: m[1] ?? m[2] ?? '', port };
}

function invalid(where: string, what: string, hint?: string): FussyError {
  return new FussyError('CONFIG_INVALID', `${where}: ${what}`, { hint: hint ?? 'see docs/daemon.md, "Configuration"', details: { where } });
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}...` : s;
}
