import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  lastLine: string;
}

/** Run a real launcher from bin/ as a child process. */
export async function cli(launcher: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [`${BIN}${launcher}.js`, ...args], {
    cwd: opts.cwd,
    env: opts.env,
    input: opts.input,
    reject: false,
    stdin: opts.input === undefined ? 'ignore' : undefined,
  });
  const stdout = String(r.stdout);
  const lines = stdout.trim().split('\n');
  return { exitCode: r.exitCode ?? -1, stdout, stderr: String(r.stderr), lastLine: lines[lines.length - 1] ?? '' };
}
