import { resolve } from 'node:path';
import { Command } from 'commander';
import { FussyError, type TargetStatus } from '../index.js';
import { RemoteClient } from '../remote/client.js';
import { getDataToFile, listData, moveData, putData, readData, removeData } from '../remote/data-files.js';
import { getScriptToFile, listScripts, putScript, readScript, removeScript } from '../remote/scripts.js';
import { DEFAULT_PORT, readRemoteDefaults, remoteConfigPath } from '../remote/remote-config.js';
import { parseHostList, type RemoteHost } from '../remote/hosts.js';
import { readSettingFile } from '../daemon/read-setting-file.js';
import { configure } from './configure.js';
import { formatBytes, type Io } from './io.js';
import { integer } from './parse.js';
import type { CommandResult } from './render.js';
import { addRunCommands } from './remote-runs.js';
import { statusLines } from './status-command.js';
import { addInstallCommand } from './remote-install.js';
import { addCronCommands, scheduleLines, type ScheduleStatus } from './remote-cron.js';
import { onHosts, type Tls, type Where } from './remote-hosts.js';

interface RemoteFlags {
  host?: string;
  port?: number;
  parallel?: number;
  cert?: string;
  key?: string;
  ca?: string;
  json?: boolean;
}

interface SubFlags {
  json?: boolean;
  data?: boolean;
  name?: string;
  overwrite?: boolean;
  output?: string;
}

type Done = (r: CommandResult) => void;

/**
 * `fussy remote [--host H[,H2...]] [--parallel N] [--port P] [--cert PEM --key PEM --ca PEM]
 * [--json] COMMAND` (docs/commands.md): the client of fussyd. Defaults from remote.json
 * (remote/remote-config.ts), flags win. Exit statuses: the device's refusal's (2 for a refused
 * request), 77 for a denied role or a refused certificate, 69 when the device cannot be reached
 * or not trusted. Several hosts: remote-hosts.ts (a line a host; the first failing host's status).
 */
export function remoteCommand(io: Io, done: Done): Command {
  const remote = new Command('remote')
    .description('talk to fussyd on a device: scripts, runs and their history, data files, status, whoami (docs/daemon.md)')
    .option('--host <hosts>', 'the device (name or address in its certificate; NAME:PORT for another port), or several: H1,H2,...')
    .option('--parallel <n>', 'with several hosts, how many at once (default 8)', integer('--parallel', 1, 1024))
    .option('--port <port>', `fussyd's port (default ${DEFAULT_PORT})`, integer('--port', 1, 65535))
    .option('--cert <pem>', "this client's certificate")
    .option('--key <pem>', "this client's key")
    .option('--ca <pem>', "the CA the device's certificate must chain to")
    .option('--json', 'print one JSON object');
  const sub = (name: string, description: string): Command => {
    const cmd = configure(new Command(name), io).description(description).option('--json', 'print one JSON object');
    remote.addCommand(cmd);
    return cmd;
  };
  const run =
    <F extends { json?: boolean }>(fn: (c: RemoteClient, f: F, json: boolean, at: Where) => Promise<CommandResult>, o: { oneHost?: string } = {}) =>
    async (f: F) => {
      const flags = remote.opts<RemoteFlags>();
      const json = flags.json === true || f.json === true;
      const { hosts, tls } = await targets(io, flags);
      const [first] = hosts;
      if (first !== undefined && hosts.length === 1) {
        const client = new RemoteClient({ ...tls, host: first.host, port: first.port });
        try {
          done(await fn(client, f, json, { io, label: first.label }));
        } finally {
          client.close();
        }
        return;
      }
      if (o.oneHost !== undefined) throw new FussyError('USAGE', `${o.oneHost}: one --host at a time`, { hint: 'name one host, or use get -o FILE with {host} in FILE' });
      done(await onHosts(io, hosts, { tls, parallel: flags.parallel ?? 8, json }, (c, at) => fn(c, f, json, at)));
    };
  sub('put', 'store a local FILE on the device as a script (admin), or as a data file with --data')
    .argument('<file>')
    .option('--data', 'a data file, not a script')
    .option('--name <name>', 'its name on the device (default: the base name of FILE; a script\'s extension is its kind)')
    .option('--overwrite', 'replace a data file of that name (a script name always points at the newest)')
    .action((file: string, f: SubFlags) =>
      run(async (c, _f, _json, { io }) => {
        if (f.data !== true) {
          if (f.overwrite === true) throw new FussyError('USAGE', '--overwrite is for data files: a script name always points at what was stored last');
          const r = await putScript(c, resolve(io.cwd, file), f.name);
          return { json: { host: c.host, ...r }, summary: [`stored script ${r.name} (${formatBytes(r.size)}) on ${c.host}`], stdoutLine: r.id };
        }
        const r = await putData(c, resolve(io.cwd, file), { name: f.name, overwrite: f.overwrite });
        return { json: { host: c.host, ...r }, summary: [`stored ${r.name} (${formatBytes(r.size)}) on ${c.host}`] };
      })(f),
    );
  sub('ls', 'list the scripts (name, id, size, updated, by whom), or the data files with --data')
    .option('--data', 'data files')
    .action((f: SubFlags) =>
      run(async (c, _f, json, { io }) => {
        if (f.data !== true) {
          const scripts = await listScripts(c);
          if (!json) for (const e of scripts) io.stdout.write(`${e.name.padEnd(24)}  ${e.id.slice(0, 12)}  ${String(e.size).padStart(9)}  ${e.updated}  ${e.by.cn}\n`);
          return { json: { host: c.host, scripts }, summary: [] };
        }
        const files = await listData(c);
        if (!json) for (const e of files) io.stdout.write(`${String(e.size).padStart(12)}  ${e.mtime}  ${e.name}\n`);
        return { json: { host: c.host, files }, summary: [] };
      })(f),
    );
  sub('get', 'copy a script (NAME or id) or a data file (--data) from the device to -o FILE (default: standard output)')
    .argument('<name>')
    .option('--data', 'a data file')
    .option('-o, --output <file>', 'write it here (replaced when complete); {host} in FILE is the host as named in --host')
    .action((name: string, f: SubFlags) =>
      run(
        async (c, _f, json, { io, label }) => {
          if (f.output === undefined) {
            if (f.data === true) return cat(c, name, json);
            if (json) throw new FussyError('USAGE', 'the bytes go to standard output: --json does not apply (use -o FILE)');
            await readScript(c, name, io.stdout);
            return { json: {}, summary: [] };
          }
          const out = resolve(io.cwd, f.output.replaceAll('{host}', label));
          const size = f.data === true ? await getDataToFile(c, name, out) : await getScriptToFile(c, name, out);
          return { json: { host: c.host, name, path: out, size }, summary: [`wrote ${out} (${formatBytes(size)})`] };
        },
        { oneHost: f.output === undefined ? 'get without -o writes to standard output' : f.output.includes('{host}') ? undefined : 'get -o FILE without {host} in FILE would write every host\'s copy to one file' },
      )(f),
    );
  sub('cat', 'print a data file on standard output')
    .argument('<name>')
    .action((name: string, f: SubFlags) => run((c, _f, json) => cat(c, name, json), { oneHost: 'cat writes to standard output' })(f));
  const cat = async (c: RemoteClient, name: string, json: boolean): Promise<CommandResult> => {
    if (json) throw new FussyError('USAGE', 'the bytes go to standard output: --json does not apply (use -o FILE)');
    await readData(c, name, io.stdout);
    return { json: {}, summary: [] };
  };
  sub('mv', 'rename a data file (no overwrite unless --overwrite)')
    .argument('<src>')
    .argument('<dst>')
    .option('--overwrite', 'replace DST')
    .action((src: string, dst: string, f: SubFlags) =>
      run(async (c) => {
        await moveData(c, src, dst, f.overwrite === true);
        return { json: { host: c.host, from: src, to: dst }, summary: [`moved ${src} to ${dst} on ${c.host}`] };
      })(f),
    );
  sub('rm', 'remove a script name (admin; its ids stay for the history), or a data file with --data')
    .argument('<name>')
    .option('--data', 'a data file')
    .action((name: string, f: SubFlags) =>
      run(async (c) => {
        if (f.data !== true) {
          const { id } = await removeScript(c, name);
          return { json: { host: c.host, removed: name, id }, summary: [`removed script ${name} (${id.slice(0, 12)} stays runnable by id) on ${c.host}`] };
        }
        await removeData(c, name);
        return { json: { host: c.host, removed: name }, summary: [`removed ${name} on ${c.host}`] };
      })(f),
    );
  sub('status', "the device's firmware status (fussy status there)").action((f: SubFlags) =>
    run(async (c, _f, json, { io }) => {
      const s = (await c.json('GET', '/v1/status')) as unknown as TargetStatus & { schedule?: ScheduleStatus };
      if (!json) io.stdout.write([...statusLines(s), ...scheduleLines(s.schedule)].join('\n') + '\n');
      return { json: { host: c.host, status: s }, summary: [] };
    })(f),
  );
  sub('whoami', 'who the device takes this certificate for, and its roles').action((f: SubFlags) =>
    run(async (c, _f, json, { io }) => {
      const w = await c.json('GET', '/v1/whoami');
      const roles = Array.isArray(w.roles) ? (w.roles as string[]) : [];
      if (!json) io.stdout.write(`cn: ${String(w.cn)}\nfingerprint: ${String(w.fingerprint)}\nserial: ${String(w.serial)}\nissuer: ${String(w.issuer)}\nroles: ${roles.length === 0 ? '(none)' : roles.join(', ')}\n`);
      return { json: { host: c.host, ...w }, summary: [] };
    })(f),
  );
  addRunCommands(sub, run);
  addInstallCommand(sub, run);
  addCronCommands(sub, run, io);
  return remote;
}

/** The hosts and the TLS material from the flags, else remote.json; the PEM files are read here, once. */
async function targets(io: Io, f: RemoteFlags): Promise<{ hosts: RemoteHost[]; tls: Tls }> {
  const file = remoteConfigPath(io.env);
  const d = await readRemoteDefaults(file);
  const host = f.host ?? d.host;
  if (host === undefined) throw new FussyError('USAGE', 'no device named: give --host H (or "host" in remote.json)');
  const hosts = parseHostList(host, f.port ?? d.port ?? DEFAULT_PORT);
  const pem = (flag: string | undefined, saved: string | undefined, what: string): Buffer => {
    const path = flag === undefined ? saved : resolve(io.cwd, flag);
    if (path === undefined) throw new FussyError('USAGE', `no ${what}: give --${what} PEM (or "${what}" in ${file ?? 'remote.json'})`);
    const data = readSettingFile(path, 'TLS_UNUSABLE', what === 'ca' ? 'CA certificate' : `client ${what}`);
    if (data === undefined) throw new FussyError('TLS_UNUSABLE', `${path} (--${what}) does not exist`, { details: { path } });
    return data;
  };
  return { hosts, tls: { cert: pem(f.cert, d.cert, 'cert'), key: pem(f.key, d.key, 'key'), ca: pem(f.ca, d.ca, 'ca') } };
}
