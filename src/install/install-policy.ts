import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../archive/manifest.js';
import { FussyError, isErrno } from '../errors.js';

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
}

/**
 * SPEC §4 / TUF's rollback and mix-and-match attacks: checked from the signed manifest before any
 * file is written. A package for other devices (`compatible`), one that needs a newer base
 * (`minSequence`), or one older than what the device has run (`sequence`) is refused (exit 21).
 * An older one passes with --allow-downgrade or when its signed manifest says `rollback`.
 */
export function checkPolicy(m: Manifest, f: PolicyFacts, keyringDir: string): void {
  if (m.compatible !== undefined && m.compatible.length > 0) {
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
