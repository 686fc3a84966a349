import assert from 'node:assert/strict';
import { FussyError } from '../../src/errors.js';
import { run, runQuiet } from '../../src/util/run.js';

function programMissing(program: string, hint: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof FussyError, String(err));
    assert.equal(err.code, 'PROGRAM_MISSING');
    assert.equal(err.exitCode, 40);
    assert.match(err.message, new RegExp(`cannot run ${program}`));
    assert.equal(err.details?.program, program);
    assert.match(err.hint ?? '', hint);
    return true;
  };
}

describe('run: the one process runner', function () {
  it('returns binary output byte for byte, a trailing newline byte included (gpg --export can end in 0x0a)', async function () {
    const r = await run('printf', ['\\001\\012']);
    assert.deepEqual([...r.stdout], [1, 10]);
  });

  it('names the program it cannot start: PROGRAM_MISSING (exit 40), from run and runQuiet alike', async function () {
    await assert.rejects(run('fussy-no-such-program', []), programMissing('fussy-no-such-program', /install fussy-no-such-program/));
    await assert.rejects(runQuiet('fussy-no-such-program', []), programMissing('fussy-no-such-program', /install fussy-no-such-program/));
  });

  it('says which package provides a program fussy needs (gpg: gnupg) when it is not on PATH', async function () {
    await assert.rejects(run('gpg', ['--version'], { env: { PATH: '/nonexistent' } }), programMissing('gpg', /the gnupg package, which provides gpg/));
  });
});
