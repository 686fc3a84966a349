import { execa } from 'execa';

export interface Measured {
  seconds: number;
  /** Peak RSS in MB of the largest process (a pipeline's biggest member). */
  rssMb: number;
}

/**
 * Run a command line (through sh, so pipelines work) and measure wall time and the peak RSS of
 * its largest descendant, via getrusage(RUSAGE_CHILDREN) in a tiny python3 wrapper: node cannot
 * read a child's rusage, and python3 is already needed by make-firmware.
 */
export async function measure(shellCommand: string, opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Measured> {
  const wrapper = [
    'import resource, subprocess, sys, time',
    't = time.monotonic()',
    'rc = subprocess.call(["sh", "-c", sys.argv[1]], stdout=subprocess.DEVNULL)',
    'dt = time.monotonic() - t',
    'print(rc, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)',
  ].join('\n');
  const r = await execa('python3', ['-c', wrapper, shellCommand], { cwd: opts.cwd, env: opts.env });
  const [rc, dt, kb] = String(r.stdout).trim().split(' ');
  if (rc !== '0') throw new Error(`benchmark command failed (exit ${rc}): ${shellCommand}\n${String(r.stderr)}`);
  return { seconds: Number(dt), rssMb: Number(kb) / 1024 };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}
