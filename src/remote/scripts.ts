import { basename } from 'node:path';
import type { Writable } from 'node:stream';
import type { RemoteClient } from './client.js';
import { downloadToFile, uploadFile } from './data-files.js';

/** The script verbs of `fussy remote` over one client (docs/daemon.md, "HTTP API"). */

export interface RemoteScript {
  name: string;
  id: string;
  size: number;
  updated: string;
  by: { cn: string; fingerprint: string };
  older?: Array<{ id: string; size: number; updated: string }>;
}

const scriptPath = (nameOrId?: string): string => (nameOrId === undefined ? '/v1/scripts' : `/v1/scripts/${encodeURIComponent(nameOrId)}`);

export async function listScripts(c: RemoteClient): Promise<RemoteScript[]> {
  const r = await c.json('GET', scriptPath());
  return Array.isArray(r.scripts) ? (r.scripts as RemoteScript[]) : [];
}

/** Store the local `file` as script `name` (default: its base name; the extension is its kind). */
export async function putScript(c: RemoteClient, file: string, name = basename(file)): Promise<{ name: string; id: string; size: number }> {
  const { size, answer } = await uploadFile(c, file, scriptPath(name));
  return { name, id: String(answer.id), size };
}

export function readScript(c: RemoteClient, nameOrId: string, sink: Writable): Promise<number> {
  return c.download(scriptPath(nameOrId), sink, { end: false });
}

export function getScriptToFile(c: RemoteClient, nameOrId: string, file: string): Promise<number> {
  return downloadToFile(c, scriptPath(nameOrId), file);
}

/** Forget a name on the device; its ids stay (the history names them). */
export async function removeScript(c: RemoteClient, name: string): Promise<{ id: string }> {
  const r = await c.json('DELETE', scriptPath(name));
  return { id: String(r.id) };
}
