/**
 * The owner and mode an installed entry gets (as root, archive owners and setuid/setgid
 * bits are kept, as GNU tar as root keeps them; otherwise every entry is the installer's and
 * setuid/setgid are dropped). One rule for unpack, the space check, verify and repair.
 */

/** Who installs: root keeps the archive's owners; anyone else owns what they install. */
export interface Owner {
  asRoot: boolean;
  uid: number;
  gid: number;
}

/** The calling process as the installer. */
export function processOwner(): Owner {
  const uid = process.geteuid?.() ?? 0;
  return { asRoot: uid === 0, uid, gid: process.getegid?.() ?? 0 };
}

/** The mode an entry with `mode` (st_mode & 0o7777) gets on disk. */
export function installedMode(mode: number, asRoot: boolean): number {
  return asRoot ? mode & 0o7777 : mode & 0o7777 & ~0o6000;
}

/** The mode and owner an entry from the archive or manifest gets on disk. */
export function installedMeta(e: { mode: number; uid: number; gid: number }, owner: Owner): { mode: number; uid: number; gid: number } {
  return owner.asRoot ? { mode: installedMode(e.mode, true), uid: e.uid, gid: e.gid } : { mode: installedMode(e.mode, false), uid: owner.uid, gid: owner.gid };
}
