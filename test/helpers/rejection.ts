import assert from 'node:assert/strict';
import { FussyError } from '../../src/errors.js';

/** The FussyError `p` rejects with (a test fails if it resolves or rejects with anything else). */
export async function rejection(p: Promise<unknown>): Promise<FussyError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FussyError, String(err));
    return err;
  }
  assert.fail('expected a FussyError');
}
