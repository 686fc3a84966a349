/**
 * Pulls bytes from an async iterator with look-ahead, for parsing framed binary streams
 * (OpenPGP packet headers, gzip members). Chunks are collected in a list and joined once per
 * fill, so reading a frame of n bytes costs O(n), not O(n²).
 */
export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array>;
  #parts: Buffer[] = [];
  #length = 0;
  #done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  /** Ensure at least n bytes are buffered (fewer only at the end of input); returns them joined. */
  async fill(n: number): Promise<Buffer> {
    while (this.#length < n && !this.#done) {
      const r = await this.#it.next();
      if (r.done === true) this.#done = true;
      else if (r.value.length > 0) {
        this.#parts.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        this.#length += r.value.length;
      }
    }
    if (this.#parts.length > 1) this.#parts = [Buffer.concat(this.#parts, this.#length)];
    return this.#parts[0] ?? Buffer.alloc(0);
  }

  /** Remove and return the first n buffered bytes (call fill first). */
  take(n: number): Buffer {
    const all = this.#parts.length > 1 ? Buffer.concat(this.#parts, this.#length) : (this.#parts[0] ?? Buffer.alloc(0));
    const head = all.subarray(0, n);
    const rest = all.subarray(head.length);
    this.#parts = rest.length > 0 ? [rest] : [];
    this.#length = rest.length;
    return head;
  }

  /** Up to `max` bytes: whatever is buffered, else the next chunk. Empty at the end. */
  async chunk(max: number): Promise<Buffer> {
    if (this.#length === 0) await this.fill(1);
    return this.take(Math.min(max, this.#length));
  }

  /** Everything left, chunk by chunk. */
  async *rest(): AsyncGenerator<Uint8Array> {
    if (this.#length > 0) yield this.take(this.#length);
    for (;;) {
      const r = await this.#it.next();
      if (r.done === true) return;
      yield r.value;
    }
  }
}
