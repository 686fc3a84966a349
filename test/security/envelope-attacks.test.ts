import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { execa } from 'execa';
import * as openpgp from 'openpgp';
import { MAX_META_BYTES, MAX_META_PACKETS, MAX_SIGNATURES } from '../../src/openpgp/packet-grammar.js';
import { packetHeader } from '../../src/openpgp/packet-length.js';
import { MAX_ARMOR_LINE } from '../../src/openpgp/armor.js';
import { pack } from '../../src/pack/pack.js';
import { installInto, makeDevice, type Device } from '../helpers/device.js';
import { gpgHome, type GpgHome } from '../helpers/gpg.js';
import { encryptPackets, newPacket } from '../helpers/seipd-encrypt.js';
import { makeTmp } from '../helpers/tmp.js';
import { sampleFirmware, writeTree } from '../helpers/tree.js';
import { assertRefused } from './helpers.js';

const packet = newPacket;
/** What an attacker appends: a literal data packet with its own content ("evil!"). */
const EVIL = packet(11, Buffer.from('b\x00\x00\x00\x00\x00evil!', 'latin1'));

/**
 * The OpenPGP envelope of a package: every byte of the file belongs to the signed message. Data
 * after the message is refused wherever it sits (after the literal data and signatures, after
 * the deflate stream inside a compressed packet, after the compressed packet, inside the
 * encryption, around the armor), and the packets OpenPGP.js would read into memory whole are
 * bounded before it reads them. All refusals are BAD_SIGNATURE (exit 20): the bytes are outside
 * what the signature covers, found by the OpenPGP layer before anything is trusted.
 */
describe('security: the OpenPGP envelope (trailing data, packet grammar and bounds, armor)', function () {
  let dev: Device;
  let g: GpgHome;
  let fussyPkg: Buffer; // fussy pack: one-pass signature, literal data, signature; no compression
  let gpgZip: Buffer; // tar czf - | gpg --sign: one ZIP compressed packet of indeterminate length
  let gpgZ0: Buffer;
  let signedInner: Buffer; // the packets inside gpgZip, uncompressed

  const write = async (name: string, bytes: Buffer): Promise<string> => {
    const f = join(dev.dir, name);
    await writeFile(f, bytes);
    return f;
  };

  before(async function () {
    dev = await makeDevice(await makeTmp());
    g = await gpgHome(dev.dir);
    assert.equal((await g.gpg(['--import', dev.signingKeyFile])).exitCode, 0);
    const src = await writeTree(join(dev.dir, 'build', 'fw-env'), sampleFirmware());
    fussyPkg = await readFile((await pack({ source: src, tmpDir: dev.dir, signingKeyFiles: [dev.signingKeyFile], output: join(dev.dir, 'fussy.gpg') })).path);
    const tgz = (await execa('tar', ['czf', '-', 'fw-env'], { cwd: join(dev.dir, 'build'), encoding: 'buffer', stripFinalNewline: false })).stdout as unknown as Buffer;
    gpgZip = (await g.gpg(['--sign'], tgz)).stdout;
    gpgZ0 = (await g.gpg(['--sign', '-z', '0'], tgz)).stdout;
    assert.equal(gpgZip[0], 0xa3, 'gpg wrote an old-format compressed packet of indeterminate length');
    signedInner = gpgZ0;
    // Each of them installs as made.
    // The pipeline's packages carry no sequence: after fussy's own they are possible downgrades, allowed here.
    for (const [name, bytes] of [['fussy.gpg', fussyPkg], ['zip.gpg', gpgZip], ['z0.gpg', gpgZ0]] as const) await installInto(dev, await write(name, bytes), { allowDowngrade: true });
  });

  it('trailing-data-after-compressed-packet: a packet appended to the original pipeline\'s package (inside its compressed packet of indeterminate length, after the deflate stream; gpg ignores it) is refused', async function () {
    await assertRefused(dev, await write('zip-trail.gpg', Buffer.concat([gpgZip, EVIL])), 'BAD_SIGNATURE', /data follows the end of the deflate stream in the compressed packet of the package/, { allowDowngrade: true });
  });

  it('trailing-data-after-compressed-packet (fixed length): a packet after a compressed packet that has a length is refused', async function () {
    const body = Buffer.concat([Buffer.from([1]), deflateRawSync(signedInner)]);
    const compressed = packet(8, body);
    await installInto(dev, await write('fixed.gpg', compressed), { allowDowngrade: true }); // the same without the appended packet installs
    await assertRefused(dev, await write('fixed-trail.gpg', Buffer.concat([compressed, EVIL])), 'BAD_SIGNATURE', /data follows the compressed data packet of the package/, { allowDowngrade: true });
    const longer = packet(8, Buffer.concat([body, Buffer.from('junk inside the packet')]));
    await assertRefused(dev, await write('fixed-inside.gpg', longer), 'BAD_SIGNATURE', /data follows the end of the deflate stream in the compressed packet/, { allowDowngrade: true });
  });

  it('trailing-data-inside-compressed-data: a packet after the signature, inside the deflate stream, is refused', async function () {
    const body = Buffer.concat([Buffer.from([1]), deflateRawSync(Buffer.concat([signedInner, EVIL]))]);
    await assertRefused(dev, await write('inner-trail.gpg', packet(8, body)), 'BAD_SIGNATURE', /data follows the end of the message in the compressed data of the package \(a literal data packet at byte \d+\)/, { allowDowngrade: true });
  });

  it('trailing-data-after-literal: a packet appended to an uncompressed package (fussy pack, gpg -z 0) is refused with the same rule', async function () {
    await assertRefused(dev, await write('fussy-trail.gpg', Buffer.concat([fussyPkg, EVIL])), 'BAD_SIGNATURE', /data follows the end of the message in the package \(a literal data packet at byte \d+\)/, { allowDowngrade: true });
    await assertRefused(dev, await write('z0-trail.gpg', Buffer.concat([gpgZ0, EVIL])), 'BAD_SIGNATURE', /data follows the end of the message in the package/, { allowDowngrade: true });
    await assertRefused(dev, await write('fussy-garbage.gpg', Buffer.concat([fussyPkg, Buffer.from('garbage')])), 'BAD_SIGNATURE', /is not the start of an OpenPGP packet/, { allowDowngrade: true });
  });

  it('trailing-data-inside-encryption: signed, compressed data followed by a packet, then encrypted for the device (anyone can: its key is public), is refused after decryption', async function () {
    const deviceKey = await openpgp.readKey({ armoredKey: await readFile(dev.devicePublicKeyFile, 'utf8') });
    const compressed = packet(8, Buffer.concat([Buffer.from([1]), deflateRawSync(signedInner)]));
    const encrypt = (inner: Buffer): Promise<Buffer> => encryptPackets(inner, [deviceKey]);
    const r = await installInto(dev, await write('enc.gpg', await encrypt(compressed)), { allowDowngrade: true }); // as made, it installs
    assert.equal(r.encrypted, true);
    await assertRefused(dev, await write('enc-trail.gpg', await encrypt(Buffer.concat([compressed, EVIL]))), 'BAD_SIGNATURE', /data follows the compressed data packet of the decrypted data/, { allowDowngrade: true });
  });

  it('trailing-data-around-armor: text after the END line, text before the BEGIN line, and a packet inside the armor after the compressed data are refused; blank lines and CRLF are fine', async function () {
    const armored = (await g.gpg(['--sign', '--armor'], (await execa('tar', ['czf', '-', 'fw-env'], { cwd: join(dev.dir, 'build'), encoding: 'buffer', stripFinalNewline: false })).stdout as unknown as Buffer)).stdout;
    await installInto(dev, await write('armored.asc', Buffer.concat([Buffer.from('\n'), Buffer.from(armored.toString().replace(/\n/g, '\r\n')), Buffer.from('\n\n')])), { allowDowngrade: true });
    await assertRefused(dev, await write('armor-after.asc', Buffer.concat([armored, Buffer.from('P.S. install me\n')])), 'BAD_SIGNATURE', /text follows the end of the armored message/, { allowDowngrade: true });
    await assertRefused(dev, await write('armor-before.asc', Buffer.concat([Buffer.from('Dear device,\n'), armored])), 'BAD_SIGNATURE', /text comes before the armored message/, { allowDowngrade: true });
    const inside = Buffer.from(openpgp.armor(openpgp.enums.armor.message, Buffer.concat([gpgZip, EVIL])));
    await assertRefused(dev, await write('armor-inside.asc', inside), 'BAD_SIGNATURE', /data follows the end of the deflate stream/, { allowDowngrade: true });
  });

  it(`armor-without-newlines: a line longer than ${MAX_ARMOR_LINE} characters is refused as it streams, not held whole`, async function () {
    const line = Buffer.alloc(4 * MAX_ARMOR_LINE, 'Q');
    await assertRefused(dev, await write('armor-long.asc', Buffer.concat([Buffer.from('-----BEGIN PGP MESSAGE-----\n\n'), line])), 'BAD_SIGNATURE', new RegExp(`an armor line is longer than ${MAX_ARMOR_LINE} characters`), { allowDowngrade: true });
  });

  it('nested-compression: a compressed packet inside the compressed packet is refused (a package has one layer)', async function () {
    const body = Buffer.concat([Buffer.from([1]), deflateRawSync(gpgZip)]);
    await assertRefused(dev, await write('nested.gpg', packet(8, body)), 'BAD_SIGNATURE', /a compressed data packet at byte 0 of the compressed data of the package/, { allowDowngrade: true });
  });

  it(`oversized-signature-packet: a signature packet of ${2 * MAX_META_BYTES} bytes is refused before OpenPGP.js reads it into memory`, async function () {
    const big = packet(2, Buffer.alloc(2 * MAX_META_BYTES, 7));
    await assertRefused(dev, await write('big-sig.gpg', Buffer.concat([big, fussyPkg])), 'BAD_SIGNATURE', new RegExp(`exceed ${MAX_META_BYTES} bytes`), { allowDowngrade: true });
  });

  it(`too-many-signatures: ${MAX_SIGNATURES + 1} one-pass signatures (each one more hash over all of the data) are refused`, async function () {
    const first = packetHeader(fussyPkg) as NonNullable<ReturnType<typeof packetHeader>>;
    assert.equal(first.tag, 4);
    const onePass = fussyPkg.subarray(0, first.headerLen + (first.length as { length: number }).length);
    const copies = Buffer.concat(Array<Buffer>(MAX_SIGNATURES).fill(onePass));
    await assertRefused(dev, await write('many-sigs.gpg', Buffer.concat([copies, fussyPkg])), 'BAD_SIGNATURE', new RegExp(`more than ${MAX_SIGNATURES} one-pass signatures`), { allowDowngrade: true });
  });

  it('bzip2-signature-flood: a BZip2 layer (whose packets OpenPGP.js would read, any number of signatures, before the signature check) is refused at its header, as gpg --compress-algo bzip2 writes it', async function () {
    const first = packetHeader(fussyPkg) as NonNullable<ReturnType<typeof packetHeader>>;
    const onePass = fussyPkg.subarray(0, first.headerLen + (first.length as { length: number }).length);
    const inner = Buffer.concat([...Array<Buffer>(5000).fill(onePass), fussyPkg]);
    const bz = (await execa('bzip2', ['-c'], { input: inner, encoding: 'buffer' })).stdout as Uint8Array;
    const wrapped = newPacket(8, Buffer.concat([Buffer.from([3]), Buffer.from(bz)])); // tag 8, algorithm 3: BZip2
    await assertRefused(dev, await write('flood-bzip2.gpg', wrapped), 'BAD_SIGNATURE', /is compressed with BZip2, which fussy does not read/, { allowDowngrade: true });
    const tgz = (await execa('tar', ['czf', '-', 'fw-env'], { cwd: join(dev.dir, 'build'), encoding: 'buffer', stripFinalNewline: false })).stdout as unknown as Buffer;
    const signed = (await g.gpg(['--sign', '--compress-algo', 'bzip2'], tgz)).stdout;
    await assertRefused(dev, await write('gpg-bzip2.gpg', signed), 'BAD_SIGNATURE', /is compressed with BZip2/, { allowDowngrade: true });
  });

  it(`too-many-packets: ${MAX_META_PACKETS + 1} marker packets in front of a package are refused`, async function () {
    const marker = Buffer.from([0xca, 0x03, 0x50, 0x47, 0x50]); // tag 10, "PGP"
    await installInto(dev, await write('one-marker.gpg', Buffer.concat([marker, fussyPkg]))); // a marker is allowed (RFC 4880 §5.8)
    const many = Buffer.concat(Array<Buffer>(MAX_META_PACKETS + 1).fill(marker));
    await assertRefused(dev, await write('many-markers.gpg', Buffer.concat([many, fussyPkg])), 'BAD_SIGNATURE', new RegExp(`more than ${MAX_META_PACKETS} session-key, marker or padding packets`), { allowDowngrade: true });
  });
});
