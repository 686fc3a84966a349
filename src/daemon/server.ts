import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { FussyError, isErrno } from '../errors.js';
import type { AuditLog } from './audit.js';
import { decide, denial, identityOf, parseRoles, type Identity, type RoleTable } from './auth.js';
import { ChangeWatch } from './file-watch.js';
import { LogLimiter } from './log-limiter.js';
import type { DaemonConfig } from './config.js';
import type { DataStore } from './data.js';
import { sendError } from './http-io.js';
import { requireSettingFile } from './read-setting-file.js';
import { buildRouter, type Ctx } from './routes.js';
import { closeParts, openParts, type DaemonParts, type PartsOptions } from './parts.js';
import type { RunEngine } from './runs/engine.js';
import type { Scheduler } from './schedule/scheduler.js';
import { Connections } from './idle-gc.js';
import type { ScriptStore } from './scripts.js';
import { loadTlsMaterial, MIN_TLS } from './tls-material.js';
import type { UploadService } from './upload-service.js';

/** Refused handshakes logged per window; past that, one line with their count (docs/security.md). */
const REFUSALS_LOGGED = 20;
const REFUSAL_WINDOW_MS = 60_000;

/** One line of the daemon's log (JSON on stderr for journald, from the CLI). */
export type Log = (event: Record<string, unknown>) => void;

export interface DaemonOptions {
  log?: Log;
  now?: () => Date;
  /** How often the roles file and the CRL are stat'ed for changes (2000 ms). */
  watchIntervalMs?: number;
  /** Run engine and scheduler settings past the configuration (tests: a shorter drain or grace, a clock). */
  engine?: PartsOptions['engine'];
  schedule?: PartsOptions['schedule'];
}

/**
 * fussyd's server (docs/daemon.md): HTTPS with mandatory client certificates, a route table,
 * one authorization decision per request (also on a kept-alive connection) against the roles
 * and revoked serials as they are now, an audit line for each. Bounds: max-connections open
 * sockets (more are closed at accept), a handshake, the headers and the whole request each in
 * their time, idle sockets closed, header bytes capped, bodies capped while they stream.
 */
export class Daemon {
  readonly #config: DaemonConfig;
  readonly #log: Log;
  readonly #server: Server;
  readonly #data: DataStore;
  readonly #audit: AuditLog;
  readonly #scripts: ScriptStore;
  readonly #engine: RunEngine;
  readonly #uploads: UploadService;
  readonly #scheduler: Scheduler;
  readonly #router = buildRouter();
  readonly #watch: ChangeWatch;
  readonly #pruner: NodeJS.Timeout;
  readonly #refusals: LogLimiter; // refused handshakes: REFUSALS_LOGGED lines a window, then their count
  readonly #sockets = new Connections<TLSSocket>();
  /** Handlers still answering (close lets them finish their last line). */
  readonly #inflight = new Set<Promise<void>>();
  #roles: RoleTable;
  #revoked: Set<string>;

  private constructor(config: DaemonConfig, log: Log, parts: DaemonParts & { roles: RoleTable; revoked: Set<string>; server: Server; watch: ChangeWatch }) {
    this.#config = config;
    this.#log = log;
    this.#roles = parts.roles;
    this.#revoked = parts.revoked;
    this.#data = parts.data;
    this.#audit = parts.audit;
    this.#scripts = parts.scripts;
    this.#engine = parts.engine;
    this.#uploads = parts.uploads;
    this.#scheduler = parts.scheduler;
    this.#server = parts.server;
    this.#watch = parts.watch;
    this.#pruner = parts.pruner;
    this.#refusals = new LogLimiter(REFUSALS_LOGGED, REFUSAL_WINDOW_MS, (count, windowMs) => log({ event: 'tls-refused-not-logged', count, windowMs }));
  }

  /**
   * Load the TLS files and roles (a problem is a FussyError naming the file), open the state
   * (data, scripts, the run engine: runs a previous fussyd left are ended abandoned and logged),
   * listen.
   */
  static async start(config: DaemonConfig, o: DaemonOptions = {}): Promise<Daemon> {
    const log = o.log ?? (() => undefined);
    const now = o.now ?? (() => new Date());
    let reload = (_file: string): void => undefined;
    const watch = new ChangeWatch([config.roles, ...(config.crl === undefined ? [] : [config.crl])], (file) => reload(file));
    for (const f of watch.files) watch.mark(f);
    const tls = loadTlsMaterial(config);
    const roles = parseRoles(requireSettingFile(config.roles, 'ROLES_INVALID', 'roles file').toString('utf8'), config.roles);
    const parts = await openParts(config, { log, now, engine: o.engine, schedule: { watchIntervalMs: o.watchIntervalMs, ...o.schedule } });
    const server = createServer({
      ...tls.context,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: MIN_TLS,
      handshakeTimeout: config.handshakeTimeoutMs,
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
    });
    const d = new Daemon(config, log, { ...parts, roles, revoked: tls.revoked, server, watch });
    reload = (file) => d.reload(`${file} changed`);
    server.maxConnections = config.maxConnections;
    server.timeout = config.idleTimeoutMs;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const handled = d.#handle(req, res);
      d.#inflight.add(handled);
      void handled.finally(() => d.#inflight.delete(handled));
    });
    // A refused handshake has no identity: the log names the remote address, taken at accept
    // (the TLS socket is destroyed by then; `_parent` is its TCP socket, node's long-standing field).
    const remotes = new WeakMap<Socket, string>();
    server.on('connection', (raw: Socket) => remotes.set(raw, `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket & { _parent?: Socket | null }) => {
      if (!d.#refusals.allow()) return;
      const raw = socket._parent;
      log({ event: 'tls-refused', remote: (raw === null || raw === undefined ? undefined : remotes.get(raw)) ?? socket.remoteAddress ?? 'unknown', error: err.code ?? err.message });
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      // No renegotiation (TLS 1.2 allows a client to ask): it is a CPU-exhaustion lever, and a
      // connection keeps the certificate it was authorized with (auth.ts caches its identity).
      socket.disableRenegotiation();
      d.#sockets.add(socket); // removed as it closes; the last close arms one garbage collection (idle-gc.ts)
    });
    server.on('drop', (c: { remoteAddress?: string }) => log({ event: 'connection-dropped', remote: c.remoteAddress, reason: 'max-connections' }));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await closeParts(parts);
      if (!isErrno(err, 'EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES')) throw err;
      throw new FussyError('SETUP', `cannot listen on ${config.listen.host}:${config.listen.port}: ${err.code}`, { cause: err, hint: err.code === 'EADDRINUSE' ? 'another program (another fussyd?) listens there; stop it or change listen' : 'check listen in fussyd.conf', details: { listen: config.listen } });
    }
    watch.start(o.watchIntervalMs ?? 2000);
    parts.scheduler.start();
    log({ event: 'listening', address: d.address.address, port: d.address.port, stateDir: config.stateDir });
    return d;
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  /**
   * Re-read the roles file and the CRL (SIGHUP, or a watched file changed). A file that does not
   * parse keeps the one in use and is logged. A CRL that gains a serial closes that
   * certificate's open connections; the per-request check refuses them meanwhile anyway.
   * `firmware` (SIGHUP): the current release's jobs file is read again too.
   */
  reload(why: string, o: { firmware?: boolean } = {}): void {
    for (const f of this.#watch.files) this.#watch.mark(f);
    if (o.firmware === true) this.#scheduler.checkCurrent(why); // the firmware's jobs read again
    try {
      this.#roles = parseRoles(requireSettingFile(this.#config.roles, 'ROLES_INVALID', 'roles file').toString('utf8'), this.#config.roles);
      this.#log({ event: 'roles-reloaded', why });
    } catch (err) {
      if (!(err instanceof FussyError)) throw err;
      this.#log({ event: 'roles-kept', why, error: err.code, message: err.message });
    }
    if (this.#config.crl === undefined) return;
    try {
      const tls = loadTlsMaterial(this.#config);
      this.#server.setSecureContext(tls.context);
      this.#revoked = tls.revoked;
      let closed = 0;
      for (const socket of this.#sockets) {
        const id = identityOf(socket);
        if (id !== undefined && tls.revoked.has(id.serial)) {
          socket.destroy();
          closed++;
        }
      }
      this.#log({ event: 'crl-reloaded', why, revoked: tls.revoked.size, closed });
    } catch (err) {
      if (!(err instanceof FussyError)) throw err;
      this.#log({ event: 'crl-kept', why, error: err.code, message: err.message });
    }
  }

  /**
   * Stop listening; cancel a running install and wait for it (a refusal before the switch, completed
   * after it: its client still gets the outcome); stop the runs (recorded interrupted, their groups
   * killed); close every connection, close the state.
   */
  async close(): Promise<void> {
    this.#watch.stop();
    clearInterval(this.#pruner);
    this.#refusals.flush(); // the count of refusals not logged in this window is not lost
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#uploads.stop();
    this.#scheduler.quiesce(); // no new firings; the runs in progress end with the engine's
    // Runs first, connections after: a client waiting on a run gets its `interrupted` result.
    const { running, queued } = this.#engine.snapshot();
    if (running.length + queued.length > 0) this.#log({ event: 'runs-stopping', running, queued });
    await this.#engine.close();
    await this.#scheduler.stop(); // the jobs' positions and streaks written
    await Promise.race([Promise.allSettled(this.#inflight), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    for (const socket of this.#sockets) socket.destroy();
    this.#server.closeAllConnections();
    await closed;
    await this.#audit.close();
    this.#data.close();
    this.#uploads.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket as TLSSocket;
    const remote = socket.remoteAddress ?? '';
    const id = identityOf(socket);
    if (id === undefined) {
      // Not reached with rejectUnauthorized; should it ever be, nothing is served.
      sendError(res, new FussyError('CERT_REFUSED', 'no verified client certificate'), true);
      return;
    }
    let match;
    try {
      match = this.#router.match(req.method ?? '', req.url ?? '');
    } catch (err) {
      await this.#audited({ id, remote, action: 'request', resource: req.url ?? '', decision: 'deny', reason: err instanceof FussyError ? err.code : 'INTERNAL' });
      sendError(res, err, !req.complete);
      return;
    }
    const { route, params, query, resource } = match;
    const d = decide(id, route.need, this.#roles, this.#revoked);
    await this.#audited({ id, remote, action: route.action, resource, decision: d.allowed ? 'allow' : 'deny', reason: d.reason });
    if (!d.allowed) {
      sendError(res, denial(id, route.need, d, route.action), !req.complete || d.reason === 'CERT_REFUSED');
      return;
    }
    const note = (event: string, detail: Record<string, unknown>): Promise<void> => this.#noted({ id, remote, action: route.action, resource }, event, detail);
    const ctx: Ctx = { req, res, id, roles: d.roles, params, query, config: this.#config, data: this.#data, scripts: this.#scripts, engine: this.#engine, note, log: this.#log, uploads: this.#uploads, scheduler: this.#scheduler };
    try {
      await route.handle(ctx);
    } catch (err) {
      if (!(err instanceof FussyError) && !isErrno(err, 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE')) {
        this.#log({ event: 'internal-error', action: route.action, resource, cn: id.cn, error: err instanceof Error ? err.stack : String(err) });
      }
      sendError(res, err, !req.complete);
    }
  }

  async #noted(r: { id: Identity; remote: string; action: string; resource: string }, event: string, detail: Record<string, unknown>): Promise<void> {
    try {
      await this.#audit.event(r, event, detail);
    } catch (err) {
      this.#log({ event: 'audit-failed', error: err instanceof Error ? err.message : String(err), record: { action: r.action, cn: r.id.cn, event, ...detail } });
    }
  }

  async #audited(r: { id: Identity; remote: string; action: string; resource: string; decision: 'allow' | 'deny'; reason?: string }): Promise<void> {
    try {
      await this.#audit.write(r);
    } catch (err) {
      // A decision that cannot be recorded is still made; the daemon's log says the audit failed.
      this.#log({ event: 'audit-failed', error: err instanceof Error ? err.message : String(err), record: { ...r, id: r.id.cn } });
    }
  }
}
