import assert from 'node:assert/strict';
import { mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { clean } from '../../src/ops/clean.js';
import { rollback } from '../../src/ops/rollback.js';
import type { FussyEvent } from '../../src/events.js';
import { appendHistory, readHistory } from '../../src/store/history.js';
import { cli } from '../helpers/cli.js';
import { deviceWithPackages, installedBeside, installInto, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';

const record = (i: number) => ({ time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), action: 'install' as const, result: 'ok' as const, release: `fw-${i}`, durationMs: i });
const logged = (events: { type: string; message?: string }[]): string => events.flatMap((e) => (e.type === 'log' && e.message !== undefined ? [e.message] : [])).join('\n');

describe('a damaged history is reported as damage, never the reason a transaction fails (issue 11)', function () {
  let dev: Device;
  let pkgs: Record<string, string>;

  before(async function () {
    ({ dev, pkgs } = await deviceWithPackages(['fw-a', 'fw-b', 'fw-c']));
  });

  const device = (name: string, installs: string[]): Promise<Device> => installedBeside({ dev, pkgs }, name, installs);
  const head = (d: Device): string => join(d.target, '.fussy', 'history.head');

  it('history-head-torn: an install after a torn history.head succeeds, says so in a log event, and the history checks out again afterwards', async function () {
    const d = await device('dev-torn', ['fw-a']);
    await writeFile(head(d), '{"count":1,"sha256":"ab'); // a write cut short
    const events: FussyEvent[] = [];
    const r = await installInto(d, pkgs['fw-b'] as string, {}, events);
    assert.equal(r.release, 'fw-b');
    assert.equal(await readlink(join(d.target, 'current')), 'fw-b');
    assert.match(logged(events), /the history is damaged: .*history\.head is not JSON.*rebuilt it from .*history\.log/);
    const h = await readHistory(join(d.target, '.fussy'));
    assert.deepEqual(h.problems, []);
    assert.deepEqual(h.records.map((x) => [x.action, x.result, x.release]), [['install', 'ok', 'fw-a'], ['install', 'ok', 'fw-b']]);
    assert.match(h.records[1]?.headRebuilt ?? '', /history\.head is not JSON/);
    const shown = await cli('fussy', ['history', '-t', d.target]);
    assert.equal(shown.exitCode, 0, shown.stderr);
    assert.match(shown.stdout, /install ok fw-b .*the history was damaged: .*history\.head is not JSON/);
  });

  it('history-head-garbage: fussy status works and reports the damage; fussy history exits 2 naming history.head', async function () {
    const d = await device('dev-garbage', ['fw-a', 'fw-b']);
    await writeFile(head(d), Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x0a]));
    const s = await cli('fussy', ['status', '-t', d.target]);
    assert.equal(s.exitCode, 0, s.stderr);
    assert.match(s.stdout, /current: fw-b/);
    assert.match(s.stdout, /history damaged: .*history\.head is not JSON/);
    const j = await cli('fussy', ['status', '-t', d.target, '--json']);
    assert.equal(j.exitCode, 0, j.stderr);
    assert.equal((JSON.parse(j.stdout) as { historyDamaged?: string }).historyDamaged, head(d));
    const h = await cli('fussy', ['history', '-t', d.target]);
    assert.equal(h.exitCode, 2, h.stderr);
    assert.ok(h.stderr.includes(`${head(d)} is not JSON`), h.stderr);
    assert.doesNotMatch(h.stderr, /internal error/);
  });

  it('history-head-edited: a head that is JSON but not a head (wrong types) is damage too; rollback and clean succeed past it', async function () {
    const d = await device('dev-edited', ['fw-a', 'fw-b', 'fw-c']);
    await writeFile(head(d), '{"count":"three","sha256":null}\n');
    const events: { type: string; message?: string }[] = [];
    const env = { PATH: process.env.PATH };
    const back = await rollback({ target: d.target, env, cwd: d.dir, hookTimeoutMs: 60_000, onEvent: (e) => events.push(e) });
    assert.equal(back.release, 'fw-b');
    assert.match(logged(events), /history\.head is not a fussy history head/);
    await writeFile(head(d), 'null\n');
    const c = await clean({ target: d.target, keep: 0, env, cwd: d.dir, hookTimeoutMs: 60_000, onEvent: (e) => events.push(e) });
    assert.deepEqual(c.removed, ['fw-a', 'fw-c']);
    assert.match(logged(events), /history\.head is not a fussy history head[\s\S]*history\.head is not a fussy history head/);
    const h = await readHistory(join(d.target, '.fussy'));
    assert.deepEqual(h.problems, []);
    assert.deepEqual(h.records.map((x) => [x.action, x.result]).slice(-2), [['rollback', 'ok'], ['clean', 'ok']]);
  });

  it('history-log-not-a-file: an install succeeds when history.log cannot be written, and fussy history exits 2 naming it', async function () {
    const d = await device('dev-logdir', ['fw-a']);
    const log = join(d.target, '.fussy', 'history.log');
    await rm(log);
    await mkdir(log);
    const events: FussyEvent[] = [];
    const r = await installInto(d, pkgs['fw-b'] as string, {}, events);
    assert.equal(r.release, 'fw-b');
    assert.match(logged(events), /could not add to the history/);
    const s = await cli('fussy', ['status', '-t', d.target]);
    assert.equal(s.exitCode, 0, s.stderr);
    const h = await cli('fussy', ['history', '-t', d.target]);
    assert.equal(h.exitCode, 2, h.stderr);
    assert.ok(h.stderr.includes(`${log} cannot be read (EISDIR`), h.stderr);
  });
});

describe('history head: crash windows and rebuilds', function () {
  it('a crash between the log append and the head write: the record is taken as written and the chain goes on', async function () {
    const dir = await makeTmp();
    await appendHistory(dir, record(0));
    await appendHistory(dir, record(1));
    const before = await readFile(join(dir, 'history.head'));
    await appendHistory(dir, record(2));
    await writeFile(join(dir, 'history.head'), before); // the head as it was before the third append
    assert.deepEqual((await readHistory(dir)).problems, []);
    assert.equal(await appendHistory(dir, record(3)), undefined);
    const h = await readHistory(dir);
    assert.deepEqual(h.problems, []);
    assert.deepEqual(h.records.map((r) => r.durationMs), [0, 1, 2, 3]);
  });

  it('history-head-deleted: a missing head while the log has records is damage, rebuilt from the log on the next append', async function () {
    const dir = await makeTmp();
    for (let i = 0; i < 3; i++) await appendHistory(dir, record(i));
    await rm(join(dir, 'history.head'));
    const seen = await readHistory(dir);
    assert.match(seen.problems.join('; '), /history\.head is missing while the log has records/);
    assert.equal(seen.records.length, 3);
    assert.match((await appendHistory(dir, record(3))) ?? '', /history\.head is missing/);
    assert.deepEqual((await readHistory(dir)).problems, []);
  });

  it('history-head-rebuilt-after-rotation: a damaged head is rebuilt with the bases that join the log to its archive', async function () {
    const dir = await makeTmp();
    for (let i = 0; i < 30; i++) await appendHistory(dir, record(i), 2000);
    await writeFile(join(dir, 'history.head'), '{');
    await appendHistory(dir, record(30), 2000);
    const h = await readHistory(dir);
    assert.deepEqual(h.problems, []);
    const ids = h.records.map((r) => r.durationMs);
    assert.equal(ids.at(-1), 30);
    assert.deepEqual(ids, ids.map((_, i) => (ids[0] as number) + i));
  });

  it('a line of the log that is JSON but not a record is reported, not a crash of the readers', async function () {
    const dir = await makeTmp();
    await appendHistory(dir, record(0));
    await writeFile(join(dir, 'history.log'), (await readFile(join(dir, 'history.log'), 'utf8')) + 'null\n[1]\n');
    const h = await readHistory(dir);
    assert.equal(h.records.length, 1);
    assert.match(h.problems.join('; '), /record 2 is not a history record/);
  });
});
