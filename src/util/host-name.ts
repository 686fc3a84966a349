import { isIP } from 'node:net';

/** A DNS name (labels of letters, digits and inner hyphens; a leading `*.` wildcard), at most 253. */
const DNS_NAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * A certificate's subjectAltName entry for a host name or address, in one spelling whatever way
 * it was written: `IP:` with the address in canonical form (IPv6 as eight lower-case groups, as
 * certificates are printed), `DNS:` lower-cased; undefined when it is neither.
 */
export function sanEntry(name: string): string | undefined {
  // A zone (fe80::1%eth0) has no place in a certificate; all-digit labels are a mistyped address.
  if (name.includes('%') || /^[0-9.]+$/.test(name) && isIP(name) === 0) return undefined;
  const ip = isIP(name);
  if (ip === 4) return `IP:${name}`;
  if (ip === 6) return `IP:${expandIpv6(name)}`;
  return DNS_NAME.test(name) && name.length <= 253 ? `DNS:${name.toLowerCase()}` : undefined;
}

function expandIpv6(a: string): string {
  let s = a.toLowerCase();
  // A trailing dotted quad (::ffff:192.0.2.1) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (quad !== null) {
    const [b0, b1, b2, b3] = quad.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, quad.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? (s.split('::') as [string, string]) : [s, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}
