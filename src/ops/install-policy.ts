import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPolicyFields, type Manifest } from '../archive/manifest.js';
import { FussyError, isErrno } from '../errors.js';
import type { Policy } from '../keyring/policy.js';

/** The keyring dir's file naming this device's type (one line), unless --device-type is given. */
export const DEVICE_TYPE_FILE = 'device-type';

export async function readDeviceType(keyringDir: string): Promise<string | undefined> {
  try {
    const t = (await readFile(join(keyringDir, DEVICE_TYPE_FILE), 'utf8')).trim();
    return t === '' ? undefined : t;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export interface PolicyFacts {
  /** The highest sequence installed on this device, if any release recorded one. */
  recorded?: number;
  deviceType?: string;
  /** --allow-downgrade: a local root decision. */
  allowDowngrade: boolean;
  /** The keyring policy's `legacy` setting: may packages without a manifest install at all? */
  legacy: Policy['legacy'];
}

/**
 * docs/format.md / TUF's rollback and mix-and-match attacks: checked from the signed manifest before any
 * file is written. A package for other devices (`compatible`), one that needs a newer base
 * (`minSequence`), or one older than what the device has run (`sequence`) is refused (exit 21).
 * An older one passes with --allow-downgrade or when its signed manifest says `rollback`.
 */
export function checkPolicy(m: Manifest, f: PolicyFacts, keyringDir: string): void {
  // Validated with the whole manifest already; checked again here because these decide.
  checkPolicyFields(m as unknown as Record<string, unknown>);
  if (m.compatible !== undefined) {
    if (f.deviceType === undefined) {
      throw new FussyError('INCOMPATIBLE', `${m.release} is only for device types ${m.compatible.join(', ')}, and this device's type is not set`, {
        hint: `write the device type into ${join(keyringDir, DEVICE_TYPE_FILE)} (or pass --device-type)`,
      });
    }
    if (!m.compatible.includes(f.deviceType)) {
      throw new FussyError('INCOMPATIBLE', `${m.release} is for device types ${m.compatible.join(', ')}, not ${f.deviceType}`, { hint: 'install the firmware built for this device type' });
    }
  }
  if (f.recorded === undefined) return;
  if (m.minSequence !== undefined && f.recorded < m.minSequence) {
    throw new FussyError('INCOMPATIBLE', `${m.release} upgrades only from sequence ${m.minSequence} or later; this device has ${f.recorded}`, { hint: 'install the intermediate release first' });
  }
  if (m.sequence < f.recorded && !f.allowDowngrade && m.rollback !== true) {
    throw new FussyError('DOWNGRADE', `${m.release} has sequence ${m.sequence}, older than ${f.recorded} which this device already ran (downgrade refused)`, {
      hint: 'pass --allow-downgrade to go back on purpose, or pack the older release with --rollback',
    });
  }
}

/**
 * A package without a manifest (the original Fussy pipeline, `tar czf | gpg --sign`): checked at
 * its first entry that is not a directory, before any file data is written. It names no device
 * types, so like a fussy package without `compatible` it installs on any type. It carries no
 * sequence either, so once this device has run a release that recorded one, it cannot tell a
 * manifest-less package from an old one replayed: that is a downgrade, refused unless
 * --allow-downgrade (otherwise any old pipeline package would undo downgrade protection).
 * `legacy = refuse` refuses them all.
 */
export function checkLegacy(f: PolicyFacts): void {
  if (f.legacy === 'refuse') {
    throw new FussyError('BAD_ARCHIVE', `the package has no fussy manifest (made by the original Fussy pipeline?), and the keyring's policy says legacy = refuse`, {
      hint: 'pack it with fussy pack, or set legacy = allow in the policy file',
    });
  }
  if (f.recorded !== undefined && !f.allowDowngrade) {
    throw new FussyError('DOWNGRADE', `the package has no fussy manifest, so no sequence, and this device already ran sequence ${f.recorded} (a package without a sequence may be an old one: downgrade refused)`, {
      hint: 'pack the release with fussy pack, or pass --allow-downgrade to install it on purpose',
    });
  }
}
