import { FussyError } from '../errors.js';
import type { Need } from './auth.js';

/**
 * The router works on the raw request target, never on a WHATWG URL: `new URL()` removes dot
 * segments, percent-encoded ones included (`/v1/data/%2e%2e/x` becomes `/v1/x`), so a request
 * could reach another route than the one it names (docs/daemon.md, "HTTP API"). Rules: the target
 * is origin-form; it is split on "/" first and each segment percent-decoded exactly once; a
 * segment that is empty, `.` or `..` (in any encoding), or holds an encoded "/" or "\" or a NUL or
 * control character is refused; a NAME parameter must match NAME after that one decoding. Every
 * refusal is 400 before a handler, and so before any file, is touched.
 */

/** A script or data file name: one plain path component, ASCII, no leading dot. */
export const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export interface Params {
  [name: string]: string;
}

export interface Route<C> {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** Segments; `:name` is a NAME parameter. */
  path: string;
  /** The audit log's action, e.g. "data.put". */
  action: string;
  need: Need;
  /** Query parameters the route accepts (others are refused). */
  query?: readonly string[];
  handle: (ctx: C) => Promise<void>;
}

export interface Match<C> {
  route: Route<C>;
  params: Params;
  query: URLSearchParams;
  /** The resource for the audit log: the decoded path. */
  resource: string;
}

/** The segments of a raw target's path, each decoded once; BAD_REQUEST for anything the rules refuse. */
export function splitTarget(raw: string): { segments: string[]; query: URLSearchParams } {
  if (!raw.startsWith('/')) throw badRequest('the request target is not a path (origin-form)');
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  if (path.includes('#')) throw badRequest('the request target holds a fragment');
  const segments = path.slice(1).split('/').map((seg) => {
    if (/%2f|%5c|%00/i.test(seg)) throw badRequest('a path segment holds an encoded "/", "\\" or NUL');
    let s: string;
    try {
      s = decodeURIComponent(seg);
    } catch (err) {
      throw badRequest(`a path segment is not valid percent-encoding (${err instanceof Error ? err.message : String(err)})`);
    }
    if (s === '' || s === '.' || s === '..') throw badRequest('a path segment is empty, "." or ".." (in some encoding)');
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f/\\]/.test(s)) throw badRequest('a path segment holds a control character, "/" or "\\"');
    return s;
  });
  return { segments, query };
}

export class Router<C> {
  readonly #routes: Array<{ route: Route<C>; segments: string[] }> = [];

  /** The seam where endpoints are added (data now; scripts, runs and uploads later). */
  add(...routes: Array<Route<C>>): this {
    for (const route of routes) this.#routes.push({ route, segments: route.path.split('/').filter((s) => s !== '') });
    return this;
  }

  /** The route for `method` and the raw target: BAD_REQUEST / BAD_NAME (400), NOT_FOUND (404), or a method the path does not take (405). */
  match(method: string, raw: string): Match<C> {
    const { segments, query } = splitTarget(raw);
    let pathMatched = false;
    for (const { route, segments: pattern } of this.#routes) {
      const params = matchSegments(pattern, segments);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      for (const key of query.keys()) if (!(route.query ?? []).includes(key)) throw badRequest(`unknown query parameter "${key.slice(0, 40)}"`);
      for (const value of Object.values(params)) checkName(value);
      return { route, params, query, resource: `/${segments.join('/')}` };
    }
    if (pathMatched) throw new FussyError('BAD_REQUEST', `${method} is not allowed on this path`, { details: { status: 405 } });
    throw new FussyError('NOT_FOUND', 'no such endpoint', { hint: 'the API is under /v1 (docs/daemon.md)', details: { status: 404 } });
  }
}

function matchSegments(pattern: string[], segments: string[]): Params | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segments[i] as string;
    if (p.startsWith(':')) params[p.slice(1)] = s;
    else if (p !== s) return undefined;
  }
  return params;
}

/** `name` as it is, or BAD_NAME: not one plain component (a leading dot, non-ASCII, over 128 characters). */
export function checkName(name: string): string {
  if (NAME.test(name)) return name;
  const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name);
  throw new FussyError('BAD_NAME', `the name ${shown} is not allowed`, { hint: 'a name is one path component of ASCII letters, digits, "_", "-" and "." (not first), at most 128 characters', details: { status: 400 } });
}

function badRequest(what: string): FussyError {
  return new FussyError('BAD_REQUEST', what, { details: { status: 400 } });
}
