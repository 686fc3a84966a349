import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recover } from '../../src/txn/recover.js';
import { isTempName, tempName } from '../../src/util/fs-atomic.js';
import { useTmp } from '../helpers/tmp.js';

/**
 * Issue 11: every writer in `.fussy/` names its temp file alike (util/fs-atomic.ts), so a crash
 * between its create and its rename leaves `.fussy-tmp-<purpose>-<32 hex>`, and the next command
 * that takes the lock removes it: a regular file or a symlink of exactly that pattern, nothing else.
 */
describe('recovery sweeps the temp files of every writer from .fussy', function () {
  const tmp = useTmp();
  const run = (target: string) => recover({ target, env: {}, cwd: tmp.dir, hookTimeoutMs: 60_000 });

  /** Each writer of `.fussy/` and what a crash before its rename leaves (mode, content cut short). */
  const WRITERS: Array<[purpose: string, mode: number, content: string]> = [
    ['journal', 0o644, '{"format":"fussy-jou'], // txn/journal.ts
    ['state', 0o644, '{"highestSeq'], // store/device-state.ts
    ['history', 0o644, '{"count":3,"ha'], // store/history-head.ts
    ['hash-cache', 0o644, '{"version":2,"groups":[{"at'], // store/hash-cache.ts
    ['lock', 0o644, ''], // lock/pid-lock.ts (the record is written whole, then linked)
    ['spool', 0o600, ''], // unpack/spool-package.ts (unlinked right after its create)
  ];

  it('removes a crash leftover of each writer, and leaves the files they were replacing intact', async function () {
    const state = join(tmp.dir, '.fussy');
    await mkdir(state);
    await writeFile(join(state, 'state.json'), '{"highestSequence":7}\n');
    const left: string[] = [];
    for (const [purpose, mode, content] of WRITERS) {
      const n = tempName(purpose);
      await writeFile(join(state, n), content, { mode });
      left.push(n);
    }
    const r = await run(tmp.dir);
    assert.equal(r.outcome, 'clean');
    assert.deepEqual([...r.removed].sort(), [...left].sort());
    assert.deepEqual(await readdir(state), ['state.json'], 'the lock is released, only the state is left');
    assert.equal(await readFile(join(state, 'state.json'), 'utf8'), '{"highestSequence":7}\n');
  });

  it('removes a symlink at a temp name without following it, and never a directory, FIFO or look-alike name', async function () {
    const state = join(tmp.dir, '.fussy');
    await mkdir(state);
    const victim = join(tmp.dir, 'victim');
    await writeFile(victim, 'root data\n');
    const link = tempName('journal');
    await symlink(victim, join(state, link));
    const dir = tempName('hash-cache');
    await mkdir(join(state, dir));
    await writeFile(join(state, dir, 'inside'), 'kept\n');
    const fifo = tempName('state');
    execFileSync('mkfifo', [join(state, fifo)]);
    const alike = [
      'journal.json.tmp-1234-0123456789abcdef', // an older scheme: not fussy's any more
      `.fussy-tmp-journal-${'A'.repeat(32)}`,
      `.fussy-tmp-journal-${'a'.repeat(31)}`,
      `notes.fussy-tmp-journal-${'a'.repeat(32)}`,
      `.fussy-tmp-journal-${'a'.repeat(32)}.orig`,
    ];
    for (const n of alike) await writeFile(join(state, n), 'kept\n');
    const r = await run(tmp.dir);
    assert.deepEqual(r.removed, [link]);
    assert.equal(await readFile(victim, 'utf8'), 'root data\n');
    assert.deepEqual((await readdir(state)).sort(), [dir, fifo, ...alike].sort());
    assert.equal(await readFile(join(state, dir, 'inside'), 'utf8'), 'kept\n');
    assert.ok((await lstat(join(state, fifo))).isFIFO());
    await assert.rejects(readlink(join(state, link)), { code: 'ENOENT' });
    assert.ok(isTempName(dir) && isTempName(fifo));
  });
});
