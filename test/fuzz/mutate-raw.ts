import { newLength, packetHeader, type BodyLength } from '../../src/openpgp/packet-length.js';
import type { Rng } from './rng.js';

/** A packet of a sequence: where it starts, where its body starts, where it ends. */
export interface Packet {
  start: number;
  bodyStart: number;
  end: number;
  tag: number;
  length: BodyLength;
}

/** The top-level packets of `b`, as far as they parse (partial lengths walked, indeterminate to the end). */
export function splitPackets(b: Buffer): Packet[] {
  const out: Packet[] = [];
  for (let at = 0; at < b.length; ) {
    const h = packetHeader(b.subarray(at, at + 6));
    if (h === undefined) break;
    const bodyStart = at + h.headerLen;
    let end: number;
    if (h.length.kind === 'indeterminate') end = b.length;
    else if (h.length.kind === 'fixed') end = bodyStart + h.length.length;
    else {
      end = bodyStart + h.length.length;
      for (;;) {
        const l = newLength(b.subarray(end, end + 5));
        if (l === undefined) break;
        end += l[1] + (l[0].kind === 'indeterminate' ? 0 : l[0].length);
        if (l[0].kind !== 'partial') break;
      }
    }
    out.push({ start: at, bodyStart, end: Math.min(end, b.length), tag: h.tag, length: h.length });
    if (end >= b.length) break;
    at = end;
  }
  return out;
}

/** The offsets of the part headers after the first part of a partial-length packet. */
function partHeaders(b: Buffer, p: Packet): number[] {
  const out: number[] = [];
  if (p.length.kind !== 'partial') return out;
  let at = p.bodyStart + p.length.length;
  while (at < p.end) {
    const l = newLength(b.subarray(at, at + 5));
    if (l === undefined) break;
    out.push(at);
    at += l[1] + (l[0].kind === 'indeterminate' ? 0 : l[0].length);
    if (l[0].kind !== 'partial') break;
  }
  return out;
}

/** A new-format length: fixed (5-byte form or the shortest), or partial 2^k. */
export function encodeLength(rng: Rng, value: number, partialBits?: number): Buffer {
  if (partialBits !== undefined) return Buffer.from([224 + partialBits]);
  if (value < 192 && rng.chance(0.5)) return Buffer.from([value]);
  if (value >= 192 && value < 8384 && rng.chance(0.5)) return Buffer.from([((value - 192) >> 8) + 192, (value - 192) & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = 255;
  b.writeUInt32BE(value >>> 0, 1);
  return b;
}

/** Values a length field is changed to: off by a little, zero, huge, doubled. */
export function interestingLength(rng: Rng, v: number): number {
  return rng.pick([v + 1, v - 1, v + rng.range(2, 4096), Math.max(0, v - rng.range(2, 4096)), 0, 1, 0xffffffff, 0x7fffffff, 2 * v + 1, rng.int(1 << 24)].map((x) => Math.max(0, Math.min(0xffffffff, x))));
}

/** Where to mutate: the packet headers at the front and the signature at the end matter most. */
function position(rng: Rng, len: number): number {
  if (len === 0) return 0;
  const r = rng.next();
  if (r < 0.35) return rng.int(Math.min(len, 600));
  if (r < 0.55) return Math.max(0, len - 1 - rng.int(Math.min(len, 600)));
  return rng.int(len);
}

const splice = (b: Buffer, at: number, remove: number, insert: Buffer = Buffer.alloc(0)): Buffer => Buffer.concat([b.subarray(0, at), insert, b.subarray(at + remove)]);

/**
 * Mutate a package's bytes: flipped bits, set bytes, truncation, insertions, deletions,
 * duplicated ranges, appended data, and OpenPGP-aware changes (packets swapped, duplicated,
 * dropped or moved; a packet's length field or a partial-length part header changed).
 */
export function mutateRaw(input: Buffer, rng: Rng, log: string[]): Buffer {
  let b = input;
  const n = rng.weighted([[6, 1], [3, 2], [1, 3]] as const);
  for (let k = 0; k < n; k++) b = rawOnce(b, rng, log);
  return b;
}

function rawOnce(b: Buffer, rng: Rng, log: string[]): Buffer {
  const op = rng.weighted([[5, 'flip'], [2, 'byte'], [2, 'truncate'], [1, 'insert'], [1, 'delete'], [1, 'duplicate'], [1, 'append'], [3, 'packets'], [3, 'length'], [2, 'part']] as const);
  const out = Buffer.from(b);
  switch (op) {
    case 'flip': {
      const bits = rng.range(1, 4);
      const where: string[] = [];
      for (let i = 0; i < bits; i++) {
        const at = position(rng, out.length);
        const bit = rng.int(8);
        out[at] = (out[at] as number) ^ (1 << bit);
        where.push(`${at}.${bit}`);
      }
      log.push(`raw: flip bits ${where.join(' ')}`);
      return out;
    }
    case 'byte': {
      const at = position(rng, out.length);
      const v = rng.pick([0, 0xff, 0x7f, 0x80, rng.int(256)]);
      out[at] = v;
      log.push(`raw: byte ${at} = 0x${v.toString(16)}`);
      return out;
    }
    case 'truncate': {
      const at = rng.chance(0.5) ? position(rng, b.length) : Math.max(0, b.length - rng.range(1, 64));
      log.push(`raw: truncate to ${at} of ${b.length} bytes`);
      return b.subarray(0, at);
    }
    case 'insert': {
      const at = position(rng, b.length);
      const ins = rng.bytes(rng.range(1, 64));
      log.push(`raw: insert ${ins.length} bytes at ${at}`);
      return splice(b, at, 0, ins);
    }
    case 'delete': {
      const at = position(rng, b.length);
      const len = Math.min(b.length - at, rng.range(1, 512));
      log.push(`raw: delete ${len} bytes at ${at}`);
      return splice(b, at, len);
    }
    case 'duplicate': {
      const at = position(rng, b.length);
      const len = Math.min(b.length - at, rng.range(1, 4096));
      const to = position(rng, b.length);
      log.push(`raw: copy ${len} bytes from ${at} to ${to}`);
      return splice(b, to, 0, b.subarray(at, at + len));
    }
    case 'append': {
      const what = rng.pick(['garbage', 'marker', 'literal', 'copy-head', 'zeros'] as const);
      const tail =
        what === 'garbage' ? rng.bytes(rng.range(1, 256))
        : what === 'marker' ? Buffer.from([0xca, 0x03, 0x50, 0x47, 0x50])
        : what === 'literal' ? Buffer.from('cb0b62000000000065766921', 'hex')
        : what === 'zeros' ? Buffer.alloc(rng.range(1, 1024))
        : b.subarray(0, Math.min(b.length, rng.range(16, 2048)));
      log.push(`raw: append ${what} (${tail.length} bytes)`);
      return Buffer.concat([b, tail]);
    }
    case 'packets':
      return packetOp(b, rng, log);
    case 'length':
      return lengthOp(b, rng, log);
    case 'part':
      return partOp(b, rng, log);
  }
}

function packetOp(b: Buffer, rng: Rng, log: string[]): Buffer {
  const ps = splitPackets(b);
  if (ps.length === 0) return rawOnce(b, rng, log);
  const bytes = (p: Packet): Buffer => b.subarray(p.start, p.end);
  const rest = b.subarray((ps[ps.length - 1] as Packet).end);
  const list = ps.map(bytes);
  const i = rng.int(list.length);
  const j = rng.int(list.length);
  const op = rng.pick(['swap', 'duplicate', 'drop', 'to-end', 'to-front'] as const);
  const tags = ps.map((p) => p.tag).join(',');
  if (op === 'swap') [list[i], list[j]] = [list[j] as Buffer, list[i] as Buffer];
  else if (op === 'duplicate') list.splice(j, 0, list[i] as Buffer);
  else if (op === 'drop') list.splice(i, 1);
  else if (op === 'to-end') list.push(...list.splice(i, 1));
  else list.unshift(...list.splice(i, 1));
  log.push(`raw: packets [${tags}]: ${op} ${i}${op === 'swap' || op === 'duplicate' ? ` ${j}` : ''}`);
  return Buffer.concat([...list, rest]);
}

function lengthOp(b: Buffer, rng: Rng, log: string[]): Buffer {
  const ps = splitPackets(b);
  if (ps.length === 0) return rawOnce(b, rng, log);
  const p = rng.pick(ps);
  const old = p.length.kind === 'indeterminate' ? p.end - p.bodyStart : p.length.length;
  const ctb = 0xc0 | p.tag;
  const form = rng.pick(['fixed', 'partial', 'old', 'indeterminate'] as const);
  let header: Buffer;
  let what: string;
  if (form === 'partial') {
    const bits = rng.range(0, 30);
    header = Buffer.concat([Buffer.from([ctb]), encodeLength(rng, 0, bits)]);
    what = `partial 2^${bits}`;
  } else if (form === 'old' && p.tag < 16) {
    const v = interestingLength(rng, old);
    const size = v < 256 && rng.chance(0.5) ? 0 : v < 65536 && rng.chance(0.5) ? 1 : 2;
    const h = Buffer.alloc(1 + (1 << size));
    h[0] = 0x80 | (p.tag << 2) | size;
    if (size === 0) h[1] = v & 0xff;
    else if (size === 1) h.writeUInt16BE(v & 0xffff, 1);
    else h.writeUInt32BE(v >>> 0, 1);
    header = h;
    what = `old-format ${v}`;
  } else if (form === 'indeterminate' && p.tag < 16) {
    header = Buffer.from([0x80 | (p.tag << 2) | 3]);
    what = 'indeterminate';
  } else {
    const v = interestingLength(rng, old);
    header = Buffer.concat([Buffer.from([ctb]), encodeLength(rng, v)]);
    what = `${v}`;
  }
  log.push(`raw: packet at ${p.start} (tag ${p.tag}, ${p.length.kind} ${old}): length -> ${what}`);
  return splice(b, p.start, p.bodyStart - p.start, header);
}

function partOp(b: Buffer, rng: Rng, log: string[]): Buffer {
  const ps = splitPackets(b).filter((p) => p.length.kind === 'partial');
  const p = ps.length > 0 ? rng.pick(ps) : undefined;
  const heads = p === undefined ? [] : partHeaders(b, p);
  if (p === undefined || heads.length === 0) return lengthOp(b, rng, log);
  const at = rng.pick(heads);
  const l = newLength(b.subarray(at, at + 5));
  if (l === undefined) return b;
  const old = l[0].kind === 'indeterminate' ? 0 : l[0].length;
  const partial = rng.chance(0.5);
  const v = interestingLength(rng, old);
  const bits = rng.range(0, 30);
  log.push(`raw: packet at ${p.start} (tag ${p.tag}): part header at ${at} (${l[0].kind} ${old}) -> ${partial ? `partial 2^${bits}` : v}`);
  return splice(b, at, l[1], encodeLength(rng, v, partial ? bits : undefined));
}
