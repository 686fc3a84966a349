import { FussyError } from '../errors.js';

/**
 * `fussy remote --host H[,H2...]` (docs/commands.md): the devices of one command line, each
 * `NAME`, `NAME:PORT`, `[IPV6]:PORT` or a bare IPv6 address, and the pool that runs a verb on
 * them side by side, at most `limit` at a time, each host with its own client.
 */

export interface RemoteHost {
  /** As written in --host (or remote.json): what the result lines are labelled with. */
  label: string;
  host: string;
  port: number;
}

/** The hosts of a comma-separated list; `port` for those that name none. */
export function parseHostList(text: string, port: number): RemoteHost[] {
  const labels = text.split(',').map((s) => s.trim());
  if (labels.some((l) => l === '')) throw new FussyError('USAGE', `--host ${JSON.stringify(text)} has an empty name in it`, { hint: 'write --host dev1,dev2 (no spaces, no trailing comma)' });
  const seen = new Set<string>();
  return labels.map((label) => {
    if (seen.has(label)) throw new FussyError('USAGE', `--host names ${label} twice`);
    seen.add(label);
    return { label, ...splitPort(label, port) };
  });
}

function splitPort(label: string, port: number): { host: string; port: number } {
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?$/.exec(label);
  if (v6 !== null) return { host: v6[1] as string, port: v6[2] === undefined ? port : portOf(label, v6[2]) };
  const colons = label.split(':').length - 1;
  if (colons !== 1) return { host: label, port };
  const [host, p] = label.split(':') as [string, string];
  return { host, port: portOf(label, p) };
}

function portOf(label: string, p: string): number {
  const n = Number(p);
  if (!/^[0-9]{1,5}$/.test(p) || n < 1 || n > 65535) throw new FussyError('USAGE', `--host ${label}: "${p}" is not a port number`);
  return n;
}

/**
 * `fn` on every item, at most `limit` running at once; `settled(i, outcome)` is called in the
 * order of `items` (item i once it and every item before it have settled), so results can be
 * printed in the order given while later hosts still run.
 */
export async function inOrder<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, settled: (i: number, o: PromiseSettledResult<R>) => void): Promise<void> {
  const outcomes: Array<PromiseSettledResult<R> | undefined> = new Array<PromiseSettledResult<R> | undefined>(items.length).fill(undefined);
  let next = 0;
  let flushed = 0;
  const flush = (): void => {
    for (let o = outcomes[flushed]; o !== undefined; o = outcomes[flushed]) {
      outcomes[flushed] = undefined;
      settled(flushed++, o);
      if (flushed === items.length) return;
    }
  };
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        outcomes[i] = { status: 'fulfilled', value: await fn(items[i] as T) };
      } catch (err) {
        outcomes[i] = { status: 'rejected', reason: err };
      }
      flush();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
