import type { PeerCertificate, TLSSocket } from 'node:tls';
import { FussyError } from '../errors.js';
import { parseJsonObject } from '../util/json-object.js';
import { normalSerial } from './crl.js';

/**
 * Who a request comes from and what it may do (docs/daemon.md, "Identity and roles"). The
 * identity is the client certificate the TLS handshake verified against the client CA (and the
 * CRL): never a header, never the CN alone when it is recorded. Roles come from the roles file
 * by CN and nest, admin > operator > viewer; a CN in no role may only ask whoami (default deny).
 */

export type Role = 'viewer' | 'operator' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

export interface Identity {
  cn: string;
  /** SHA-256 of the DER certificate, colon-separated upper-case hex (as openssl x509 -fingerprint -sha256). */
  fingerprint: string;
  /** Upper-case hex without leading zeros. */
  serial: string;
  /** The issuer's distinguished name, "CN=...,O=...". */
  issuer: string;
}

/** The roles file: role -> the CNs that have it. */
export type RoleTable = Record<Role, string[]>;

/**
 * Identities by connection: a certificate is read (~0.6 ms, the whole chain decoded) once per
 * connection, not per request. Sound because fussyd disables renegotiation on every connection
 * (server.ts): a connection cannot present another certificate later. Revocation is still
 * checked per request, against the CRL of the moment.
 */
const identities = new WeakMap<TLSSocket, Identity | undefined>();

/** The verified identity of a TLS socket; undefined when the handshake did not authorize it (never with rejectUnauthorized). */
export function identityOf(socket: TLSSocket): Identity | undefined {
  if (!socket.authorized) return undefined;
  if (identities.has(socket)) return identities.get(socket);
  const cert = socket.getPeerCertificate();
  const id = cert === null || typeof cert !== 'object' || cert.fingerprint256 === undefined ? undefined : { cn: oneValue(cert.subject?.CN), fingerprint: cert.fingerprint256, serial: normalSerial(cert.serialNumber ?? ''), issuer: dn(cert.issuer) };
  identities.set(socket, id);
  return id;
}

function oneValue(v: string | string[] | undefined): string {
  return Array.isArray(v) ? v.join('+') : v ?? '';
}

function dn(name: PeerCertificate['issuer'] | undefined): string {
  return Object.entries(name ?? {}).map(([k, v]) => `${k}=${oneValue(v as string | string[])}`).join(',');
}

/** Parse and check a roles file: `{"admin": [...], "operator": [...], "viewer": [...]}`, each key optional. */
export function parseRoles(text: string, file: string): RoleTable {
  const json = parseJsonObject(text, (what) => invalid(file, what));
  const table: RoleTable = { viewer: [], operator: [], admin: [] };
  for (const [role, cns] of Object.entries(json)) {
    if (!(ROLES as string[]).includes(role)) throw invalid(file, `has an unknown role "${role.slice(0, 40)}"`);
    if (!Array.isArray(cns) || !cns.every((cn) => typeof cn === 'string' && cn !== '')) throw invalid(file, `"${role}" is not a list of non-empty CN strings`);
    table[role as Role] = cns as string[];
  }
  return table;
}

/** The roles `cn` has, with the nesting: an admin is also operator and viewer. */
export function rolesOf(table: RoleTable, cn: string): Role[] {
  const top = [...ROLES].reverse().find((r) => table[r].includes(cn));
  return top === undefined ? [] : ROLES.slice(0, ROLES.indexOf(top) + 1);
}

export type Need = Role | 'any';

export interface Decision {
  allowed: boolean;
  /** Why a request was denied: a stable code (ROLE_DENIED, CERT_REFUSED). */
  reason?: 'ROLE_DENIED' | 'CERT_REFUSED';
  roles: Role[];
}

/** Decide one request against the roles and revoked serials as they are now. */
export function decide(id: Identity, need: Need, table: RoleTable, revoked: ReadonlySet<string>): Decision {
  if (revoked.has(id.serial)) return { allowed: false, reason: 'CERT_REFUSED', roles: [] };
  const roles = rolesOf(table, id.cn);
  if (need === 'any' || roles.includes(need)) return { allowed: true, roles };
  return { allowed: false, reason: 'ROLE_DENIED', roles };
}

/** The refusal a denied decision becomes. */
export function denial(id: Identity, need: Need, d: Decision, action: string): FussyError {
  if (d.reason === 'CERT_REFUSED') {
    return new FussyError('CERT_REFUSED', `the certificate of ${id.cn} (serial ${id.serial}) is revoked`, { hint: 'ask the fleet owner for a new client certificate (fussy pki issue --client)' });
  }
  const has = d.roles.length === 0 ? 'no role' : `the role ${d.roles[d.roles.length - 1]}`;
  return new FussyError('ROLE_DENIED', `${id.cn} has ${has}; ${action} needs ${need}`, { hint: `an administrator of the device adds "${id.cn}" to "${need}" in the roles file`, details: { cn: id.cn, need, roles: d.roles } });
}

function invalid(file: string, what: string): FussyError {
  return new FussyError('ROLES_INVALID', `the roles file ${file} ${what}`, { hint: 'write {"admin": ["CN", ...], "operator": [...], "viewer": [...]}', details: { path: file } });
}
