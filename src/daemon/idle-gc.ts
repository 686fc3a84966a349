/**
 * A full garbage collection once fussyd goes idle (docs/performance.md, "fussyd"). Under load V8
 * grows its heap and keeps the pages when the load ends: after 100 clients, 15 MB of V8 pages held
 * 6.8 MB of live objects, and nothing gave them back within a minute of idleness (fussyd's RSS
 * stayed at 62-63 MB, the goal being 60). One full collection when the last connection has been
 * closed for `delayMs` returns them (~55 MB). bin/fussyd runs node with --expose-gc for this;
 * without it (fussyd started otherwise) this does nothing.
 */
export class IdleCollector {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly delayMs = 5000,
    private readonly gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc,
  ) {}

  /** A connection came: no collection while it is open. */
  busy(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The last connection closed: collect once, `delayMs` from now, unless one comes meanwhile. */
  idle(): void {
    if (this.gc === undefined) return;
    this.busy();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.gc?.();
    }, this.delayMs).unref();
  }
}

/** fussyd's open connections: each removed as it closes; the last one's close arms the collection. */
export class Connections<S extends { once(event: 'close', listener: () => void): unknown }> implements Iterable<S> {
  readonly #open = new Set<S>();

  constructor(private readonly collector = new IdleCollector()) {}

  add(socket: S): void {
    this.#open.add(socket);
    this.collector.busy();
    socket.once('close', () => {
      if (this.#open.delete(socket) && this.#open.size === 0) this.collector.idle();
    });
  }

  get size(): number {
    return this.#open.size;
  }

  [Symbol.iterator](): Iterator<S> {
    return this.#open.values();
  }
}
