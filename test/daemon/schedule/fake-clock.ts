import type { SchedulerClock } from '../../../src/daemon/schedule/loop.js';

/** A wall clock and timers the test moves: `advance` is time passing, `jump` a clock step (timers, on the monotonic clock, do not move). */
export class FakeClock implements SchedulerClock {
  wall: number;
  mono = 0;
  timers: Array<{ at: number; fn: () => void; id: number }> = [];
  #id = 0;
  constructor(iso: string) {
    this.wall = Date.parse(iso);
  }
  now = (): number => this.wall;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const t = { at: this.mono + ms, fn, id: ++this.#id };
    this.timers.push(t);
    return t;
  };
  clearTimeout = (t: unknown): void => {
    this.timers = this.timers.filter((x) => x !== t);
  };
  jump(ms: number): void {
    this.wall += ms;
  }
  /** Let `ms` pass, running each timer at its time (and the promises it settles). */
  async advance(ms: number): Promise<void> {
    const end = this.mono + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.timers[0];
      if (t === undefined || t.at > end) break;
      this.timers.shift();
      this.wall += t.at - this.mono;
      this.mono = t.at;
      t.fn();
      await settle();
    }
    this.wall += end - this.mono;
    this.mono = end;
    await settle();
  }
}

export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
}
