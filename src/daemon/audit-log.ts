import { join, resolve } from 'node:path';
import { PassthruError } from '../conf/error.ts';
import { formatPciAddress, parsePciAddress } from '../conf/pci-address.ts';
import { type AuditEntry, AuditTrail } from '../host/audit.ts';
import type { Logger } from '../lib/logger.ts';
import { RotatingLog } from '../lib/rotating-log.ts';
import { DEFAULT_STATE_DIR } from '../protocol/wire.ts';

/** The system daemon's audit log; a daemon with its own state directory keeps it there. */
export const SYSTEM_AUDIT_LOG = '/var/log/passthru/audit.jsonl';
export const AUDIT_LOG_NAME = 'audit.jsonl';
/** 10 MiB per file, 5 rotated files kept: 60 MiB, some 200 000 host changes. */
export const DEFAULT_AUDIT_MAX_BYTES = 10 * 1024 * 1024;
const KEEP = 5;

/** Where the audit log goes when not told: the system's log directory for the system daemon
 *  (state in /var/lib/passthru), else beside the state (a test's, a user's sim daemon). */
export function defaultAuditLog(stateDir: string): string {
  return resolve(stateDir) === DEFAULT_STATE_DIR ? SYSTEM_AUDIT_LOG : join(stateDir, AUDIT_LOG_NAME);
}

export interface AuditLogOptions {
  readonly path: string;
  readonly maxBytes?: number;
}

export interface AuditQuery {
  /** ISO 8601: entries at or after it. */
  readonly since?: string;
  /** A PCI address: entries about that function. */
  readonly device?: string;
  /** The newest this many (default 1000). */
  readonly limit?: number;
}

/** The trail the host decorator and the daemon write to, over its file, and its reader. */
export class AuditLog {
  readonly trail: AuditTrail;
  readonly #file: RotatingLog;

  private constructor(file: RotatingLog, log: Logger) {
    this.#file = file;
    this.trail = new AuditTrail({
      append: (entry) => file.append(JSON.stringify(entry)),
      onError: (err, entry) => log.error({ err, entry }, `audit log ${file.path}: an entry could not be written`),
    });
  }

  static async open(o: AuditLogOptions, log: Logger): Promise<AuditLog> {
    const maxBytes = o.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
    try {
      return new AuditLog(await RotatingLog.open(o.path, { maxBytes, keep: KEEP }), log);
    } catch (err) {
      throw new PassthruError(
        'INVALID_ARG',
        `cannot open the audit log ${o.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        { hint: 'choose another file with --audit-log' },
      );
    }
  }

  get path(): string {
    return this.#file.path;
  }

  async read(q: AuditQuery): Promise<AuditEntry[]> {
    const since = q.since === undefined ? undefined : Date.parse(q.since);
    if (since !== undefined && Number.isNaN(since)) {
      throw new PassthruError('INVALID_ARG', `since must be a date and time (ISO 8601), not '${q.since}'`);
    }
    const device = q.device === undefined ? undefined : formatPciAddress(parsePciAddress(q.device));
    const out: AuditEntry[] = [];
    for (const line of await this.#file.lines()) {
      let e: AuditEntry;
      try {
        e = JSON.parse(line) as AuditEntry;
      } catch {
        continue; // the line a crash cut short
      }
      if (since !== undefined && !(Date.parse(e.time) >= since)) continue;
      if (device !== undefined && e.device !== device) continue;
      out.push(e);
    }
    return out.slice(-(q.limit ?? 1000));
  }

  close(): Promise<void> {
    return this.#file.close();
  }
}
