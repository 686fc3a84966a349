/**
 * fussyd for bench/daemon: throwaway certificates (the library's pkiInit / pkiIssue), a state
 * directory, target and roles file in a temp dir, `bin/fussyd` started the way systemd starts it
 * (the sh launcher, which execs node: the child's pid is node's), its memory read from
 * /proc/PID/status, and HTTPS requests over a kept-alive agent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { pkiInit, pkiIssue } from '../src/index.js';
import { repo } from './measure.js';

export interface Tls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface Fussyd {
  pid: number;
  port: number;
  tls: Tls;
  /** kB of a /proc/PID/status field (VmRSS, VmHWM). */
  kb: (field: 'VmRSS' | 'VmHWM') => number;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Certificates, configuration and a running fussyd in `dir`; `flags` are extra `--key value` pairs. */
export async function startFussyd(dir: string, flags: string[]): Promise<Fussyd> {
  const caDir = join(dir, 'ca');
  const ca = await pkiInit({ dir: caDir, name: 'bench CA' });
  const server = await pkiIssue({ dir: caDir, kind: 'server', name: 'localhost', sans: ['127.0.0.1'] });
  const client = await pkiIssue({ dir: caDir, kind: 'client', name: 'bench' });
  if (server.key === undefined || client.key === undefined) throw new Error('pkiIssue made no key');
  await mkdir(join(dir, 'target'));
  await writeFile(join(dir, 'roles.json'), JSON.stringify({ admin: ['bench'] }));
  const conf = join(dir, 'fussyd.conf');
  const lines = ['listen = 127.0.0.1:0', `cert = ${server.cert}`, `key = ${server.key}`, `client-ca = ${ca.cert}`, `crl = ${ca.crl}`, `roles = ${join(dir, 'roles.json')}`, `state-dir = ${join(dir, 'state')}`, `target = ${join(dir, 'target')}`];
  await writeFile(conf, lines.join('\n') + '\n');
  const child = spawn(join(repo, 'bin', 'fussyd'), ['--config', conf, ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"event":"listening".*?"port":(\d+)/.exec(err);
      if (m !== null) resolve(Number(m[1]));
    });
    child.once('exit', (code, signal) => reject(new Error(`fussyd ended (${code ?? signal}) before it listened: ${err}`)));
  });
  const pid = child.pid as number;
  const tls = { ca: readFileSync(ca.cert), cert: readFileSync(client.cert), key: readFileSync(client.key) };
  return {
    pid,
    port,
    tls,
    kb: (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]),
    stderr: () => err,
    stop: () => stop(child),
  };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** A kept-alive agent with one socket: every request of its user goes over one TLS connection. */
export function oneConnection(tls: Tls): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1, ca: tls.ca, cert: tls.cert, key: tls.key });
}

export interface Answer {
  status: number;
  body: string;
}

/** One request over `agent`; rejects on a socket error only. */
export function call(port: number, agent: Agent, method: string, path: string, body?: { type: string; data: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': body.type, 'content-length': Buffer.byteLength(body.data) };
    const req = request({ host: '127.0.0.1', servername: 'localhost', port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body?.data);
  });
}

/**
 * `POST /v1/runs` of `script` and its NDJSON read to the end; throws unless the last line is a
 * result of a run that exited 0 and printed `ok`.
 */
export async function exec(port: number, agent: Agent, script: string): Promise<void> {
  const a = await call(port, agent, 'POST', '/v1/runs', { type: 'application/json', data: JSON.stringify({ script }) });
  if (a.status !== 200) throw new Error(`POST /v1/runs: ${a.status} ${a.body}`);
  const last = JSON.parse(a.body.trimEnd().split('\n').pop() ?? '{}') as { type?: string; status?: string; exitCode?: number; stdout?: { head?: string } };
  if (last.type !== 'result' || last.status !== 'exited' || last.exitCode !== 0 || last.stdout?.head !== 'ok\n') throw new Error(`POST /v1/runs: not an ok result: ${a.body}`);
}

/** Nearest-rank percentile of `xs` (ms), `p` in 0..100. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
