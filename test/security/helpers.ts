import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError, type ErrorCode } from '../../src/errors.js';
import type { FussyEvent } from '../../src/events.js';
import { installInto, targetState, type Device } from '../helpers/device.js';

/**
 * The package at `pkg` must be refused with `code`, and the target must be exactly as before:
 * same entries, same inodes, `current` untouched, no staging dir left behind.
 */
export async function assertRefused(dev: Device, pkg: string, code: ErrorCode, message: RegExp, extra: Parameters<typeof installInto>[2] = {}, events: FussyEvent[] = []): Promise<void> {
  const before = await targetState(dev.target);
  await assert.rejects(installInto(dev, pkg, extra, events), (err: unknown) => {
    assert.ok(err instanceof FussyError, `expected a FussyError, got ${String((err as Error)?.stack ?? err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
  assert.deepEqual(await targetState(dev.target), before, 'the target changed');
  const state = await readdir(join(dev.target, '.fussy')).catch(() => []);
  assert.deepEqual(state.filter((n) => n.startsWith('staging-')), [], 'a staging dir was left behind');
}
