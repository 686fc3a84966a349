import { closeSync, openSync, statSync } from 'node:fs';
import { setImmediate } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type * as openpgp from 'openpgp';
import { FussyError } from '../errors.js';
import { packetHeader } from './packet-length.js';
import { SeipdFailure, seipdPlaintext } from './seipd-decrypt.js';
import { SEIPD_TAG, type SeipdMessage, type SeipdWork } from './seipd-protocol.js';

/** RFC 4880 tags that may come before the encrypted data: PKESK, SKESK, marker. */
const SESSION_KEY_TAGS = new Set([1, 3, 10]);
const CIPHERS: Record<string, string | undefined> = { aes128: 'aes-128-cfb', aes192: 'aes-192-cfb', aes256: 'aes-256-cfb' };

/**
 * Where the SEIPDv1 packet starts, when the package is a binary message of session-key packets
 * followed by one SEIPDv1 packet (what fussy pack and gpg -e write); otherwise undefined (AEAD,
 * armor, anything unusual stays with OpenPGP.js). `head`: the file's first bytes, enough to hold
 * the session-key packets (each a few hundred bytes).
 */
export function findSeipdV1(head: Buffer): number | undefined {
  for (let at = 0; at < head.length; ) {
    const h = packetHeader(head.subarray(at));
    if (h === undefined) return undefined;
    if (h.tag === SEIPD_TAG) return at > 0 && head[at + h.headerLen] === 1 ? at : undefined;
    if (!SESSION_KEY_TAGS.has(h.tag) || h.length.kind !== 'fixed') return undefined;
    at += h.headerLen + h.length.length;
  }
  return undefined;
}

export interface Decrypted {
  /** The plaintext (an OpenPGP message), streamed. NOT trusted until `integrity` resolves. */
  data: AsyncIterable<Uint8Array>;
  /** Resolves once the whole packet was decrypted and its MDC holds; rejects otherwise. */
  integrity: Promise<void>;
  /** Stop the decryption thread (the reader gave up, or the install failed elsewhere). */
  stop: () => void;
}

/** The cipher for a session key, or undefined when it is not AES (then OpenPGP.js decrypts). */
export function seipdCipher(key: openpgp.SessionKey): string | undefined {
  return CIPHERS[key.algorithm];
}

/**
 * Packets up to this size are decrypted on the main thread: starting a worker thread (a new V8
 * isolate, ~60 ms on a 2-core VM) costs more than decrypting and hashing 4 MiB (~10 ms), and
 * small packages are what a device gets most (config updates, hotfixes).
 */
export const IN_PROCESS_MAX = 4 * 1024 * 1024;

/**
 * Decrypt the SEIPDv1 packet at `offset` of `file` (read from `read`, its descriptor's path).
 * A large packet is decrypted on a worker thread (seipd-worker.ts), so AES and the SHA-1 of the
 * integrity check run beside the main thread's gunzip, tar and hashing instead of inside
 * X; memory is bounded by IN_FLIGHT pieces. A
 * small one (IN_PROCESS_MAX; `thread` forces either) is decrypted here, a piece at a time.
 * Nothing at or past `end` is read (the package's size when it was opened; default: the file's).
 * Stopping to read (for await ... break, or an error) stops the decryption.
 */
export function decryptSeipd(file: string, offset: number, key: openpgp.SessionKey, read: string = file, o: { thread?: boolean; end?: number } = {}): Decrypted {
  const cipher = seipdCipher(key);
  if (cipher === undefined) throw new Error(`decryptSeipd: ${key.algorithm} is not AES`);
  const thread = o.thread ?? (o.end ?? statSync(read).size) - offset > IN_PROCESS_MAX;
  return (thread ? onThread : here)({ file: read, offset, cipher, key: key.data, end: o.end }, file);
}

type Failed = Extract<SeipdMessage, { type: 'error' }>;

/** The refusal for a failed decryption: a wrong key, or a package that is not what was signed. */
function failure(m: Failed, file: string): FussyError {
  return m.kind === 'quick-check'
    ? new FussyError('DECRYPT_FAILED', `${file} cannot be decrypted: ${m.message}`, { hint: 'the package was encrypted for another device key, or is damaged' })
    : new FussyError('BAD_SIGNATURE', `${file} failed verification: ${m.message}`, { hint: 'the package was tampered with, truncated or damaged; nothing was installed' });
}

/** The integrity promise and its settlement; once settled, later calls change nothing. */
function integrityOf(file: string): { integrity: Promise<void>; resolve: () => void; reject: (e: unknown) => void; stopped: () => void } {
  let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  const integrity = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  integrity.catch(() => {}); // read through `data` or `integrity`, whichever the caller awaits
  const s = settle as { resolve: () => void; reject: (e: unknown) => void };
  const stopped = (): void => s.reject(new FussyError('BAD_SIGNATURE', `${file}: decryption was stopped before the integrity check`, { hint: 'nothing was installed' }));
  return { integrity, ...s, stopped };
}

function here(work: Omit<SeipdWork, 'shared'>, file: string): Decrypted {
  const settle = integrityOf(file);
  async function* data(): AsyncGenerator<Uint8Array> {
    let fd: number | undefined;
    try {
      fd = openSync(work.file, 'r');
      for (const [piece] of seipdPlaintext(fd, work.offset, work.cipher, work.key, work.end)) {
        yield piece;
        await setImmediate(); // a piece (up to 1 MiB) at a time, other work in between
      }
      settle.resolve();
    } catch (err) {
      const e = failure({ type: 'error', kind: err instanceof SeipdFailure ? err.kind : 'io', message: (err as Error).message }, file);
      settle.reject(e);
      throw e;
    } finally {
      if (fd !== undefined) closeSync(fd);
      settle.stopped();
    }
  }
  return { data: data(), integrity: settle.integrity, stop: settle.stopped };
}

function onThread(work: Omit<SeipdWork, 'shared'>, file: string): Decrypted {
  const shared = new SharedArrayBuffer(8);
  const state = new Int32Array(shared);
  const worker = new Worker(new URL('./seipd-worker.js', import.meta.url), { workerData: { ...work, shared } satisfies SeipdWork });
  const queue: SeipdMessage[] = [];
  let wake: (() => void) | undefined;
  const settle = integrityOf(file);
  const push = (m: SeipdMessage): void => {
    queue.push(m);
    wake?.();
  };
  worker.on('message', push);
  worker.on('error', (err) => push({ type: 'error', kind: 'io', message: err.message }));
  worker.on('exit', () => push({ type: 'error', kind: 'io', message: 'the decryption thread stopped' }));

  async function* data(): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const m = queue.shift();
        if (m === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        if (m.type === 'data') {
          Atomics.sub(state, 0, 1);
          Atomics.notify(state, 0);
          yield m.chunk;
        } else if (m.type === 'end') {
          settle.resolve();
          return;
        } else {
          const err = failure(m, file);
          settle.reject(err);
          throw err;
        }
      }
    } finally {
      stop();
    }
  }
  function stop(): void {
    settle.stopped();
    Atomics.store(state, 1, 1);
    Atomics.notify(state, 0);
    void worker.terminate();
  }
  return { data: data(), integrity: settle.integrity, stop };
}
