import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/daemon/audit.js';
import { makeTmp } from '../helpers/tmp.js';

describe('fussyd audit log (daemon/audit.ts)', function () {
  it('audit-log-flood: however many requests a client makes, the log holds at most two generations of max-bytes, the newest lines kept in order', async function () {
    const dir = await makeTmp('fussyd-audit-');
    const max = 2000;
    const log = await AuditLog.open(dir, () => new Date('2026-12-02T00:00:00Z'), max);
    const id = { cn: 'viewer-cn', fingerprint: 'AA:BB', serial: '1F', issuer: 'CN=ca' };
    const n = 200;
    for (let i = 0; i < n; i++) void log.write({ id, remote: '127.0.0.1:1', action: 'status', resource: `/v1/status?${i}`, decision: i % 2 === 0 ? 'allow' : 'deny' });
    await log.close();
    const current = join(dir, 'audit.jsonl');
    const previous = `${current}.1`;
    assert.ok(statSync(current).size <= max, `audit.jsonl is ${statSync(current).size} bytes`);
    assert.ok(statSync(previous).size <= max, `audit.jsonl.1 is ${statSync(previous).size} bytes`);
    const lines = [previous, current].flatMap((f) => readFileSync(f, 'utf8').split('\n').filter((l) => l !== ''));
    const seen = lines.map((l) => Number((JSON.parse(l) as { resource: string }).resource.split('?')[1]));
    assert.ok(seen.length < n, 'older generations are gone');
    assert.deepEqual(seen, Array.from({ length: seen.length }, (_, k) => n - seen.length + k), 'the newest lines, in order, none torn');
  });

  it('a log reopened by a restarted fussyd counts what it already holds', async function () {
    const dir = await makeTmp('fussyd-audit-');
    const id = { cn: 'a', fingerprint: 'AA', serial: '1', issuer: 'CN=ca' };
    for (let round = 0; round < 3; round++) {
      const log = await AuditLog.open(dir, () => new Date(0), 1000);
      for (let i = 0; i < 5; i++) await log.write({ id, remote: 'r', action: 'status', resource: `/v1/status?${round}-${i}`, decision: 'allow' });
      await log.close();
    }
    assert.ok(statSync(join(dir, 'audit.jsonl')).size <= 1000);
  });
});
