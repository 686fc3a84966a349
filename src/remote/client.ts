import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Agent, request } from 'node:https';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EXIT_CODES, FussyError, isErrno, type ErrorCode } from '../errors.js';

/**
 * One device's fussyd, over HTTPS with this client's certificate (docs/daemon.md, `fussy
 * remote`). The device's certificate must verify against `ca` (never the system store) and name
 * `host`. A client talks to one host; several hosts are several clients (the CLI runs them side
 * by side). Errors are FussyErrors: the device's code when this client knows it (ROLE_DENIED exits
 * 77, BAD_NAME 2, ...), UNREACHABLE / DEVICE_UNTRUSTED (69) when there is no trustworthy answer,
 * CERT_REFUSED (77) when the device refused this client's certificate at the handshake.
 */

export interface RemoteOptions {
  host: string;
  port: number;
  /** PEM: this client's certificate and key, and the CA the device's certificate must chain to. */
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  /** Milliseconds without a byte either way before the request is given up (30,000). */
  idleTimeoutMs?: number;
}

/**
 * node:https (with tls) loads when the first client is made, not when this module is: the CLI
 * imports this module for `fussy remote`, and every other command would pay ~20 ms to load them.
 */
const https = (): typeof import('node:https') => process.getBuiltinModule('node:https');

/** The largest error or JSON answer read into memory. */
const MAX_JSON_ANSWER = 16 * 1024 * 1024;

export class RemoteClient {
  readonly host: string;
  readonly port: number;
  readonly #agent: Agent;
  readonly #idleMs: number;

  constructor(o: RemoteOptions) {
    this.host = o.host;
    this.port = o.port;
    this.#idleMs = o.idleTimeoutMs ?? 30_000;
    this.#agent = new (https().Agent)({ keepAlive: true, maxSockets: 4, cert: o.cert, key: o.key, ca: o.ca, minVersion: 'TLSv1.2', rejectUnauthorized: true });
  }

  /** Close kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  /** A request of one's own (remote/install.ts): resolves with a 2xx answer to read, rejects like the others. */
  request(method: string, path: string, headers: OutgoingHttpHeaders, write: (req: ClientRequest) => void): Promise<IncomingMessage> {
    return this.#send(method, path, headers, write);
  }

  /** A request with a JSON answer (and an optional JSON body). */
  async json(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: OutgoingHttpHeaders = data === undefined ? {} : { 'content-type': 'application/json', 'content-length': data.length };
    const res = await this.#send(method, path, headers, (req) => req.end(data));
    return readJsonAnswer(res, this.#where());
  }

  /** PUT `size` bytes from `source` (streamed, never whole in memory); the JSON answer. */
  async upload(path: string, source: Readable, size: number): Promise<Record<string, unknown>> {
    const res = await this.#send('PUT', path, { 'content-type': 'application/octet-stream', 'content-length': size }, (req) => {
      pipeline(source, req).catch((err: unknown) => req.destroy(err instanceof Error ? err : new Error(String(err))));
    });
    return readJsonAnswer(res, this.#where());
  }

  /** GET bytes into `sink` (streamed); how many arrived. A short answer is UNREACHABLE. */
  async download(path: string, sink: Writable, o: { end?: boolean } = {}): Promise<number> {
    const res = await this.#send('GET', path, {}, (req) => req.end());
    const expected = Number(res.headers['content-length']);
    let n = 0;
    res.on('data', (chunk: Buffer) => (n += chunk.length));
    try {
      await pipeline(res, sink, { end: o.end ?? true });
    } catch (err) {
      throw networkError(err, this.#where());
    }
    if (!res.complete || (Number.isSafeInteger(expected) && n !== expected)) throw new FussyError('UNREACHABLE', `${this.#where()} closed the connection after ${n} of ${expected} bytes`, { hint: 'try again' });
    return n;
  }

  /**
   * A request with a JSON body and an NDJSON answer: each line's object to `onEvent` as it
   * arrives; resolves at the end of the answer. A line past MAX_JSON_ANSWER, or an answer cut
   * off mid-line, is an error.
   */
  async ndjson(method: string, path: string, body: unknown, onEvent: (e: Record<string, unknown>) => void): Promise<void> {
    const data = Buffer.from(JSON.stringify(body));
    const res = await this.#send(method, path, { 'content-type': 'application/json', 'content-length': data.length, accept: 'application/x-ndjson' }, (req) => req.end(data));
    await readNdjson(res, this.#where(), MAX_JSON_ANSWER, onEvent);
  }

  #where(): string {
    return `${this.host}:${this.port}`;
  }

  /** Start a request; resolves with a 2xx answer, rejects with the device's error or a network one. */
  #send(method: string, path: string, headers: OutgoingHttpHeaders, write: (req: ReturnType<typeof request>) => void): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = https().request({ host: this.host, port: this.port, method, path, headers: { accept: 'application/json', ...headers }, agent: this.#agent, timeout: this.#idleMs });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer for ${this.#idleMs / 1000} s`), { code: 'ETIMEDOUT' })));
      // A new connection closed right after its handshake, before any answer: the device
      // refused this certificate (node checks a client certificate once the handshake is done
      // and closes without an alert), or it stopped at that moment.
      let handshook = false;
      let answered = false;
      req.on('socket', (s) => s.once('secureConnect', () => (handshook = true)));
      req.on('error', (err) => reject(handshook && !answered && isErrno(err, 'ECONNRESET', 'EPIPE') ? refused(err, this.#where()) : networkError(err, this.#where())));
      req.on('response', (res) => {
        answered = true;
        if ((res.statusCode ?? 500) < 400) {
          resolve(res);
          return;
        }
        readJsonAnswer(res, this.#where()).then(
          (body) => reject(deviceError(res.statusCode ?? 500, body, this.#where())),
          (err: unknown) => reject(err),
        );
      });
      write(req);
    });
  }
}

/**
 * Each line of an NDJSON answer, a JSON object, to `onLine` as it arrives; resolves at the end of
 * the answer. A line that is not JSON, one past `maxLine` bytes, or an answer cut off mid-line is
 * an error (a FussyError: a network one as networkError makes it).
 */
export async function readNdjson(res: IncomingMessage, where: string, maxLine: number, onLine: (m: Record<string, unknown>) => void): Promise<void> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const line = (buf: Buffer): void => {
    const text = buf.toString('utf8').trim();
    if (text === '') return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new FussyError('REMOTE_FAILED', `${where} sent a line that is not JSON: ${JSON.stringify(text.slice(0, 120))}`, { cause: err });
    }
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) onLine(json as Record<string, unknown>);
  };
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        line(Buffer.concat([...pending, chunk.subarray(start, nl)]));
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > maxLine) throw new FussyError('REMOTE_FAILED', `${where} sent a line longer than ${maxLine} bytes`);
      }
    }
  } catch (err) {
    throw networkError(err, where);
  }
  if (pendingBytes > 0 || !res.complete) throw new FussyError('UNREACHABLE', `${where} closed the connection in the middle of its answer`, { hint: 'try again' });
}

/** A JSON object answer of at most MAX_JSON_ANSWER bytes. */
export async function readJsonAnswer(res: IncomingMessage, where: string): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > MAX_JSON_ANSWER) throw new FussyError('REMOTE_FAILED', `${where} sent an answer larger than ${MAX_JSON_ANSWER} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    throw networkError(err, where);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json === 'object' && json !== null && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  throw new FussyError('REMOTE_FAILED', `${where} answered ${res.statusCode ?? '?'} with something that is not a JSON object: ${JSON.stringify(text.slice(0, 120))}`, { hint: 'is that port a fussyd?' });
}

/** The device's `{"error": {code, message, hint}}` as a FussyError with that code (REMOTE_FAILED for one this client does not know). */
export function deviceError(status: number, body: Record<string, unknown>, where: string): FussyError {
  const e = (typeof body.error === 'object' && body.error !== null ? body.error : {}) as { code?: unknown; message?: unknown; hint?: unknown };
  const code = typeof e.code === 'string' && e.code in EXIT_CODES ? (e.code as ErrorCode) : 'REMOTE_FAILED';
  const message = typeof e.message === 'string' ? e.message : `HTTP ${status}`;
  return new FussyError(code, `${where}: ${message}`, { hint: typeof e.hint === 'string' ? e.hint : undefined, details: { host: where, status, deviceCode: e.code } });
}

/** The device's certificate did not verify (node's codes for a chain or name that fails). */
const UNTRUSTED = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED']);

/** A failure with no answer from the device, as UNREACHABLE, DEVICE_UNTRUSTED or CERT_REFUSED. */
export function networkError(err: unknown, where: string): unknown {
  if (err instanceof FussyError) return err;
  const code = typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
  const text = err instanceof Error ? err.message : String(err);
  if (code !== undefined && UNTRUSTED.has(code)) {
    return new FussyError('DEVICE_UNTRUSTED', `${where}: the device's certificate is not trusted (${code}: ${text})`, { cause: err, hint: 'check --ca (the CA that issued the device certificate) and that --host is a name or address in that certificate' });
  }
  if (code !== undefined && /^ERR_SSL_.*ALERT/.test(code)) return refused(err, where);
  return new FussyError('UNREACHABLE', `${where} cannot be reached: ${code ?? ''}${code === undefined ? '' : ': '}${text}`, { cause: err, hint: 'check the host, the port (--port; 6808 unless remote.json says otherwise) and that fussyd runs there; a device that refuses this certificate may also just close the connection' });
}

function refused(err: unknown, where: string): FussyError {
  return new FussyError('CERT_REFUSED', `${where} closed the connection after the TLS handshake: it refused this client's certificate (not from its client CA, expired or revoked)`, {
    cause: err,
    hint: 'check --cert and --key; the fleet owner issues a new certificate (fussy pki issue --client) if this one expired or was revoked',
  });
}
