/**
 * Runs one install in a process of its own and prints its outcome and peak RSS (KiB) as JSON:
 * memory assertions need a process that ran nothing else. The peak is VmHWM from
 * /proc/self/status, the high-water mark of this process image: getrusage's ru_maxrss also
 * counts the parent's pages that the forked child held before exec (Linux keeps the larger).
 * Usage: node rss-child.js PACKAGE KEYRING TARGET
 */
import { readFileSync } from 'node:fs';
import { FussyError } from '../../src/errors.js';
import { install } from '../../src/ops/install.js';

const [pkg, keyring, target] = process.argv.slice(2) as [string, string, string];
let code = 'ok';
let message = '';
try {
  await install({ package: pkg, keyring, target, env: { PATH: process.env.PATH }, cwd: target, hookTimeoutMs: 600_000, owner: { asRoot: process.getuid?.() === 0, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } });
} catch (err) {
  code = err instanceof FussyError ? err.code : 'INTERNAL';
  message = (err as Error).message;
}
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
process.stdout.write(JSON.stringify({ code, message, maxRssKb: Number(hwm?.[1] ?? process.resourceUsage().maxRSS) }) + '\n');
