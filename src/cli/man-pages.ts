import type { Command } from 'commander';
import { CONFIG_KEYS, DEFAULT_CONFIG_FILE } from '../daemon/config.js';
import { fussyCleanProgram, fussyInstallProgram, fussyLinkTreeProgram, fussyPackProgram } from './compat.js';
import { VERSION } from './configure.js';
import { EXIT_STATUSES } from './exit-statuses.js';
import { fussydProgram } from './fussyd.js';
import { processIo } from './io.js';
import { commandDoc, renderMan, type ManPage } from './manual.js';
import { buildProgram } from './program.js';

const noop = (): void => undefined;

const EXIT = { title: 'Exit status', items: EXIT_STATUSES.map(([code, text]): [string, string] => [String(code), text.replaceAll('`', '')]) };
const COMPAT = ['fussy-pack(1)', 'fussy-install(1)', 'fussy-clean(1)', 'fussy-link-tree(1)'];

/**
 * Every man page of fussy, from the same commander definitions as `--help` (manual.ts): fussy(1)
 * with every command, the Fussy-compatible launchers (1), fussyd(8) with every option, and
 * fussyd.conf(5) with every key (the daemon's flags and keys are one table, CONFIG_KEYS).
 */
export function manPages(date: string): Array<{ file: string; text: string }> {
  const QUIET = processIo(); // the programs are built for their definitions only: nothing is written
  const page = (p: Omit<ManPage, 'version' | 'date'>): { file: string; text: string } => ({ file: `${p.name}.${p.section}`, text: renderMan({ ...p, version: VERSION, date }) });
  const compat = (name: string, program: Command, what: string): { file: string; text: string } =>
    page({ name, section: 1, summary: `${what} (Fussy-compatible)`, description: [`The command line of the 2012 Fussy tool of that name, run by fussy's own code: scripts and provisioning that call ${name} keep working.`], program: commandDoc(program), sections: [EXIT], seeAlso: ['fussy(1)'] });
  return [
    page({
      name: 'fussy',
      section: 1,
      summary: 'signed, deduplicated, crash-safe firmware upgrades',
      description: [
        'A build server packs a firmware directory into a signed, optionally encrypted .tar.gz.gpg (fussy pack). A device checks it against its own keyring, unpacks it into /opt/firmware/RELEASE next to the releases it has (identical files hard-linked), runs the firmware\'s .pre-install and .post-install hooks and switches an atomic current link; if anything fails, or the power does, it ends on the previous release or the factory failsafe.',
        'Every command takes --help, --json (one JSON object on stdout, progress as NDJSON on stderr) and -q, --quiet where it prints more than one line.',
      ],
      program: commandDoc(buildProgram(QUIET, noop)),
      sections: [EXIT, { title: 'Files', items: [['/opt/firmware', 'the target: releases, current, failsafe, .fussy/ (journal, history, state)'], ['/etc/fussy/keys', 'the device keyring'], ['~/.config/fussy/remote.json', "fussy remote's defaults: host, port, cert, key, ca"]] }],
      seeAlso: ['fussyd(8)', 'fussyd.conf(5)', ...COMPAT, 'gpg(1)'],
    }),
    compat('fussy-pack', fussyPackProgram(QUIET, noop), 'pack a firmware directory into a signed package'),
    compat('fussy-install', fussyInstallProgram(QUIET, noop), 'verify and install a firmware package'),
    compat('fussy-clean', fussyCleanProgram(QUIET, noop), 'remove old releases'),
    compat('fussy-link-tree', fussyLinkTreeProgram(QUIET, noop), 'link every file of a tree from another'),
    page({
      name: 'fussyd',
      section: 8,
      summary: 'the fussy device daemon',
      description: [
        'fussyd serves HTTPS with mandatory client certificates: stored scripts and their runs, data files, firmware upload and install, scheduled jobs (the operator\'s and the current firmware\'s etc/fussy/jobs.json), for clients whose certificate\'s CN has a role (viewer, operator, admin) in the roles file. fussy remote is its client.',
        `Every option is also a key of the configuration file (${DEFAULT_CONFIG_FILE}, fussyd.conf(5)); options win. The log is JSON lines on standard error (journald).`,
      ],
      program: commandDoc(fussydProgram(QUIET)),
      sections: [
        { title: 'Signals', items: [['SIGHUP', "read the roles file, the CRL and the current firmware's jobs file again"], ['SIGTERM, SIGINT', 'stop: no new runs; running ones are stopped and recorded interrupted; a running install completes or is refused; exit 0']] },
        { title: 'Files', items: [[DEFAULT_CONFIG_FILE, 'the configuration'], ['/var/lib/fussy', 'the state directory: scripts, data, runs, uploads, schedule.json, the audit log']] },
        EXIT,
      ],
      seeAlso: ['fussyd.conf(5)', 'fussy(1)'],
    }),
    page({
      name: 'fussyd.conf',
      section: 5,
      summary: "fussyd's configuration file",
      description: [
        'Lines of key = value; lines starting with # and blank lines are ignored. Every key is also an option of fussyd(8) (--key value), and options win. An unknown key, a key given twice or a value that does not parse stops fussyd with exit status 40, naming the file and the line.',
        'Sizes: 1048576, 64K, 64M, 2G (powers of 1024). Durations: 90, 90s, 15m, 2h, 1d. Paths are absolute. No quoting, and no comment after a value: a path may hold #.',
      ],
      sections: [{ title: 'Keys', items: Object.entries(CONFIG_KEYS).map(([name, key]): [string, string] => [name, key.help]) }],
      seeAlso: ['fussyd(8)', 'fussy(1)'],
    }),
  ];
}
