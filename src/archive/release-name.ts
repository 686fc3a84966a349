import { FussyError } from '../errors.js';

/** Names the device layout reserves (docs/format.md): never a release. */
const RESERVED = new Set(['current', 'failsafe', 'current~']);

/**
 * A release name becomes a directory directly under the target, so it must be a single, visible
 * path component that cannot collide with fussy's own entries. Checked by pack and by install.
 */
export function checkReleaseName(name: string, where: string, refuse?: (message: string) => Error): string {
  let problem: string | undefined;
  if (name === '' || name === '.' || name === '..') problem = 'is empty or a dot name';
  else if (name.includes('/')) problem = 'contains "/"';
  else if (name.includes('\0')) problem = 'contains a NUL byte';
  else if (name.startsWith('.')) problem = 'starts with "." (hidden names belong to fussy itself)';
  else if (RESERVED.has(name)) problem = `is reserved ("${name}" is part of the device layout)`;
  else if (Buffer.byteLength(name) > 255) problem = 'is longer than 255 bytes';
  if (problem !== undefined && refuse !== undefined) throw refuse(`release name "${name}" (${where}) ${problem}`);
  if (problem !== undefined) {
    throw new FussyError('BAD_RELEASE_NAME', `release name "${name}" (${where}) ${problem}`, {
      hint: 'rename the firmware directory, e.g. firmware-2026-11-23T10.00.00',
    });
  }
  return name;
}
