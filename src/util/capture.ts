import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

/** What a stream wrote, kept bounded: its first `head` bytes and last `tail` bytes, the rest counted. */
export interface Captured {
  head: Buffer;
  tail: Buffer;
  /** Every byte the stream wrote, kept or not. */
  totalBytes: number;
  /** Bytes between head and tail were dropped. */
  truncated: boolean;
}

/**
 * Read `stream` to its end, always (a program must never block on a full pipe, however much it
 * writes), keeping `headMax` bytes from the start and `tailMax` from the end: memory is bounded
 * by them for 1 KB or 1 GB of output. The head is kept as copies of what arrived and the tail's
 * ring is made when the head is full, so memory follows the output up to those bounds: fixed
 * buffers cost every run of fussyd 2.1 MB (1 MiB + 64 KiB per stream, zero-filled, so touched)
 * whatever it printed, and pushed the daemon's resident memory up by ~60 MB within 100 runs
 * (docs/performance.md, "fussyd"). The returned function gives what was kept so far.
 */
export function captureStream(stream: Readable | null | undefined, headMax: number, tailMax: number): () => Captured {
  const head: Buffer[] = [];
  let ring: Buffer | undefined;
  let headLen = 0;
  let ringPos = 0; // where the next tail byte goes
  let ringLen = 0;
  let total = 0;
  const toRing = (chunk: Buffer): void => {
    if (tailMax === 0 || chunk.length === 0) return;
    ring ??= Buffer.alloc(tailMax);
    if (chunk.length >= tailMax) {
      chunk.copy(ring, 0, chunk.length - tailMax);
      ringPos = 0;
      ringLen = tailMax;
      return;
    }
    const first = Math.min(chunk.length, tailMax - ringPos);
    chunk.copy(ring, ringPos, 0, first);
    chunk.copy(ring, 0, first);
    ringPos = (ringPos + chunk.length) % tailMax;
    ringLen = Math.min(tailMax, ringLen + chunk.length);
  };
  stream?.on('data', (chunk: Buffer) => {
    total += chunk.length;
    const n = Math.min(headMax - headLen, chunk.length);
    // A copy: a subarray would hold the whole of node's read buffer.
    if (n > 0) head.push(Buffer.from(chunk.subarray(0, n)));
    headLen += n;
    toRing(chunk.subarray(n));
  });
  return () => {
    const r = ring ?? Buffer.alloc(0);
    const start = ringLen < tailMax ? 0 : ringPos;
    const tail = ringLen < tailMax ? Buffer.from(r.subarray(0, ringLen)) : Buffer.concat([r.subarray(start), r.subarray(0, start)]);
    return { head: Buffer.concat(head, headLen), tail, totalBytes: total, truncated: total > headLen + ringLen };
  };
}

/** A started child process, as much of it as leaderExit needs. */
interface Leader {
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  stdout: Readable | null;
  stderr: Readable | null;
}

/**
 * The leader's exit (not the end of its pipes, which a descendant may hold open for ever), then
 * at most `drainMs` for what is still in the pipes, then the pipes are closed.
 */
export async function leaderExit(child: Leader, drainMs: number): Promise<{ exitCode: number | undefined; signal: string | undefined }> {
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('exit', (c, s) => res([c, s])));
  const pipes = [child.stdout, child.stderr].filter((p): p is Readable => p !== null && !p.destroyed);
  await new Promise<void>((res) => {
    const timer = setTimeout(res, drainMs);
    let open = pipes.length;
    const closed = (): void => {
      if (--open <= 0) {
        clearTimeout(timer);
        res();
      }
    };
    if (open === 0) closed();
    for (const p of pipes) p.once('close', closed);
  });
  for (const p of pipes) p.destroy();
  return { exitCode: code ?? undefined, signal: signal ?? undefined };
}

/** The last `limit` bytes a stream writes, decoded when asked. */
export function tail(stream: Readable | null, limit: number): (() => string) | undefined {
  if (stream === null) return undefined;
  let kept = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    kept = Buffer.concat([kept, chunk]);
    if (kept.length > limit) kept = kept.subarray(kept.length - limit);
  });
  return () => kept.toString('utf8');
}

/** Each complete line to `onLine` as it arrives; the returned flush passes on an unterminated last one. */
export function splitLines(stream: Readable | undefined, onLine: (line: string) => void): () => void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  stream?.on('data', (chunk: Buffer) => {
    pending += decoder.write(chunk);
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  });
  return () => {
    pending += decoder.end();
    if (pending !== '') onLine(pending);
    pending = '';
  };
}
