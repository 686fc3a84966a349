import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clean } from '../../src/ops/clean.js';
import { rollback } from '../../src/ops/rollback.js';
import { readHistory } from '../../src/store/history.js';
import { recover } from '../../src/txn/recover.js';
import { deviceBeside, deviceWithPackages, installInto, versionOnly, type Device } from '../helpers/device.js';

/** The pre-install hook keeps a copy of the journal as it stands while the hook runs. */
const HOOK = '#!/bin/sh\n[ -z "$JOURNAL_COPY" ] || cp "$FUSSY_TARGET/.fussy/journal.json" "$JOURNAL_COPY"\n';

/**
 * Issue 11: `now` (a test's clock, a daemon's own) is the time of the history records and of the
 * journal's `started`, not the machine's clock at that moment.
 */
describe('the now option sets the times in the history and the journal', function () {
  let dev: Device;
  let pkgs: Record<string, string>;

  before(async function () {
    ({ dev, pkgs } = await deviceWithPackages(['fw-a', 'fw-b'], (n) => [...versionOnly(n), { path: '.pre-install', mode: 0o755, content: HOOK }]));
  });

  const journalCopy = (d: Device): string => join(d.dir, 'journal-copy.json');
  const env = (d: Device) => ({ PATH: process.env.PATH, JOURNAL_COPY: journalCopy(d) });
  const started = async (d: Device): Promise<string> => (JSON.parse(await readFile(journalCopy(d), 'utf8')) as { started: string }).started;
  const times = async (d: Device): Promise<string[]> => (await readHistory(join(d.target, '.fussy'))).records.map((r) => r.time);

  it('install-ignores-now: the install record and the journal carry the given time', async function () {
    const d = await deviceBeside(dev, 'dev-install');
    const now = new Date('2031-02-03T04:05:06.000Z');
    await installInto(d, pkgs['fw-a'] as string, { now, env: env(d) });
    assert.equal(await started(d), now.toISOString());
    assert.deepEqual(await times(d), [now.toISOString()]);
  });

  it('rollback-ignores-now: the rollback record and its journal carry the given time', async function () {
    const d = await deviceBeside(dev, 'dev-rollback', [pkgs['fw-a'] as string, pkgs['fw-b'] as string]);
    const now = new Date('2032-03-04T05:06:07.000Z');
    const r = await rollback({ target: d.target, env: env(d), cwd: d.dir, hookTimeoutMs: 60_000, now });
    assert.equal(r.release, 'fw-a');
    assert.equal(await started(d), now.toISOString());
    assert.equal((await times(d)).at(-1), now.toISOString());
  });

  it('clean-ignores-now: the clean record carries the given time', async function () {
    const d = await deviceBeside(dev, 'dev-clean', [pkgs['fw-a'] as string, pkgs['fw-b'] as string]);
    const now = new Date('2033-04-05T06:07:08.000Z');
    const c = await clean({ target: d.target, keep: 0, env: env(d), cwd: d.dir, hookTimeoutMs: 60_000, now });
    assert.deepEqual(c.removed, ['fw-a']);
    assert.equal((await times(d)).at(-1), now.toISOString());
  });

  it('recover-ignores-now: the record of a recovery carries the given time', async function () {
    const d = await deviceBeside(dev, 'dev-recover', [pkgs['fw-a'] as string]);
    const journal = { format: 'fussy-journal', version: 1, action: 'clean', id: '1-1', started: '2020-01-01T00:00:00.000Z', step: 'commit', release: '(clean)', created: false, remove: [] };
    await writeFile(join(d.target, '.fussy', 'journal.json'), JSON.stringify(journal) + '\n');
    const now = new Date('2034-05-06T07:08:09.000Z');
    const r = await recover({ target: d.target, env: env(d), cwd: d.dir, hookTimeoutMs: 60_000, now });
    assert.equal(r.outcome, 'rolled-forward');
    assert.equal((await times(d)).at(-1), now.toISOString());
  });
});
