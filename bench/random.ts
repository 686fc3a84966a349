/** A seeded pseudo-random source: the same seed gives the same sequence on every machine. */
export interface Random {
  /** A uint32. */
  u32: () => number;
  /** A float in [0, 1). */
  next: () => number;
  /** An integer in [lo, hi], both included. */
  int: (lo: number, hi: number) => number;
  pick: <T>(xs: readonly T[]) => T;
  /** `n` bytes. */
  bytes: (n: number) => Buffer;
  /** `k` distinct elements of `xs` (a partial Fisher-Yates shuffle of a copy). */
  sample: <T>(xs: readonly T[], k: number) => T[];
}

/**
 * xoshiro128** (Blackman and Vigna, https://prng.di.unimi.it/), its state seeded by splitmix32.
 * Not cryptographic: fast and reproducible, which is all a benchmark tree needs.
 */
export function seededRandom(seed: number): Random {
  let z = seed >>> 0;
  const splitmix = (): number => {
    z = (z + 0x9e3779b9) >>> 0;
    let t = z;
    t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
    t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
  const s = Uint32Array.from([splitmix(), splitmix(), splitmix(), splitmix()]);
  const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));
  const u32 = (): number => {
    const s0 = s[0] as number;
    const s1 = s[1] as number;
    const s2 = s[2] as number;
    const s3 = s[3] as number;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s[2] = s2 ^ s0;
    s[3] = s3 ^ s1;
    s[1] = s1 ^ (s2 ^ s0);
    s[0] = s0 ^ (s3 ^ s1);
    s[2] = (s[2] as number) ^ t;
    s[3] = rotl(s[3] as number, 11);
    return result;
  };
  const next = (): number => (u32() * 2 ** 21 + (u32() >>> 11)) / 2 ** 53;
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    u32,
    next,
    int,
    pick: (xs) => xs[Math.floor(next() * xs.length)] as (typeof xs)[number],
    bytes: (n) => {
      const words = new Uint32Array(Math.ceil(n / 4));
      for (let i = 0; i < words.length; i++) words[i] = u32();
      return Buffer.from(words.buffer, 0, n);
    },
    sample: (xs, k) => {
      const a = [...xs];
      for (let i = 0; i < k; i++) {
        const j = int(i, a.length - 1);
        [a[i], a[j]] = [a[j] as (typeof a)[number], a[i] as (typeof a)[number]];
      }
      return a.slice(0, k);
    },
  };
}
