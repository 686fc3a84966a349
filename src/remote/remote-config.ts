import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FussyError, isErrno } from '../errors.js';
import { parseJsonObject } from '../util/json-object.js';

/**
 * `fussy remote`'s defaults: `$XDG_CONFIG_HOME/fussy/remote.json` (else
 * `~/.config/fussy/remote.json`), `{"host", "port", "cert", "key", "ca"}`, every key optional.
 * Relative paths in it are relative to the file's directory; flags win over it.
 */

export interface RemoteDefaults {
  host?: string;
  port?: number;
  cert?: string;
  key?: string;
  ca?: string;
}

export const DEFAULT_PORT = 6808;

/** Where the defaults file is, from the caller's environment. */
export function remoteConfigPath(env: Record<string, string | undefined>): string | undefined {
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'fussy', 'remote.json');
  return env.HOME === undefined ? undefined : join(env.HOME, '.config', 'fussy', 'remote.json');
}

/** The defaults in `file` ({} when there is none). */
export async function readRemoteDefaults(file: string | undefined): Promise<RemoteDefaults> {
  if (file === undefined) return {};
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {};
    throw new FussyError('CONFIG_INVALID', `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const json = parseJsonObject(text, (what) => invalid(file, what));
  const out: RemoteDefaults = {};
  for (const [k, v] of Object.entries(json)) {
    if (k === 'port') {
      if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) throw invalid(file, '"port" is not a port number');
      out.port = v as number;
    } else if (k === 'host' || k === 'cert' || k === 'key' || k === 'ca') {
      if (typeof v !== 'string' || v === '') throw invalid(file, `"${k}" is not a non-empty string`);
      out[k] = k === 'host' ? v : resolve(dirname(file), v);
    } else {
      throw invalid(file, `has an unknown key "${k.slice(0, 40)}"`);
    }
  }
  return out;
}

function invalid(file: string, what: string): FussyError {
  return new FussyError('CONFIG_INVALID', `${file} ${what}`, { hint: 'write {"host": "...", "port": 6808, "cert": "client.crt", "key": "client.key", "ca": "ca.crt"} (every key optional)', details: { path: file } });
}
