import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { FussyEvent } from '../../src/index.js';
import { loadDeviceKeyring } from '../../src/keyring/device-keyring.js';
import { openWhole, WHOLE_MAX } from '../../src/openpgp/open-whole.js';
import { installInto, makeDevice, rawTar, signPayload, type Device } from '../helpers/device.js';
import { makeTmp } from '../helpers/tmp.js';
import { noise } from '../helpers/tree.js';
import { assertRefused } from './helpers.js';

/**
 * A package of at most WHOLE_MAX bytes is read whole and its signatures checked before unpack
 * sees a byte (openpgp/open-whole.ts); a larger one is streamed and checked at its end, its
 * refusals held until then (unpack.ts). Both refuse a forgery with the same words.
 */
describe('security: a small package is verified whole before any of it is used (open-whole.ts)', function () {
  let dev: Device;
  let n = 0;

  before(async function () {
    dev = await makeDevice(await makeTmp('fussy-whole-'), { factory: false });
  });

  /** A signed package of `bytes` of noise; `forge`: its signature's last bytes changed. */
  const packageOf = async (bytes: number, forge: boolean): Promise<string> => {
    const file = join(dev.dir, `whole-${++n}.gpg`);
    await signPayload(file, rawTar([{ path: `fw-${n}/`, type: 'Directory' }, { path: `fw-${n}/pad`, data: noise(n, bytes) }]), { signingKeys: [dev.signingKey] });
    if (forge) {
      const b = readFileSync(file);
      b[b.length - 3] = (b[b.length - 3] as number) ^ 0x55;
      writeFileSync(file, b);
    }
    return file;
  };
  const unpacked = (events: FussyEvent[]): boolean => events.some((e) => e.type === 'progress' && e.phase === 'unpack');

  it('small-forged-never-unpacked: a forged package small enough to be read whole is refused for its signature before unpack reads a byte of it; a larger one is refused in the same words after it was streamed', async function () {
    const small = await packageOf(512 * 1024, true);
    const large = await packageOf(WHOLE_MAX + (1 << 20), true);
    assert.ok(statSync(small).size <= WHOLE_MAX && statSync(large).size > WHOLE_MAX);
    for (const [pkg, streamed] of [[small, false], [large, true]] as const) {
      const events: FussyEvent[] = [];
      await assertRefused(dev, pkg, 'BAD_SIGNATURE', /signature check failed, need a valid signature by a keyring key/, {}, events);
      assert.equal(unpacked(events), streamed, `${pkg}: unpacked before the verdict`);
    }
  });

  it('whole-read-grows: a package that grows while it is read whole (empty deflate blocks, which inflate to nothing) is read no further than WHOLE_MAX bytes, then left to the streaming path', async function () {
    // A FIFO stands for the package's descriptor while its owner appends to it: openWhole reads as
    // far as it is written. A ZIP-compressed packet of indeterminate length, then empty stored blocks.
    const fifo = join(dev.dir, 'growing.gpg');
    execFileSync('mkfifo', [fifo]);
    const ring = await loadDeviceKeyring(dev.keyring);
    let ended = false;
    const reading = openWhole(fifo, false, fifo, ring, { maxBytes: 1 << 30, now: new Date(), size: WHOLE_MAX }).finally(() => (ended = true));
    const writer = await open(fifo, 'w');
    const empty = Buffer.from('000000ffff'.repeat(64 * 1024 / 5), 'hex'); // 64 KiB less a byte of empty blocks
    let written = 0;
    try {
      await writer.write(Buffer.from([0xa3, 0x01]));
      for (const limit = 64 << 20; !ended && written < limit; written += empty.length) await writer.write(empty);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err; // the reader let go
    } finally {
      await writer.close();
    }
    assert.equal(await reading, undefined, 'streamed instead');
    assert.ok(written <= WHOLE_MAX + (1 << 20), `read on to ${written} bytes`);
  });

  it('whole-or-streamed: a good package installs the same whichever way it is read', async function () {
    for (const bytes of [512 * 1024, WHOLE_MAX + (1 << 20)]) {
      const events: FussyEvent[] = [];
      const r = await installInto(dev, await packageOf(bytes, false), {}, events);
      assert.equal(statSync(join(r.path, 'pad')).size, bytes);
      assert.equal(unpacked(events), true);
    }
  });
});
