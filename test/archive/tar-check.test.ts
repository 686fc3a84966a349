import assert from 'node:assert/strict';
import { execa } from 'execa';
import { Header, type HeaderData } from 'tar';
import { TarCheck } from '../../src/archive/tar-check.js';
import { FussyError } from '../../src/errors.js';
import { rawTar } from '../helpers/device.js';

/** A header block for `type` with `size`, then `data` padded to the block. */
function entry(path: string, type: HeaderData['type'], data: Buffer, size = data.length): Buffer {
  const block = Buffer.alloc(512);
  new Header({ path, type, mode: 0o644, uid: 0, gid: 0, size, mtime: new Date(1_700_000_000_000), uname: '', gname: '' }).encode(block);
  return Buffer.concat([block, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
/** A pax "x" header holding `records` exactly as given, before a 5-byte file. */
const withPax = (records: string): Buffer => Buffer.concat([entry('fw/PaxHeader/f', 'ExtendedHeader', Buffer.from(records)), entry('fw/f', 'File', Buffer.from('hello')), Buffer.alloc(1024)]);
const record = (kv: string): string => {
  let len = kv.length + 3;
  while (`${len} ${kv}\n`.length !== len) len += 1;
  return `${len} ${kv}\n`;
};

function check(tar: Buffer, pieces = 7): void {
  const c = new TarCheck();
  // Fed in odd-sized chunks: a header or a record split across chunks must not matter.
  const step = Math.ceil(tar.length / pieces);
  for (let i = 0; i < tar.length; i += step) c.write(tar.subarray(i, i + step));
}
const refused = (tar: Buffer, message: RegExp): void => assert.throws(() => check(tar), (e: unknown) => e instanceof FussyError && e.code === 'BAD_ARCHIVE' && message.test(e.message));
async function gnuTarRefuses(tar: Buffer): Promise<void> {
  const r = await execa('tar', ['-tf', '-'], { input: tar, reject: false });
  assert.notEqual(r.exitCode, 0, `GNU tar read it: ${r.stdout}`);
}

describe('TarCheck: the tar framing as GNU tar reads it, before node-tar parses it', function () {
  it('passes what fussy pack and GNU tar write: pax records, long names, links, directories', async function () {
    check(withPax(record('size=5') + record('mtime=1700000000.5') + record('path=fw/f')));
    check(rawTar([{ path: 'fw/', type: 'Directory' }, { path: `fw/${'n'.repeat(200)}`, data: 'x' }, { path: 'fw/l', type: 'SymbolicLink', linkpath: 'x' }, { path: 'fw/h', type: 'Link', linkpath: `fw/${'n'.repeat(200)}` }]), 3);
    const gnu = (await execa('tar', ['--format=gnu', '-cf', '-', '-C', '/usr/share', 'common-licenses'], { encoding: 'buffer', reject: false })).stdout as unknown as Buffer;
    if (gnu.length > 0) check(gnu);
  });

  it('pax-size-smuggling: "size=12abc" (node-tar read 12) is refused, as GNU tar refuses it', async function () {
    const tar = withPax(record('size=12abc'));
    refused(tar, /pax "size" is "12abc", not a number/);
    await gnuTarRefuses(tar);
  });

  it('pax-negative-size: "size=-1" is refused', async function () {
    const tar = withPax(record('size=-1'));
    refused(tar, /pax "size" is "-1", not a number/);
    await gnuTarRefuses(tar);
  });

  it('pax-wrong-record-length: a record whose length does not match, or file data read as pax records, is refused', async function () {
    const tar = withPax('99 path=fw/f\n');
    refused(tar, /length \(99\) does not match/);
    await gnuTarRefuses(tar);
    const garbage = withPax('#!/bin/sh\necho this was a file\n');
    refused(garbage, /no valid length/);
    await gnuTarRefuses(garbage);
  });

  it('link-with-data: a symlink or directory header that claims data (node-tar reads it, GNU tar does not) is refused', function () {
    refused(Buffer.concat([entry('fw/l', 'SymbolicLink', Buffer.alloc(600, 0x41)), Buffer.alloc(1024)]), /type "2" claims 600 bytes/);
    refused(Buffer.concat([entry('fw/d/', 'Directory', Buffer.alloc(10, 0x41)), Buffer.alloc(1024)]), /type "5" claims 10 bytes/);
  });

  it('negative-base256-size and a size field that is not octal are refused', function () {
    const neg = entry('fw/f', 'File', Buffer.alloc(0));
    neg.fill(0xff, 124, 136);
    refused(Buffer.concat([neg, Buffer.alloc(1024)]), /negative size/);
    const junk = entry('fw/f', 'File', Buffer.alloc(0));
    junk.write('12x4        ', 124, 'latin1');
    refused(Buffer.concat([junk, Buffer.alloc(1024)]), /not an octal number/);
  });

  it('unknown-entry-type: a type node-tar skips (or reads as a name) and GNU tar extracts as a file is refused', async function () {
    for (const code of ['N', 'V', 'M', 'S', 'A', 'Z']) {
      const dir = entry('fw/etc/', 'Directory', Buffer.alloc(0));
      dir[156] = code.charCodeAt(0);
      // the checksum covers the type byte: recompute it, so that only the type is wrong
      dir.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of dir) sum += b;
      dir.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
      refused(Buffer.concat([dir, entry('fw/etc/app.conf', 'File', Buffer.from('x')), Buffer.alloc(1024)]), new RegExp(`type "${code}"`));
    }
  });

  it('a pax header over 1 MiB is refused before it is collected', function () {
    refused(Buffer.concat([entry('fw/PaxHeader/f', 'ExtendedHeader', Buffer.alloc(0), 2 * 1024 * 1024)]), /pax extended header of 2097152 bytes/);
  });
});
