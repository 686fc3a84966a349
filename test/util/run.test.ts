import assert from 'node:assert/strict';
import { run } from '../../src/util/run.js';

describe('run: the one process runner', function () {
  it('returns binary output byte for byte, a trailing newline byte included (gpg --export can end in 0x0a)', async function () {
    const r = await run('printf', ['\\001\\012']);
    assert.deepEqual([...r.stdout], [1, 10]);
  });

  it('names the program it cannot start', async function () {
    await assert.rejects(run('fussy-no-such-program', []), /cannot run fussy-no-such-program/);
  });
});
