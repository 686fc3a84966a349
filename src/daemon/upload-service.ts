import { FussyError, isSystemError } from '../errors.js';
import type { FussyEvent } from '../index.js';
import type { DaemonConfig } from './config.js';
import { runInstall, type InstallOutcome } from './installer.js';
import { UploadStore } from './uploads.js';

/** How old an upload may get untouched before a sweep removes it. */
export const UPLOAD_MAX_AGE_MS = 86_400_000;
const SWEEP_EVERY_MS = 3_600_000;

export interface UploadServiceOptions {
  log: (event: Record<string, unknown>) => void;
  now?: () => Date;
  /** After each install, whatever its outcome (`current` may have changed: the scheduler reloads the firmware's jobs). */
  afterInstall?: () => void;
}

/**
 * fussyd's firmware uploads (docs/daemon.md, "Firmware upload"): the upload store, swept at start
 * and hourly, and the installs of verified uploads into the configured target with the
 * configured keyring, in the install child (installer.ts). An install belongs to the daemon, not
 * to the request: a client that goes away loses the answer, never the install (it completes or
 * refuses on its own and the target's history records it). stop() (SIGTERM) cancels running
 * installs with the installer's semantics, a refusal before the switch and completed after it,
 * and waits for them.
 */
export class UploadService {
  readonly store: UploadStore;
  readonly #config: DaemonConfig;
  /** The daemon's log (journald): what each upload and install did. */
  readonly log: UploadServiceOptions['log'];
  readonly #afterInstall: () => void;
  readonly #stop = new AbortController();
  readonly #running = new Set<Promise<unknown>>();
  #timer: NodeJS.Timeout | undefined;

  private constructor(config: DaemonConfig, store: UploadStore, o: UploadServiceOptions) {
    this.#config = config;
    this.store = store;
    this.log = o.log;
    this.#afterInstall = o.afterInstall ?? (() => undefined);
  }

  /** Open STATE/uploads (max-upload-bytes), sweep it, and sweep it again every hour. */
  static open(config: DaemonConfig, o: UploadServiceOptions): UploadService {
    const store = UploadStore.open(config.stateDir, { maxBytes: config.maxUploadBytes, maxAgeMs: UPLOAD_MAX_AGE_MS, maxUploads: config.maxUploads, onEvict: (sha256, have) => o.log({ event: 'upload-evicted', sha256, have, why: 'max-uploads' }), now: o.now });
    const service = new UploadService(config, store, o);
    service.sweep('start');
    service.#timer = setInterval(() => service.sweep('hourly'), SWEEP_EVERY_MS);
    service.#timer.unref();
    return service;
  }

  /** Remove stale uploads (not while an install runs: its package must stay until the child opened it). */
  sweep(why: string): void {
    if (this.#running.size > 0) return;
    try {
      const removed = this.store.sweep();
      if (removed.length > 0) this.log({ event: 'uploads-swept', why, removed });
    } catch (err) {
      // A sweep that fails (EIO, a file removed meanwhile) is tried again in an hour; the daemon goes on.
      if (!isSystemError(err) && !(err instanceof FussyError)) throw err;
      this.log({ event: 'uploads-sweep-failed', why, error: err.message });
    }
  }

  /**
   * Install the verified package of upload `sha256` (at `pkg`, from complete()). The upload is
   * removed afterwards whatever the outcome, except when the install never started (LOCKED:
   * another install runs; or the daemon is stopping): then it stays for the client to retry
   * without sending it again.
   */
  async install(sha256: string, pkg: string, onEvent: (e: FussyEvent) => void): Promise<InstallOutcome> {
    let events = 0;
    const outcome = await runInstall({
      package: pkg,
      keyring: this.#config.keyring,
      target: this.#config.target,
      signal: this.#stop.signal,
      onEvent: (e) => {
        events++;
        onEvent(e);
      },
    });
    this.#afterInstall();
    const notStarted = !outcome.ok && (outcome.error.code === 'LOCKED' || (outcome.error.code === 'INTERRUPTED' && events === 0));
    if (!notStarted) await this.#forget(sha256);
    return outcome;
  }

  /** Run a request that installs (its answer included): stop() waits for it, and no sweep runs meanwhile. */
  async hold<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.#running.add(p);
    try {
      return await p;
    } finally {
      this.#running.delete(p);
    }
  }

  async #forget(sha256: string): Promise<void> {
    try {
      await this.store.remove(sha256);
    } catch (err) {
      // Another request holds the upload at this moment (UPLOAD_BUSY); the sweep removes it later.
      if (!(err instanceof FussyError) && !isSystemError(err)) throw err;
      this.log({ event: 'upload-not-removed', sha256, error: err.message });
    }
  }

  /** SIGTERM: no more sweeps; running installs are cancelled (refused before the switch, completed after it) and awaited. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#stop.abort();
    if (this.#running.size > 0) this.log({ event: 'installs-stopping', running: this.#running.size });
    await Promise.allSettled([...this.#running]);
  }

  close(): void {
    this.store.close();
  }
}
