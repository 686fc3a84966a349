import { posix } from 'node:path';

/** What the resolver needs to know about a path inside the release. */
export type NodeKind = { type: 'symlink'; target: string } | { type: 'directory' | 'file' | 'other' };

export type LookupNode = (releasePath: string) => NodeKind | undefined;

export interface Resolution {
  /** False when resolution leaves the release (absolute target, or ".." above its root). */
  inside: boolean;
  /** Release-relative path the link finally names ("" for the release root). */
  path: string;
  /** True when more than MAX_HOPS symlinks were followed (the kernel's ELOOP). */
  loop: boolean;
}

/** Linux follows at most 40 symlinks in one lookup (path_resolution(7)). */
export const MAX_HOPS = 40;

/**
 * Resolve the symlink at `linkPath` the way the kernel would once the release is installed,
 * but against the archive's own entries, following symlink chains (libfoo.so -> libfoo.so.1 ->
 * libfoo.so.1.2). Lexical checks alone are not enough: `a/b/escape -> c/up/../..` with
 * `a/b/c/up -> ../..` stays inside lexically yet escapes when followed (CVE-2026-26960's shape).
 * Missing components are resolved lexically, so dangling links that stay inside are allowed.
 */
export function resolveLink(linkPath: string, target: string, lookup: LookupNode): Resolution {
  const resolved: string[] = posix.dirname(linkPath).split('/').filter((c) => c !== '' && c !== '.');
  let pending = target;
  let queue: string[] = [];
  let hops = 0;
  for (;;) {
    if (pending.startsWith('/')) return { inside: false, path: pending, loop: false };
    queue = [...pending.split('/'), ...queue];
    pending = '';
    while (queue.length > 0) {
      const c = queue.shift() as string;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (resolved.length === 0) return { inside: false, path: '..', loop: false };
        resolved.pop();
        continue;
      }
      resolved.push(c);
      const node = lookup(resolved.join('/'));
      if (node?.type === 'symlink') {
        hops += 1;
        if (hops > MAX_HOPS) return { inside: true, path: resolved.join('/'), loop: true };
        resolved.pop();
        pending = node.target;
        break;
      }
    }
    if (pending === '') return { inside: true, path: resolved.join('/'), loop: false };
  }
}
