import assert from 'node:assert/strict';
import { FussyError } from '../../src/errors.js';
import { MAX_META_BYTES, MAX_META_PACKETS, MAX_SIGNATURES, PacketGrammar } from '../../src/openpgp/packet-grammar.js';
import type { BodyLength, PacketHeader } from '../../src/openpgp/packet-length.js';

/** Packet tags (RFC 9580 §5). */
const PKESK = 1, SIG = 2, SKESK = 3, OPS = 4, COMPRESSED = 8, SED = 9, MARKER = 10, LITERAL = 11, SEIPD = 18, AEAD = 20, PADDING = 21;

type P = number | [tag: number, length: BodyLength];

const header = (p: P): PacketHeader => {
  const [tag, length] = typeof p === 'number' ? [p, { kind: 'fixed', length: 100 } as BodyLength] : p;
  return { tag, length, headerLen: 2 };
};

/** Feed `packets` to a fresh grammar, at made-up offsets 1000 apart. */
function feed(packets: P[]): void {
  const g = new PacketGrammar('pkg.gpg', 'the package');
  packets.forEach((p, i) => g.next(header(p), i * 1000));
}

function refused(packets: P[], why: RegExp): void {
  assert.throws(() => feed(packets), (e: unknown) => {
    assert.ok(e instanceof FussyError, String(e));
    assert.equal(e.code, 'BAD_SIGNATURE');
    assert.match(e.message, /^pkg\.gpg: /, 'names the file');
    assert.match(e.message, why);
    return true;
  });
}

describe('packet grammar (openpgp/packet-grammar.ts): the packet sequences a package can be', function () {
  describe('accepted', function () {
    const ok: Array<[string, P[]]> = [
      ['signed (fussy pack, gpg -z 0): one-pass signature, literal data, signature', [OPS, LITERAL, SIG]],
      ['signed by several keys: one-pass signatures, literal data, signatures', [OPS, OPS, OPS, LITERAL, SIG, SIG, SIG]],
      ['the old order: signature, then literal data', [SIG, LITERAL]],
      ['literal data alone (OpenPGP.js refuses it as unsigned, with its own message)', [LITERAL]],
      ['a marker packet first (RFC 4880 §5.8), then a signed message', [MARKER, OPS, LITERAL, SIG]],
      ['padding first (RFC 9580 §5.14)', [PADDING, MARKER, OPS, LITERAL, SIG]],
      ['encrypted for several devices: session keys, then encrypted data (SEIPD)', [PKESK, PKESK, PKESK, SEIPD]],
      ['a passphrase session key and a public-key one, then SEIPD', [SKESK, PKESK, SEIPD]],
      ['legacy encrypted data (SED) and AEAD after a session key', [PKESK, SED]],
      ['AEAD encrypted data after a session key', [PKESK, AEAD]],
      ['literal data with partial or indeterminate lengths (streamed, not bounded)', [OPS, [LITERAL, { kind: 'partial', length: 8192 }], SIG]],
      ['literal data of an old-format indeterminate length', [OPS, [LITERAL, { kind: 'indeterminate' }], SIG]],
      [`exactly ${MAX_SIGNATURES} one-pass signatures and ${MAX_SIGNATURES} signatures`, [...Array<P>(MAX_SIGNATURES).fill(OPS), LITERAL, ...Array<P>(MAX_SIGNATURES).fill(SIG)]],
    ];
    for (const [what, packets] of ok) {
      it(what, function () {
        feed(packets);
      });
    }

    it(`exactly ${MAX_META_PACKETS} marker packets, and meta packets up to ${MAX_META_BYTES} bytes in all`, function () {
      const g = new PacketGrammar('pkg.gpg', 'the package');
      for (let i = 0; i < MAX_META_PACKETS; i++) g.next({ tag: MARKER, length: { kind: 'fixed', length: 3 }, headerLen: 2 }, i * 5);
      new PacketGrammar('pkg.gpg', 'the package').next({ tag: SIG, length: { kind: 'fixed', length: MAX_META_BYTES - 6 }, headerLen: 6 }, 0);
    });
  });

  describe('refused, named after the shape an attacker would send', function () {
    it('two-literal-packets: a second literal data packet after a signed one (content the signature does not cover)', function () {
      refused([OPS, LITERAL, LITERAL], /data follows the end of the message in the package \(a literal data packet at byte 2000\)/);
      refused([OPS, LITERAL, SIG, LITERAL], /data follows the end of the message .*literal data packet at byte 3000/);
    });

    it('two-literal-packets, unsigned first: literal data, then more literal data', function () {
      refused([LITERAL, LITERAL], /data follows the end of the message/);
      refused([SIG, LITERAL, LITERAL], /data follows the end of the message/);
    });

    it('signature-before-one-pass: a signature, then a one-pass signature', function () {
      refused([SIG, OPS, LITERAL, SIG], /a one-pass signature packet cannot come here in a package \(byte 1000 of the package\)/);
    });

    it('trailing-packet-after-signature: a marker, a session key or a one-pass signature after the signatures', function () {
      for (const tag of [MARKER, PKESK, OPS, PADDING]) refused([OPS, LITERAL, SIG, tag], /data follows the end of the message .*at byte 3000/);
    });

    it('trailing-packet-after-encrypted-data: anything after the SEIPD packet', function () {
      refused([PKESK, SEIPD, LITERAL], /data follows the end of the message .*literal data packet at byte 2000/);
      refused([PKESK, SEIPD, PKESK, SEIPD], /data follows the end of the message/);
    });

    it('trailing-packet-after-old-order-literal: a packet after signature + literal data', function () {
      refused([SIG, LITERAL, SIG], /data follows the end of the message .*signature packet at byte 2000/);
    });

    it('marker-inside-message: a marker or padding packet anywhere but first', function () {
      refused([OPS, MARKER, LITERAL, SIG], /a marker packet cannot come here .*byte 1000/);
      refused([PKESK, MARKER, SEIPD], /a marker packet cannot come here/);
      refused([SIG, PADDING, LITERAL], /a padding packet cannot come here/);
    });

    it('one-pass-without-literal: one-pass signatures followed directly by a signature', function () {
      refused([OPS, SIG], /a signature packet cannot come here .*byte 1000/);
    });

    it('encrypted-data-without-session-key: SEIPD or SED with nothing to decrypt it', function () {
      refused([SEIPD], /an? encrypted data packet cannot come here .*byte 0/);
      refused([SED], /encrypted data packet cannot come here/);
    });

    it('session-key-inside-signed-message: a session key after a one-pass signature or a signature', function () {
      refused([OPS, PKESK, SEIPD], /a session key packet cannot come here/);
      refused([SIG, SKESK, SEIPD], /a session key packet cannot come here/);
    });

    it('signed-and-encrypted-siblings: a literal data packet after session keys (not inside the encryption)', function () {
      refused([PKESK, LITERAL], /a literal data packet cannot come here/);
      refused([PKESK, OPS, LITERAL, SIG], /a one-pass signature packet cannot come here/);
    });

    // The one layer a package may have is inflated before the grammar reads it (outer-compression.ts).
    it('compressed-packet-where-none-may-be: a compressed packet anywhere in a sequence the grammar reads', function () {
      refused([COMPRESSED], /a compressed data packet at byte 0 of the package: a package has at most one layer of compression/);
      refused([OPS, COMPRESSED], /a compressed data packet at byte 1000/);
    });

    it('foreign-packet-types: keys, user ids, trust, reserved and private tags are refused by type', function () {
      for (const tag of [0, 5, 6, 7, 12, 13, 14, 17, 19, 60, 63]) refused([tag], new RegExp(`a type ${tag} packet cannot come here in a package \\(byte 0 of the package\\)`));
      refused([OPS, LITERAL, 6], /data follows the end of the message .*type 6 packet/);
    });

    it('unbounded-signature-packet: a signature, session key or marker with a partial or indeterminate length (OpenPGP.js would read it whole)', function () {
      refused([[SIG, { kind: 'partial', length: 1 << 30 }], LITERAL], /the signature packet at byte 0 of the package has no fixed length/);
      refused([OPS, LITERAL, [SIG, { kind: 'indeterminate' }]], /the signature packet at byte 2000 .*has no fixed length/);
      refused([[PKESK, { kind: 'partial', length: 512 }], SEIPD], /the session key packet at byte 0 .*has no fixed length/);
      refused([[OPS, { kind: 'indeterminate' }]], /the one-pass signature packet .*has no fixed length/);
    });

    it(`too-many-signatures: ${MAX_SIGNATURES + 1} one-pass signatures, or ${MAX_SIGNATURES + 1} signatures`, function () {
      refused([...Array<P>(MAX_SIGNATURES + 1).fill(OPS)], new RegExp(`more than ${MAX_SIGNATURES} one-pass signatures in the package`));
      refused([OPS, LITERAL, ...Array<P>(MAX_SIGNATURES + 1).fill(SIG)], new RegExp(`more than ${MAX_SIGNATURES} signatures in the package`));
      refused([...Array<P>(MAX_SIGNATURES + 1).fill(SIG), LITERAL], new RegExp(`more than ${MAX_SIGNATURES} signatures`));
    });

    it(`too-many-packets: ${MAX_META_PACKETS + 1} session keys`, function () {
      refused([...Array<P>(MAX_META_PACKETS + 1).fill([PKESK, { kind: 'fixed', length: 3 }]), SEIPD], new RegExp(`more than ${MAX_META_PACKETS} session-key, marker or padding packets`));
    });

    it(`oversized-meta-packets: signature and session-key packets of more than ${MAX_META_BYTES} bytes together`, function () {
      const big: P = [SIG, { kind: 'fixed', length: MAX_META_BYTES / 2 }];
      refused([OPS, LITERAL, big, big], new RegExp(`exceed ${MAX_META_BYTES} bytes \\(at byte 3000\\)`));
      refused([[SIG, { kind: 'fixed', length: 0xffff_ffff }], LITERAL], /exceed .* bytes \(at byte 0\)/);
    });
  });

  it('the bounds count per sequence: each PacketGrammar (the package, its decrypted data) starts afresh', function () {
    const seq = [...Array<P>(MAX_SIGNATURES).fill(OPS), LITERAL, ...Array<P>(MAX_SIGNATURES).fill(SIG)];
    feed(seq);
    feed(seq);
  });

  it('names the sequence it checks in its messages ("the decrypted data", ...)', function () {
    const g = new PacketGrammar('fw.gpg', 'the decrypted data');
    g.next(header(OPS), 0);
    g.next(header(LITERAL), 50);
    g.next(header(SIG), 900);
    assert.throws(() => g.next(header(LITERAL), 1234), { code: 'BAD_SIGNATURE', message: /^fw\.gpg: data follows the end of the message in the decrypted data \(a literal data packet at byte 1234\)$/ });
  });
});
