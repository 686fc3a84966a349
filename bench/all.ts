/**
 * `npm run bench`: bench/pack then bench/install, each given this command line. npm appends
 * `npm run bench -- ARGS` to the end of the script, so `node pack.js && node install.js` would
 * have handed ARGS (a short run's `--mb 2 --big-mb 0 --repeat 1`) to the install bench only.
 */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

for (const bench of ['pack.js', 'install.js']) {
  const r = await execa(process.execPath, [fileURLToPath(new URL(bench, import.meta.url)), ...process.argv.slice(2)], { stdio: 'inherit', reject: false });
  if (r.exitCode !== 0) {
    process.exitCode = r.exitCode ?? 1;
    break;
  }
}
