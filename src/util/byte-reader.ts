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

  /**
   * Ensure at least n bytes are buffered (fewer only at the end of input); returns a buffer that
   * starts with them (joined only when they span chunks).
   */
  async fill(n: number): Promise<Buffer> {
    while (this.#length < n && !this.#done) await this.#pull();
    const first = this.#parts[0];
    if (first !== undefined && first.length >= Math.min(n, this.#length)) return first;
    if (this.#parts.length > 1) this.#parts = [Buffer.concat(this.#parts, this.#length)];
    return this.#parts[0] ?? Buffer.alloc(0);
  }

  async #pull(): Promise<void> {
    const r = await this.#it.next();
    if (r.done === true) this.#done = true;
    else if (r.value.length > 0) {
      this.#parts.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
      this.#length += r.value.length;
    }
  }

  /** Move the next n bytes into dst (no joining of chunks); returns how many there were. */
  async copyInto(dst: Buffer, n: number): Promise<number> {
    let done = 0;
    while (done < n) {
      if (this.#length === 0) {
        if (this.#done) break;
        await this.#pull();
        continue;
      }
      const head = this.#parts[0] as Buffer;
      const k = Math.min(head.length, n - done);
      head.copy(dst, done, 0, k);
      done += k;
      if (k === head.length) this.#parts.shift();
      else this.#parts[0] = head.subarray(k);
      this.#length -= k;
    }
    return done;
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
