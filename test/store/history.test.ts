import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { INLINE_DIGEST_MAX, packageDigest } from '../../src/store/package-digest.js';
import { pack } from '../../src/pack/pack.js';
import { cli } from '../helpers/cli.js';
import { installInto, makeDevice, signPayload, rawTar, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';

interface Rec {
  action: string;
  result: string;
  release?: string;
  previous?: string;
  package?: { sha256?: string; bytes?: number };
  signers?: string[];
  error?: { code: string };
  prev: string;
}

describe('history: an append-only, hash-chained log of every transaction', function () {
  let dev: Device;
  let log: string;
  let good: string;

  before(async function () {
    dev = await makeDevice(await makeTmp());
    log = join(dev.target, '.fussy', 'history.log');
    good = (await pack({ source: await writeTree(join(dev.dir, 'build', 'fw-1'), sampleFirmware()), tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'good.gpg') })).path;
    await installInto(dev, good);
    const unsigned = await signPayload(join(dev.dir, 'unsigned.gpg'), rawTar([{ path: 'fw-2/', type: 'Directory' }]), { signingKeys: [] });
    await assert.rejects(installInto(dev, unsigned), { code: 'BAD_SIGNATURE' });
    const failing = sampleFirmware().map((f) => (f.path === '.pre-install' ? { ...f, content: '#!/bin/sh\nexit 1\n' } : f));
    const bad = (await pack({ source: await writeTree(join(dev.dir, 'build', 'fw-3'), failing), tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'bad.gpg') })).path;
    await assert.rejects(installInto(dev, bad), { code: 'INSTALL_FAILED_RECOVERED' });
  });

  it('records installs, refusals and failed installs with package sha256, signers, release and result', async function () {
    const r = await cli('fussy', ['history', '-t', dev.target, '--json']);
    assert.equal(r.exitCode, 0, r.stderr);
    const { records, problems } = JSON.parse(r.stdout) as { records: Rec[]; problems: string[] };
    assert.deepEqual(problems, []);
    assert.deepEqual(records.map((x) => [x.action, x.result, x.release, x.error?.code]), [
      ['install', 'ok', 'fw-1', undefined],
      ['install', 'refused', undefined, 'BAD_SIGNATURE'],
      ['install', 'failed-recovered', 'fw-3', 'INSTALL_FAILED_RECOVERED'],
    ]);
    const first = records[0] as Rec;
    assert.equal(first.package?.sha256, createHash('sha256').update(await readFile(good)).digest('hex'));
    assert.equal(first.previous, 'failsafe');
    assert.equal(first.signers?.length, 1);
    assert.equal(first.prev, '0'.repeat(64));
    const human = await cli('fussy', ['history', '-t', dev.target]);
    assert.match(human.stdout, /install ok fw-1 \(was failsafe\) package sha256 [0-9a-f]{16} signed by [0-9A-F]{16}/);
  });

  it('history-edited: changing a record breaks the chain and fussy history exits 2 saying so', async function () {
    const original = await readFile(log, 'utf8');
    try {
      await writeFile(log, original.replace('"result":"refused"', '"result":"ok"'));
      const r = await cli('fussy', ['history', '-t', dev.target]);
      assert.equal(r.exitCode, 2);
      assert.match(r.stderr, /record 3 does not follow record 2/);
    } finally {
      await writeFile(log, original);
    }
  });

  it('history-truncated: records cut off the end are noticed (the head file remembers the count)', async function () {
    const original = await readFile(log, 'utf8');
    try {
      await writeFile(log, original.split('\n').slice(0, 2).join('\n') + '\n');
      const r = await cli('fussy', ['history', '-t', dev.target]);
      assert.equal(r.exitCode, 2);
      assert.match(r.stderr, /the log has 2 records but 3 were written: records were removed from the end/);
    } finally {
      await writeFile(log, original);
    }
  });

  it('a record cut short by a crash is reported as incomplete, not hidden', async function () {
    const original = await readFile(log, 'utf8');
    try {
      await writeFile(log, original + '{"time":"2026-');
      const r = await cli('fussy', ['history', '-t', dev.target]);
      assert.equal(r.exitCode, 2);
      assert.match(r.stderr, /the last record is incomplete/);
    } finally {
      await writeFile(log, original);
    }
  });
});

describe('packageDigest: the package sha256 for the history (small ones here, large ones on a low-priority worker thread)', function () {
  const pattern = (n: number): Buffer => {
    const bytes = Buffer.alloc(n);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    return bytes;
  };
  for (const [name, size] of [['hashed here', 3 * 1024 * 1024 + 5], ['on the worker', INLINE_DIGEST_MAX + 1024 * 1024 + 5]] as const) {
    it(`is the sha256 of the whole file, read in 1 MiB pieces (${name}: ${size} bytes)`, async function () {
      const dir = await makeTmp();
      const file = join(dir, 'pkg.gpg');
      const bytes = pattern(size);
      await writeFile(file, bytes);
      assert.equal(await packageDigest(file), createHash('sha256').update(bytes).digest('hex'));
    });
  }

  it('gives no digest, without waiting, for a FIFO, a missing file or an aborted request', async function () {
    const dir = await makeTmp();
    const fifo = join(dir, 'never-written.gpg');
    await execa('mkfifo', [fifo]);
    assert.equal(await packageDigest(fifo), undefined); // opening it to read would block for ever
    assert.equal(await packageDigest(join(dir, 'missing.gpg')), undefined);
    const big = join(dir, 'big.gpg');
    await writeFile(big, Buffer.alloc(64 * 1024 * 1024));
    const stop = new AbortController();
    const pending = packageDigest(big, stop.signal);
    stop.abort();
    assert.equal(await pending, undefined);
    const already = new AbortController();
    already.abort();
    assert.equal(await packageDigest(big, already.signal), undefined);
  });
});
