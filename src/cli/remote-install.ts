import { resolve } from 'node:path';
import { remoteInstall } from '../remote/install.js';
import { describe, installSummary } from './install-command.js';
import { formatBytes, Reporter } from './io.js';

interface InstallFlags {
  json?: boolean;
  quiet?: boolean;
}

import type { Run, Sub } from './remote-runs.js';

/**
 * `fussy remote install PACKAGE` (docs/commands.md): the package goes to the device (what it
 * holds already is not sent again) and is installed there by the code of `fussy install`. It
 * prints what `fussy install` prints (phases, hook output, the summary; the release path last on
 * stdout; with --json NDJSON events on stderr and one JSON object on stdout) and exits with the
 * status `fussy install` gave on the device (0, 3, 4, 20, 21, 40, 75, ...), or fussy remote's
 * own (69 unreachable, 77 role denied).
 */
export function addInstallCommand(sub: Sub, run: Run): void {
  sub('install', 'upload a package (resumable) and install it on the device as fussy install does (operator; the device keyring decides)')
    .argument('<package>', 'the .tar.gz.gpg or .tar.gz.asc file')
    .option('-q, --quiet', 'print only the release path')
    .action((pkg: string, f: InstallFlags) =>
      run<InstallFlags>(async (c, _f, json, { io }) => {
        const reporter = new Reporter(io, { json, quiet: f.quiet });
        try {
          const r = await remoteInstall(c, resolve(io.cwd, pkg), {
            onUpload: (have, size) => reporter.event({ type: 'progress', phase: 'upload', done: have, total: size }),
            onEvent: (e) => {
              reporter.event(e);
              const line = describe(e);
              if (line !== undefined) reporter.info(line);
            },
          });
          reporter.clearBar();
          const sent = r.resumedFrom === 0 ? `sent ${formatBytes(r.sent)} to ${c.host}` : `sent ${formatBytes(r.sent)} to ${c.host}, which held the first ${formatBytes(r.resumedFrom)} already`;
          return {
            json: { host: c.host, sha256: r.sha256, size: r.size, resumedFrom: r.resumedFrom, sent: r.sent, ...r.result },
            summary: [sent, installSummary(r.result)],
            stdoutLine: r.result.path,
          };
        } finally {
          reporter.clearBar();
        }
      })(f),
    );
}
