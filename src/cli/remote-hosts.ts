import { Writable } from 'node:stream';
import { FussyError, INTERNAL_ERROR_EXIT } from '../errors.js';
import { RemoteClient, type RemoteOptions } from '../remote/client.js';
import { inOrder, type RemoteHost } from '../remote/hosts.js';
import { permissionProblem } from '../util/system-error.js';
import type { Io } from './io.js';
import type { CommandResult } from './render.js';

/** Where a verb runs: the Io it writes to (the process's, or one host's capture) and the host as written. */
export interface Where {
  io: Io;
  label: string;
}

export type Tls = Pick<RemoteOptions, 'cert' | 'key' | 'ca'>;

/**
 * A verb on several hosts (docs/commands.md, "Several hosts"): each host its own client, at most
 * `parallel` at once. What a verb would print is kept per host; once a host and every host before
 * it in the list are done, its result line goes to stdout (`H: ok ...`, `H: exit N ...`, or its
 * error's message), then what it printed, each line prefixed `H: ` (stdout to stdout, stderr to
 * stderr). With --json the result line is `{"host", "exitCode", "result"|"error"}`. The status:
 * 0 when every host gave 0, else the first failing host's in the order given.
 */
export async function onHosts(io: Io, hosts: RemoteHost[], o: { tls: Tls; parallel: number; json: boolean }, verb: (c: RemoteClient, at: Where) => Promise<CommandResult>): Promise<CommandResult> {
  let status = 0;
  const runs = hosts.map((h) => ({ host: h, out: capture(), err: capture() }));
  await inOrder(
    runs,
    o.parallel,
    async (r) => {
      const c = new RemoteClient({ ...o.tls, host: r.host.host, port: r.host.port });
      try {
        return await verb(c, { io: { ...io, stdout: r.out.sink, stderr: r.err.sink, stderrIsTTY: false }, label: r.host.label });
      } finally {
        c.close();
      }
    },
    (i, outcome) => {
      const r = runs[i] as (typeof runs)[number];
      const code = outcome.status === 'fulfilled' ? (outcome.value.exitCode ?? 0) : exitOf(outcome.reason);
      if (status === 0) status = code;
      io.stdout.write((o.json ? jsonLine(r.host.label, code, outcome) : textLine(r.host.label, code, outcome)) + '\n');
      prefixed(io.stdout, r.host.label, r.out.text());
      prefixed(io.stderr, r.host.label, r.err.text());
    },
  );
  return { json: {}, summary: [], exitCode: status, rendered: true };
}

function exitOf(reason: unknown): number {
  const err = permissionProblem(reason);
  return err instanceof FussyError ? err.exitCode : INTERNAL_ERROR_EXIT;
}

function textLine(label: string, code: number, o: PromiseSettledResult<CommandResult>): string {
  if (o.status === 'rejected') {
    const err = permissionProblem(o.reason);
    if (!(err instanceof FussyError)) return `${label}: exit ${code} internal error, please report it: ${oneLine(err instanceof Error ? (err.stack ?? err.message) : String(err))}`;
    return `${label}: exit ${code} ${err.code}: ${oneLine(err.message)}`;
  }
  const said = [...o.value.summary, ...(o.value.stdoutLine === undefined ? [] : [o.value.stdoutLine])].join('; ');
  return `${label}: ${code === 0 ? 'ok' : `exit ${code}`}${said === '' ? '' : ` ${said}`}`;
}

function jsonLine(label: string, code: number, o: PromiseSettledResult<CommandResult>): string {
  if (o.status === 'fulfilled') return JSON.stringify({ host: label, exitCode: code, result: o.value.json });
  const err = permissionProblem(o.reason);
  const error =
    err instanceof FussyError
      ? { code: err.code, message: err.message, hint: err.hint, ...(err.details ?? {}) }
      : { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
  return JSON.stringify({ host: label, exitCode: code, error });
}

function oneLine(s: string): string {
  return s.split('\n').join(' | ');
}

/** Each line of `text` prefixed `label: `; a last line without its newline gets one. */
function prefixed(sink: NodeJS.WritableStream, label: string, text: string): void {
  if (text === '') return;
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  sink.write(lines.map((l) => `${label}: ${l}\n`).join(''));
}

/** A Writable that keeps what is written (a host's output is bounded: the device caps a run's). */
function capture(): { sink: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      cb();
    },
  });
  return { sink, text: () => Buffer.concat(chunks).toString('utf8') };
}
