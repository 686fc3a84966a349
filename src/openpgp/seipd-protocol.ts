/** Shared between seipd.ts and its worker (seipd-worker.ts). */
export const SEIPD_TAG = 18;
/** Plaintext pieces (1 MiB each) the worker may have sent ahead of the reader. */
export const IN_FLIGHT = 4;

export interface SeipdWork {
  file: string;
  /** Where the SEIPD packet's header starts in the file. */
  offset: number;
  /** node's cipher name, aes-128-cfb, aes-192-cfb or aes-256-cfb. */
  cipher: string;
  key: Uint8Array;
  /** The package's size when it was opened: nothing at or past it is read. */
  end?: number;
  /** Int32Array(2): pieces in flight, stop flag. */
  shared: SharedArrayBuffer;
}

export type SeipdMessage =
  | { type: 'data'; chunk: Uint8Array }
  | { type: 'end' }
  | { type: 'error'; kind: 'format' | 'truncated' | 'quick-check' | 'mdc' | 'io'; message: string };
