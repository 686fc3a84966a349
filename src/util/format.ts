const MB = 1024 * 1024;

/** A size for people (binary units, as df -h prints them); messages keep the exact bytes in `details`. */
export function formatBytes(n: number): string {
  if (n >= 10 * MB) return `${(n / MB).toFixed(0)} MiB`;
  if (n >= MB) return `${(n / MB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
