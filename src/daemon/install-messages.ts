import type { Readable } from 'node:stream';
import type { FussyEvent, InstallResult } from '../index.js';
import type { InstallFailure } from './installer.js';

/** A line of the install child longer than this is dropped unread (its hook lines are cut at 64 KiB). */
export const MAX_LINE = 1024 * 1024;

export interface ChildMessages {
  result?: InstallResult;
  error?: InstallFailure;
  /** Lines that were too long, or not one of the child's messages. */
  dropped: number;
  /** What onEvent threw first (later events are not passed on). */
  eventError?: unknown;
}

/**
 * Read the install child's NDJSON (install-child.ts) to its end: `onReady` when it says its
 * signal handlers are in place, each event to `onEvent` as its line completes, the last result
 * or error kept. Memory is bounded by MAX_LINE whatever the
 * child writes: a longer line is skipped to its newline and counted.
 */
export async function readMessages(stdout: Readable | undefined, onEvent: (e: FussyEvent) => void, onReady: () => void = () => {}): Promise<ChildMessages> {
  const got: ChildMessages = { dropped: 0 };
  if (stdout === undefined) return got;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipping = false;
  const line = (bytes: Buffer): void => {
    let m: { ready?: boolean; event?: FussyEvent; result?: InstallResult; error?: InstallFailure };
    try {
      m = JSON.parse(bytes.toString('utf8')) as typeof m;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      got.dropped++;
      return;
    }
    if (m.ready === true) onReady();
    else if (m.event !== undefined && got.eventError === undefined) {
      try {
        onEvent(m.event);
      } catch (err) {
        got.eventError = err;
      }
    } else if (m.result !== undefined) got.result = m.result;
    else if (m.error !== undefined) got.error = m.error;
    else if (m.event === undefined) got.dropped++;
  };
  for await (const chunk of stdout) {
    let buf = chunk as Buffer;
    for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10)) {
      if (!skipping) line(pendingBytes === 0 ? buf.subarray(0, nl) : Buffer.concat([...pending, buf.subarray(0, nl)]));
      skipping = false;
      pending = [];
      pendingBytes = 0;
      buf = buf.subarray(nl + 1);
    }
    if (skipping || buf.length === 0) continue;
    pending.push(buf);
    pendingBytes += buf.length;
    if (pendingBytes > MAX_LINE) {
      got.dropped++;
      skipping = true;
      pending = [];
      pendingBytes = 0;
    }
  }
  if (!skipping && pendingBytes > 0) line(Buffer.concat(pending));
  return got;
}
