/** The scheduler's clock: the wall clock and timers, injected so that tests move time themselves (test/daemon/schedule/fake-clock.ts). */
export interface SchedulerClock {
  /** The wall clock, ms since the epoch (Date.now). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
};
