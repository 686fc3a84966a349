import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussyError } from '../../src/errors.js';
import { clearJournal, JOURNAL, readJournal, writeJournal, type JournalFields } from '../../src/txn/journal.js';
import { useTmp } from '../helpers/tmp.js';

const step: JournalFields = { action: 'install', id: '1-2', started: '2026-12-02T00:00:00.000Z', step: 'commit', release: 'fw-2', created: true, previous: 'fw-1' };

describe('journal (txn/journal.ts): the step of a transaction, made durable before the action it names', function () {
  const tmp = useTmp();

  it('reads back what was written, step by step, and nothing once cleared', async function () {
    assert.equal(await readJournal(tmp.dir), undefined);
    for (const s of ['commit', 'pre-install', 'switched', 'recovering'] as const) {
      await writeJournal(tmp.dir, { ...step, step: s, back: s === 'recovering' ? 'fw-1' : undefined });
      const j = await readJournal(tmp.dir);
      assert.equal(j?.step, s);
      assert.equal(j?.release, 'fw-2');
    }
    await clearJournal(tmp.dir);
    assert.equal(await readJournal(tmp.dir), undefined);
    assert.deepEqual((await readdir(tmp.dir)).filter((n) => n !== '.' && n.startsWith('.fussy-tmp-')), [], 'no temp file of the atomic writes is left');
  });

  it('a torn, foreign or future journal is JOURNAL_UNREADABLE naming the file, never guessed at', async function () {
    await writeJournal(tmp.dir, step);
    const whole = await readFile(join(tmp.dir, JOURNAL), 'utf8');
    for (const [what, text] of [
      ['torn', whole.slice(0, 20)],
      ['another format', JSON.stringify({ ...JSON.parse(whole), format: 'other' })],
      ['a newer version', JSON.stringify({ ...JSON.parse(whole), version: 2 })],
      ['no release', JSON.stringify({ ...JSON.parse(whole), release: 7 })],
    ] as const) {
      await writeFile(join(tmp.dir, JOURNAL), text);
      await assert.rejects(readJournal(tmp.dir), (e: unknown) => e instanceof FussyError && e.code === 'JOURNAL_UNREADABLE' && e.message.includes(join(tmp.dir, JOURNAL)), what);
    }
  });
});
