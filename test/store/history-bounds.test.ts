import assert from 'node:assert/strict';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { appendHistory, HISTORY, HISTORY_ARCHIVE, readHistory } from '../../src/store/history.js';
import { makeTmp } from '../helpers/tmp.js';

const record = (i: number, message = 'bad signature') => ({
  time: new Date(Date.UTC(2026, 11, 1, 0, 0, i)).toISOString(),
  action: 'install' as const,
  result: 'refused' as const,
  package: { file: `/tmp/upload-${i}.gpg` },
  error: { code: 'BAD_SIGNATURE', message },
  durationMs: i,
});

describe('history space is bounded: rotation and field limits', function () {
  it('history-flood: refusals rotate the log at its size limit, one older generation kept, and the chain still checks across both', async function () {
    const dir = await makeTmp();
    for (let i = 0; i < 40; i++) await appendHistory(dir, record(i), 2000);
    assert.ok((await stat(join(dir, HISTORY))).size <= 2000);
    assert.ok((await stat(join(dir, HISTORY_ARCHIVE))).size <= 2000);
    const h = await readHistory(dir);
    assert.deepEqual(h.problems, []);
    assert.ok(h.records.length >= 10 && h.records.length < 40, `${h.records.length} records kept`);
    assert.equal(h.records.at(-1)?.durationMs, 39);
    // Consecutive: the archive's tail and the log's head join without a gap.
    const ids = h.records.map((r) => r.durationMs);
    assert.deepEqual(ids, ids.map((_, i) => (ids[0] as number) + i));
  });

  it('history-archive-edited: a change to the rotated generation is reported', async function () {
    const dir = await makeTmp();
    for (let i = 0; i < 30; i++) await appendHistory(dir, record(i), 2000);
    const a = join(dir, HISTORY_ARCHIVE);
    await writeFile(a, (await readFile(a, 'utf8')).replace('"durationMs":', '"durationMs":1'));
    assert.match((await readHistory(dir)).problems.join('; '), /history\.1\.log record \d+ does not follow|does not continue/);
  });

  it('a rotation cut short after the rename (the head still describes the old log) is completed, not reported as tampering', async function () {
    const dir = await makeTmp();
    for (let i = 0; i < 3; i++) await appendHistory(dir, record(i), 100_000);
    await rename(join(dir, HISTORY), join(dir, HISTORY_ARCHIVE)); // the crash: head not yet rewritten
    assert.deepEqual((await readHistory(dir)).problems, []);
    await appendHistory(dir, record(3), 100_000);
    const h = await readHistory(dir);
    assert.deepEqual(h.problems, []);
    assert.deepEqual(h.records.map((r) => r.durationMs), [0, 1, 2, 3]);
  });

  it('history-long-message: a message or path an attacker controls is cut to a fixed length', async function () {
    const dir = await makeTmp();
    await appendHistory(dir, { ...record(0, 'x'.repeat(100_000)), package: { file: `/tmp/${'y'.repeat(100_000)}` } });
    const text = await readFile(join(dir, HISTORY), 'utf8');
    assert.ok(text.length < 3000, `${text.length} bytes for one record`);
    const [r] = (await readHistory(dir)).records;
    assert.match(r?.error?.message ?? '', /\(100000 characters\)$/);
  });
});
