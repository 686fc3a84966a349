import { constants as FS } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
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
 */

export interface AuditRecord {
  id: Identity;
  remote: string;
  action: string;
  resource: string;
  decision: 'allow' | 'deny';
  reason?: string;
}

export class AuditLog {
  readonly #fh: FileHandle;
  readonly #now: () => Date;
  #tail: Promise<void> = Promise.resolve();

  private constructor(fh: FileHandle, now: () => Date) {
    this.#fh = fh;
    this.#now = now;
  }

  static async open(stateDir: string, now: () => Date): Promise<AuditLog> {
    const fh = await open(join(stateDir, 'audit.jsonl'), FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT | FS.O_NOFOLLOW | FS.O_NOCTTY, 0o640);
    return new AuditLog(fh, now);
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
      await this.#fh.write(line + '\n');
    });
    this.#tail = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.#tail;
    await this.#fh.close();
  }
}
