import { constants as FS } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Identity } from './auth.js';

/**
 * STATE/audit.jsonl: one line per authorization decision, allow and deny (docs/daemon.md),
 * `{time, cn, fingerprint, serial, remote, action, resource, decision, reason?}`. Appended with
 * O_APPEND, one write(2) per line, so lines never interleave; opened O_NOFOLLOW. Not fsynced
 * line by line (flash wear): a power cut may lose the last lines, never tear the earlier ones.
 * Handshake refusals carry no identity and go to the daemon's log instead.
 * A request that changed something adds an event line after the decision, with what it did:
 * `{time, cn, fingerprint, serial, remote, action, resource, event, ...detail}` (no `decision`),
 * e.g. the id of a stored script, or the run id a run got (its history record names the same).
 * Bounded: past `maxBytes` (16 MiB) the file becomes `audit.jsonl.1` (replacing the one before)
 * and a new one is begun, so clients, however many requests they make, hold at most twice that.
 */

export interface AuditRecord {
  id: Identity;
  remote: string;
  action: string;
  resource: string;
  decision: 'allow' | 'deny';
  reason?: string;
}

/** Where the audit log is rotated (the previous generation is kept as audit.jsonl.1). */
export const AUDIT_MAX_BYTES = 16 * 1024 * 1024;

export class AuditLog {
  #fh: FileHandle;
  #size: number;
  readonly #file: string;
  readonly #now: () => Date;
  readonly #maxBytes: number;
  #tail: Promise<void> = Promise.resolve();

  private constructor(fh: FileHandle, size: number, file: string, now: () => Date, maxBytes: number) {
    this.#fh = fh;
    this.#size = size;
    this.#file = file;
    this.#now = now;
    this.#maxBytes = maxBytes;
  }

  static async open(stateDir: string, now: () => Date, maxBytes = AUDIT_MAX_BYTES): Promise<AuditLog> {
    const file = join(stateDir, 'audit.jsonl');
    const fh = await openLog(file);
    return new AuditLog(fh, (await fh.stat()).size, file, now, maxBytes);
  }

  /** Queue one decision line; the returned promise settles when it is written (writes keep their order). */
  write(r: AuditRecord): Promise<void> {
    return this.#append({ ...this.#who(r), decision: r.decision, ...(r.reason === undefined ? {} : { reason: r.reason }) });
  }

  /** Queue one event line: what an allowed request did (`event`, and its detail). */
  event(r: Omit<AuditRecord, 'decision' | 'reason'>, event: string, detail: Record<string, unknown>): Promise<void> {
    return this.#append({ ...this.#who(r), event, ...detail });
  }

  #who(r: Omit<AuditRecord, 'decision' | 'reason'>): Record<string, unknown> {
    return {
      time: this.#now().toISOString(),
      cn: r.id.cn,
      fingerprint: r.id.fingerprint,
      serial: r.id.serial,
      remote: r.remote,
      action: r.action,
      resource: r.resource.length > 300 ? `${r.resource.slice(0, 300)}...` : r.resource,
    };
  }

  #append(record: Record<string, unknown>): Promise<void> {
    const line = JSON.stringify(record);
    const next = this.#tail.then(async () => {
      if (this.#size > 0 && this.#size + line.length + 1 > this.#maxBytes) await this.#rotate();
      const { bytesWritten } = await this.#fh.write(line + '\n');
      this.#size += bytesWritten;
    });
    this.#tail = next.catch(() => undefined);
    return next;
  }

  /** audit.jsonl -> audit.jsonl.1 (the state dir is fussyd's own: no one else can swap these names), then a new file. */
  async #rotate(): Promise<void> {
    await rename(this.#file, `${this.#file}.1`);
    const old = this.#fh;
    this.#fh = await openLog(this.#file);
    this.#size = 0;
    await old.close();
  }

  async close(): Promise<void> {
    await this.#tail;
    await this.#fh.close();
  }
}

function openLog(file: string): Promise<FileHandle> {
  return open(file, FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT | FS.O_NOFOLLOW | FS.O_NOCTTY, 0o640);
}
