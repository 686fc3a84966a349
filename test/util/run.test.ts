import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { neverStarted, requireStarted, runProgram, startProgram, type ProgramResult } from '../../src/util/run.js';
import { useTmp } from '../helpers/tmp.js';

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

/** Gone, or a zombie waiting for init to reap it: either way it no longer runs. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (!existsSync(`/proc/${pid}`)) return true;
    try {
      if (readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')) return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** The ending fields of a result, without the captured output. */
function ending(r: ProgramResult): Pick<ProgramResult, 'exitCode' | 'signal' | 'timedOut' | 'interrupted' | 'startError'> {
  const { exitCode, signal, timedOut, interrupted, startError } = r;
  return startError === undefined ? { exitCode, signal, timedOut, interrupted } : { exitCode, signal, timedOut, interrupted, startError };
}

describe('runProgram: one way to run a program, one result shape', function () {
  const tmp = useTmp();

  it('a normal exit: exit code 0, no signal, output captured (stdout bytes, stderr text)', async function () {
    const r = await runProgram('sh', ['-c', 'printf out; printf err >&2']);
    assert.deepEqual(ending(r), { exitCode: 0, signal: undefined, timedOut: false, interrupted: false });
    assert.equal(r.stdout?.toString(), 'out');
    assert.equal(r.stderr, 'err');
  });

  it('returns binary output byte for byte, a trailing newline byte included (gpg --export can end in 0x0a)', async function () {
    const r = await runProgram('printf', ['\\001\\012']);
    assert.deepEqual([...(r.stdout ?? [])], [1, 10]);
  });

  it('a non-zero exit: its status, stderr kept (its last stderrLimit bytes)', async function () {
    const r = await runProgram('sh', ['-c', 'printf "%0100d" 0 >&2; printf END >&2; exit 3'], { stderrLimit: 10 });
    assert.deepEqual(ending(r), { exitCode: 3, signal: undefined, timedOut: false, interrupted: false });
    assert.equal(r.stderr, '0000000END');
  });

  it('a kill by a signal: the signal, no exit code', async function () {
    const r = await runProgram('sh', ['-c', 'kill -TERM $$'], { output: 'ignore' });
    assert.deepEqual(ending(r), { exitCode: undefined, signal: 'SIGTERM', timedOut: false, interrupted: false });
    assert.equal(neverStarted(r), false);
  });

  it('a timeout kills the whole process group: a grandchild does not outlive it', async function () {
    const lines: string[] = [];
    const r = await runProgram('sh', ['-c', 'sleep 600 & echo $!; wait'], { output: { onLine: (l) => lines.push(l) }, group: true, timeoutMs: 500 });
    assert.deepEqual(ending(r), { exitCode: undefined, signal: 'SIGKILL', timedOut: true, interrupted: false });
    const grandchild = Number(lines[0]);
    assert.ok(grandchild > 0, lines.join('\n'));
    assert.ok(await gone(grandchild), 'the sleep outlived the timeout');
  });

  it('an abort sends SIGTERM to the group, then SIGKILL after the grace to a program that does not stop', async function () {
    const ac = new AbortController();
    const lines: string[] = [];
    const script = 'trap "echo got TERM" TERM; echo ready; while :; do sleep 0.1; done';
    const r = await runProgram('sh', ['-c', script], {
      output: {
        onLine: (l) => {
          lines.push(l);
          if (l === 'ready') ac.abort();
        },
      },
      group: true,
      signal: ac.signal,
      graceMs: 2000,
    });
    assert.deepEqual(ending(r), { exitCode: undefined, signal: 'SIGKILL', timedOut: false, interrupted: true });
    assert.ok(lines.includes('got TERM'), `SIGTERM first: ${lines.join(' / ')}`);
  });

  it('a program that cannot start: startError, no exit code or signal; requireStarted makes it PROGRAM_MISSING naming it', async function () {
    const r = await runProgram('fussy-no-such-program', []);
    assert.equal(r.exitCode, undefined);
    assert.equal(r.signal, undefined);
    assert.match(r.startError ?? '', /ENOENT/);
    assert.equal(neverStarted(r), true);
    assert.throws(() => requireStarted('fussy-no-such-program', r), programMissing('fussy-no-such-program', /install fussy-no-such-program/));
  });

  it('says which package provides a program fussy needs (gpg: gnupg) when it is not on PATH', async function () {
    const r = await runProgram('gpg', ['--version'], { env: { PATH: '/nonexistent' } });
    assert.throws(() => requireStarted('gpg', r), programMissing('gpg', /the gnupg package, which provides gpg/));
    assert.throws(() => requireStarted('gpg', r, { needed: 'to read keys', instead: 'or use a key file' }), /cannot run gpg \(to read keys\): spawn gpg ENOENT/);
  });

  it('a program whose signal is already aborted is never started', async function () {
    const ac = new AbortController();
    ac.abort();
    const marker = join(tmp.dir, 'ran');
    const p = await startProgram('sh', ['-c', `: > ${marker}`], { signal: ac.signal, group: true });
    assert.equal(p.pid, undefined);
    const r = await p.result;
    assert.deepEqual(ending(r), { exitCode: undefined, signal: undefined, timedOut: false, interrupted: true });
    assert.equal(neverStarted(r), true);
    assert.equal(existsSync(marker), false);
  });

  it('feeds given stdin bytes and captures what comes back', async function () {
    const bytes = Buffer.from([0, 1, 2, 10, 255, 13, 10]);
    const r = await runProgram('cat', [], { stdin: bytes });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.stdout, bytes);
  });

  it('reports output line by line, stderr merged (or dropped), an unterminated last line included', async function () {
    const merged: string[] = [];
    const r = await runProgram('sh', ['-c', 'echo out; echo err >&2; printf "caf\\303\\251\\n"'], { output: { onLine: (l) => merged.push(l) } });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, undefined);
    assert.deepEqual([...merged].sort(), ['café', 'err', 'out']);
    const stdoutOnly: string[] = [];
    await runProgram('sh', ['-c', 'echo out; echo err >&2; printf "caf\\303\\251 last"'], { output: { onLine: (l) => stdoutOnly.push(l), stderr: 'ignore' } });
    assert.deepEqual(stdoutOnly, ['out', 'café last']);
  });

  it('pipes stdin and stdout for streaming, with stderr captured', async function () {
    const p = await startProgram('sh', ['-c', 'tr a-z A-Z; echo done >&2'], { stdin: 'pipe', output: 'pipe' });
    assert.ok(p.stdin !== undefined && p.stdout !== undefined);
    const chunks: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.stdin.end('hello');
    const r = await p.result;
    assert.equal(r.exitCode, 0);
    assert.equal(Buffer.concat(chunks).toString(), 'HELLO');
    assert.equal(r.stderr, 'done\n');
  });
});
