import { dirname, isAbsolute, resolve } from 'node:path';
import { FussyError } from '../errors.js';
import { applySettings, CONFIG_KEYS, type DaemonConfig, type Settings } from '../daemon/config.js';
import { ROLES, type RoleTable } from '../daemon/auth.js';
import { sanEntry } from '../util/host-name.js';
import { readSmallFile } from '../util/read-small-file.js';

/**
 * The provisioning config (docs/provision.md): what one device is made of, declared in one file
 * that a factory keeps next to its firmware and keys. The house `key = value` format with
 * `[section]` headers, as vmgen's INI files were: `#` comment lines, blank lines, no quoting, no
 * trailing comments. Keys marked repeatable may be given more than once; any other key given
 * twice, an unknown section or key, or a bad value is CONFIG_INVALID naming `file:line`.
 *
 * Two kinds of paths: files the provisioning host reads (the package, keys, the fleet CA) are
 * relative to the config's directory; paths on the device (target, keyring, link-tree entries,
 * fussyd's files) are absolute and are taken inside `--root`.
 */

export interface LinkEntry {
  /** A device path: the tree whose files get links (the firmware's, through `current`). */
  source: string;
  /** A device path: where the links go. */
  dest: string;
}

export interface ProvisionConfig {
  /** The config file, absolute. */
  file: string;
  device: { name: string; type?: string };
  firmware: { package: string; target: string };
  keyring: {
    dir: string;
    /** Host paths of the signing public keys the device trusts. */
    trust: string[];
    /** Host paths of unprotected secret keys to add (a fleet decryption key). */
    secretKeys: string[];
    threshold?: number;
    legacy?: 'allow' | 'refuse';
    /** Generate the device's own decryption key (default yes). */
    deviceKey: boolean;
  };
  links: LinkEntry[];
  /** Move a different existing entry aside to NAME.fussy-orig instead of stopping. */
  linkReplace: boolean;
  /** Absent: the device runs no fussyd. */
  fussyd?: {
    /** The fleet CA directory (fussy pki init) on the provisioning host. */
    ca: string;
    sans: string[];
    days?: number;
    enable: boolean;
    /** fussyd.conf's keys, checked as fussyd checks them, in the config's order. */
    settings: [string, string][];
    /** fussyd's configuration with those keys: where its certificates, roles and CRL go. */
    daemon: DaemonConfig;
    roles?: RoleTable;
  };
}

const CONFIG_MAX = 256 * 1024;
const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

type Raw = Map<string, { values: string[]; where: string[] }>;

const SECTIONS: Record<string, { keys: readonly string[]; repeatable?: readonly string[]; open?: boolean }> = {
  device: { keys: ['name', 'type'] },
  firmware: { keys: ['package', 'target'] },
  keyring: { keys: ['dir', 'trust', 'secret-key', 'threshold', 'legacy', 'device-key'], repeatable: ['trust', 'secret-key'] },
  'link-tree': { keys: ['link', 'replace'], repeatable: ['link'] },
  fussyd: { keys: ['ca', 'san', 'days', 'enable'], repeatable: ['san'], open: true },
  roles: { keys: ROLES },
};

/** Read and check a provisioning config; `deviceName` overrides `[device] name` (one config, many units). */
export function loadProvisionConfig(path: string, deviceName?: string): ProvisionConfig {
  const file = resolve(path);
  const r = readSmallFile(file, CONFIG_MAX);
  if (r === undefined) throw new FussyError('CONFIG_INVALID', `the provisioning config ${file} does not exist`, { hint: 'give the config file (docs/provision.md)', details: { path: file } });
  if ('problem' in r) throw new FussyError('CONFIG_INVALID', `the provisioning config ${file} ${r.problem}`, { hint: `make it a regular file of at most ${CONFIG_MAX} bytes`, details: { path: file } });
  return parseProvisionConfig(r.data.toString('utf8'), file, deviceName);
}

export function parseProvisionConfig(text: string, file: string, deviceName?: string): ProvisionConfig {
  const sections = new Map<string, Raw>();
  let section: string | undefined;
  text.split('\n').forEach((rawLine, i) => {
    const where = `${file}:${i + 1}`;
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const head = /^\[([a-z-]+)\]$/.exec(line);
    if (head !== null) {
      section = head[1] as string;
      if (SECTIONS[section] === undefined) throw invalid(where, `unknown section [${section}]`, `the sections are: ${Object.keys(SECTIONS).map((s) => `[${s}]`).join(' ')}`);
      if (sections.has(section)) throw invalid(where, `section [${section}] appears twice`);
      sections.set(section, new Map());
      return;
    }
    if (section === undefined) throw invalid(where, 'a key before the first [section]', 'start with [device]');
    const eq = line.indexOf('=');
    if (eq < 0) throw invalid(where, `"${clip(line)}" is not "key = value"`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const spec = SECTIONS[section] as (typeof SECTIONS)[string];
    const known = spec.keys.includes(key) || (spec.open === true && key in CONFIG_KEYS);
    if (!known) throw invalid(where, `unknown key "${clip(key)}" in [${section}]`, `the keys of [${section}] are: ${spec.keys.join(', ')}${spec.open === true ? ', and any fussyd.conf key (man 5 fussyd.conf)' : ''}`);
    if (value === '') throw invalid(where, `"${key}" has an empty value`);
    const raw = sections.get(section) as Raw;
    const had = raw.get(key);
    if (had !== undefined && !(spec.repeatable ?? []).includes(key)) throw invalid(where, `"${key}" is set twice in [${section}] (first at ${had.where[0]})`);
    if (had === undefined) raw.set(key, { values: [value], where: [where] });
    else {
      had.values.push(value);
      had.where.push(where);
    }
  });
  return build(sections, file, deviceName);
}

function build(sections: Map<string, Raw>, file: string, deviceName: string | undefined): ProvisionConfig {
  const base = dirname(file);
  const get = (s: string, k: string): { value: string; where: string } | undefined => {
    const e = sections.get(s)?.get(k);
    return e === undefined ? undefined : { value: e.values[0] as string, where: e.where[0] as string };
  };
  const all = (s: string, k: string): { value: string; where: string }[] => {
    const e = sections.get(s)?.get(k);
    return e === undefined ? [] : e.values.map((value, i) => ({ value, where: e.where[i] as string }));
  };
  const need = (s: string, k: string, hint: string): { value: string; where: string } => {
    const e = get(s, k);
    if (e === undefined) throw invalid(file, `[${s}] ${k} is required`, hint);
    return e;
  };
  const hostPath = (e: { value: string }): string => resolve(base, e.value);
  const devicePath = (e: { value: string; where: string } | undefined, fallback: string): string => {
    if (e === undefined) return fallback;
    if (!isAbsolute(e.value) || e.value.includes('\0')) throw invalid(e.where, `"${clip(e.value)}" is not an absolute path on the device`);
    return resolve(e.value);
  };
  const yesNo = (e: { value: string; where: string } | undefined, fallback: boolean): boolean => {
    if (e === undefined) return fallback;
    if (e.value !== 'yes' && e.value !== 'no') throw invalid(e.where, `"${clip(e.value)}" is not yes or no`);
    return e.value === 'yes';
  };

  const nameEntry = deviceName === undefined ? need('device', 'name', 'name the device: its key, its certificate and the exported public key are named after it') : { value: deviceName, where: '--device-name' };
  if (!DEVICE_NAME.test(nameEntry.value)) throw invalid(nameEntry.where, `"${clip(nameEntry.value)}" is not a device name: letters, digits, ".", "_" and "-", at most 63, not starting with "." or "-"`);
  const type = get('device', 'type');
  if (type !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/.test(type.value)) throw invalid(type.where, `"${clip(type.value)}" is not a device type`);

  const threshold = get('keyring', 'threshold');
  if (threshold !== undefined && !/^[1-9][0-9]{0,2}$/.test(threshold.value)) throw invalid(threshold.where, `threshold must be a whole number >= 1, not "${clip(threshold.value)}"`);
  const legacy = get('keyring', 'legacy');
  if (legacy !== undefined && legacy.value !== 'allow' && legacy.value !== 'refuse') throw invalid(legacy.where, `legacy must be allow or refuse, not "${clip(legacy.value)}"`);
  const trust = all('keyring', 'trust');
  if (trust.length === 0) throw invalid(file, '[keyring] names no signing key to trust', 'add trust = FILE, the public key the build server signs with (fussy keygen signing)');

  if (sections.has('roles') && !sections.has('fussyd')) throw invalid(file, '[roles] without [fussyd]: the roles are fussyd\'s', 'add [fussyd] with its ca, or drop [roles]');
  const links = all('link-tree', 'link').map((e) => {
    const parts = e.value.split(/\s+/);
    if (parts.length !== 2) throw invalid(e.where, `"${clip(e.value)}" is not "SOURCE DEST" (two absolute device paths, as fussy link-tree takes them)`);
    return { source: devicePath({ value: parts[0] as string, where: e.where }, ''), dest: devicePath({ value: parts[1] as string, where: e.where }, '') };
  });

  const firmwareTarget = { target: devicePath(get('firmware', 'target'), '/opt/firmware') };
  const keyringDir = devicePath(get('keyring', 'dir'), '/etc/fussy/keys');
  return {
    file,
    device: { name: nameEntry.value, type: type?.value },
    firmware: { package: hostPath(need('firmware', 'package', 'the factory firmware package, made by fussy pack')), target: firmwareTarget.target },
    keyring: {
      dir: keyringDir,
      trust: trust.map(hostPath),
      secretKeys: all('keyring', 'secret-key').map(hostPath),
      threshold: threshold === undefined ? undefined : Number(threshold.value),
      legacy: legacy?.value as 'allow' | 'refuse' | undefined,
      deviceKey: yesNo(get('keyring', 'device-key'), true),
    },
    links,
    linkReplace: yesNo(get('link-tree', 'replace'), false),
    fussyd: sections.has('fussyd') ? fussydSection(sections, file, nameEntry.value, firmwareTarget, keyringDir, { need, all, get, hostPath, yesNo }) : undefined,
  };
}

interface Getters {
  need: (s: string, k: string, hint: string) => { value: string; where: string };
  all: (s: string, k: string) => { value: string; where: string }[];
  get: (s: string, k: string) => { value: string; where: string } | undefined;
  hostPath: (e: { value: string }) => string;
  yesNo: (e: { value: string; where: string } | undefined, fallback: boolean) => boolean;
}

function fussydSection(sections: Map<string, Raw>, file: string, name: string, firmware: { target: string }, keyringDir: string, g: Getters): NonNullable<ProvisionConfig['fussyd']> {
  const days = g.get('fussyd', 'days');
  if (days !== undefined && !/^[1-9][0-9]{0,4}$/.test(days.value)) throw invalid(days.where, `days must be a whole number of days, not "${clip(days.value)}"`);
  const own = new Set(SECTIONS.fussyd?.keys);
  const given: Settings = new Map();
  for (const [key, e] of sections.get('fussyd') ?? new Map<string, { values: string[]; where: string[] }>()) {
    if (!own.has(key)) given.set(key, { value: e.values[0] as string, where: e.where[0] as string });
  }
  // Checked as fussyd will check it, so a bad value stops here, at the factory, not at the device's first boot.
  const daemon = applySettings(given);
  const settings = [...given].map(([k, e]): [string, string] => [k, e.value]);
  for (const e of g.all('fussyd', 'san')) {
    if (sanEntry(e.value) === undefined) throw invalid(e.where, `san "${clip(e.value)}" is neither a DNS name nor an IP address`, 'e.g. san = unit-17.example or san = 192.0.2.17');
  }
  if (sanEntry(name) === undefined || name.startsWith('*')) throw invalid(file, `the device name "${clip(name)}" is not a DNS name: with [fussyd] it is the server certificate's name`, 'letters, digits and inner hyphens, in dot-separated labels (no "_")');
  // fussyd installs into the target with the keyring provision made: the same paths, said once.
  for (const [key, path, fallback] of [['target', firmware.target, daemon.target], ['keyring', keyringDir, daemon.keyring]] as const) {
    if (path === fallback) continue;
    if (given.has(key) && resolve(given.get(key)?.value ?? '') === path) {
      settings.splice(settings.findIndex(([k]) => k === key), 1, [key, path]);
      daemon[key] = path;
      continue;
    }
    if (given.has(key)) throw invalid(given.get(key)?.where ?? file, `[fussyd] ${key} = ${fallback} is not the ${key === 'target' ? '[firmware] target' : '[keyring] dir'} ${path}`, `drop ${key} from [fussyd]: provision writes the ${key} it sets up`);
    settings.push([key, path]);
    daemon[key] = path;
  }
  let roles: RoleTable | undefined;
  if (sections.has('roles')) {
    roles = { viewer: [], operator: [], admin: [] };
    for (const role of ROLES) {
      for (const e of g.all('roles', role)) {
        for (const cn of e.value.split(/[\s,]+/).filter((s) => s !== '')) {
          if (!/^[A-Za-z0-9_][A-Za-z0-9._@-]{0,127}$/.test(cn)) throw invalid(e.where, `"${clip(cn)}" is not a certificate CN fussy issues`);
          roles[role].push(cn);
        }
      }
    }
  }
  return {
    ca: g.hostPath(g.need('fussyd', 'ca', 'the fleet CA directory (fussy pki init) that issues the device its server certificate')),
    sans: g.all('fussyd', 'san').map((e) => e.value),
    days: days === undefined ? undefined : Number(days.value),
    enable: g.yesNo(g.get('fussyd', 'enable'), true),
    settings,
    daemon,
    roles,
  };
}

function invalid(where: string, what: string, hint?: string): FussyError {
  return new FussyError('CONFIG_INVALID', `${where}: ${what}`, { hint: hint ?? 'see docs/provision.md', details: { where } });
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}...` : s;
}
