/**
 * Runs one install in a process of its own and prints its outcome and peak RSS (getrusage
 * ru_maxrss, KiB) as JSON: memory assertions need a process that ran nothing else.
 * Usage: node rss-child.js PACKAGE KEYRING TARGET
 */
import { FussyError } from '../../src/errors.js';
import { install } from '../../src/install/install.js';

const [pkg, keyring, target] = process.argv.slice(2) as [string, string, string];
let code = 'ok';
let message = '';
try {
  await install({ package: pkg, keyring, target, env: { PATH: process.env.PATH }, cwd: target, owner: { asRoot: process.getuid?.() === 0, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } });
} catch (err) {
  code = err instanceof FussyError ? err.code : 'INTERNAL';
  message = (err as Error).message;
}
process.stdout.write(JSON.stringify({ code, message, maxRssKb: process.resourceUsage().maxRSS }) + '\n');
