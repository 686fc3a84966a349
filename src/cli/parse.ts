import { InvalidArgumentError } from 'commander';

/** commander helper: repeatable option. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function integer(name: string, min = 0, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} takes a whole number, not "${v}"`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`);
    return n;
  };
}
