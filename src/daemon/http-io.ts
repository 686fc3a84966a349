import type { IncomingMessage, ServerResponse } from 'node:http';
import { EXIT_CODES, FussyError } from '../errors.js';
import { parseJsonObject } from '../util/json-object.js';

/**
 * Answers and request bodies. Every error is `{"error": {"code", "message", "hint"}}` with a
 * stable code (src/errors.ts); the HTTP status is a courtesy for curl, the code is the contract.
 */

/** JSON request bodies are small: past this many bytes a request is refused (413). */
export const MAX_JSON_BYTES = 64 * 1024;

const STATUS: Partial<Record<string, number>> = {
  BAD_REQUEST: 400,
  BAD_NAME: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  NOT_REGULAR_FILE: 409,
  TOO_LARGE: 413,
  ROLE_DENIED: 403,
  CERT_REFUSED: 403,
  LOCKED: 409,
  UPLOAD_BUSY: 409,
  JOB_BUSY: 409,
  UPLOAD_OFFSET: 409,
  UPLOAD_CONFLICT: 409,
  UPLOAD_INCOMPLETE: 409,
  UPLOAD_MISMATCH: 422,
};

/** Codes whose details a client acts on (an upload's `have` to resume from) and that hold nothing of the device's paths. */
const WITH_DETAILS = new Set(['UPLOAD_OFFSET', 'UPLOAD_CONFLICT', 'UPLOAD_INCOMPLETE', 'UPLOAD_MISMATCH']);

/** The HTTP status of an error: details.status, the table, else by exit class. */
export function httpStatus(err: FussyError): number {
  const explicit = err.details?.status;
  if (typeof explicit === 'number') return explicit;
  return STATUS[err.code] ?? (EXIT_CODES[err.code] === 2 ? 400 : EXIT_CODES[err.code] === 40 ? 500 : 422);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** The error answer; anything but a FussyError is INTERNAL (500) and says nothing of its stack. */
export function sendError(res: ServerResponse, err: unknown, close = false): void {
  if (res.headersSent) {
    res.destroy(); // mid-body: the client sees a short answer, never a well-formed wrong one
    return;
  }
  const e = err instanceof FussyError ? err : new FussyError('REMOTE_FAILED', 'internal error in fussyd; its log has the details', { details: { status: 500 } });
  const code = err instanceof FussyError ? e.code : 'INTERNAL';
  if (close) res.setHeader('connection', 'close');
  const details = WITH_DETAILS.has(code) && e.details !== undefined ? { details: e.details } : {};
  sendJson(res, httpStatus(e), { error: { code, message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }), ...details } });
}

/** TOO_LARGE (413) when the declared length is past `max`; the body is not read. */
export function checkDeclaredLength(req: IncomingMessage, max: number, what: string): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  const n = Number(header);
  if (!Number.isSafeInteger(n) || n < 0) throw new FussyError('BAD_REQUEST', 'Content-Length is not a number', { details: { status: 400 } });
  if (n > max) throw tooLarge(max, what);
  return n;
}

export function tooLarge(max: number, what: string): FussyError {
  return new FussyError('TOO_LARGE', `${what} is larger than ${max} bytes`, { hint: 'the limit is fussyd.conf\'s on the device (docs/daemon.md, "Configuration")', details: { status: 413, limit: max } });
}

/** A JSON object body of at most MAX_JSON_BYTES. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  checkDeclaredLength(req, MAX_JSON_BYTES, 'the JSON body');
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > MAX_JSON_BYTES) throw tooLarge(MAX_JSON_BYTES, 'the JSON body');
    chunks.push(chunk);
  }
  return parseJsonObject(Buffer.concat(chunks).toString('utf8'), (what) => new FussyError('BAD_REQUEST', `the body ${what}`, { details: { status: 400 } }));
}

/**
 * Bodies must say what they are: a type a plain HTML form cannot send, so that a browser holding
 * a client certificate (a web page, later) cannot be made to send one cross-site.
 */
export function requireType(req: IncomingMessage, type: string): void {
  const got = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (got !== type) throw new FussyError('BAD_REQUEST', `the body must be ${type}, not ${got === '' ? 'untyped' : got}`, { details: { status: 415 } });
}
