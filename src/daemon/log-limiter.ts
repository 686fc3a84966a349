/**
 * At most `burst` lines of one kind per `windowMs` reach the daemon's log; past that they are
 * counted, and the count is logged once when the window ends. For what clients without a
 * certificate can cause at will (a refused handshake): a flood of them must not flood the
 * journal or hide everything else in it.
 */
export class LogLimiter {
  #start = Number.NEGATIVE_INFINITY;
  #passed = 0;
  #dropped = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly burst: number,
    private readonly windowMs: number,
    private readonly onDropped: (count: number, windowMs: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether this line may be logged; if not, it is counted. */
  allow(): boolean {
    const t = this.now();
    if (t - this.#start >= this.windowMs) {
      this.flush();
      this.#start = t;
      this.#passed = 0;
    }
    if (this.#passed < this.burst) {
      this.#passed++;
      return true;
    }
    this.#dropped++;
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.flush(), Math.max(0, this.#start + this.windowMs - t));
      this.#timer.unref();
    }
    return false;
  }

  /** Log the count of lines left out, if any (the window's end, or fussyd stopping). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dropped === 0) return;
    const n = this.#dropped;
    this.#dropped = 0;
    this.onDropped(n, this.windowMs);
  }
}
