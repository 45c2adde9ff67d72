/**
 * The audit log: an append-only file of admin actions and permission denials, one JSON object a
 * line, each chained to the one before by hash so that an edited, deleted or reordered line is
 * detectable (`ts3ctl audit verify`, src/audit/verify.ts):
 *
 *   {"seq":1,"timeMs":…,"prev":"000…0","event":{…},"hash":h1}
 *   {"seq":2,"timeMs":…,"prev":h1,"event":{…},"hash":h2}
 *
 *   hash = sha256("ts3gw-audit v1\n" + JSON.stringify({seq, timeMs, prev, event}))   (hex)
 *
 * Every append is written and fdatasync'ed before the next one starts (appends queue up in
 * order), so a line that is in the file survived power loss once its append resolved. At open,
 * the last complete line gives the chain's head; a torn last line (a crash mid-write) is cut off
 * first, as no append it belonged to ever resolved.
 *
 * Each node keeps its own log of what it saw: actions through its admin API and the 403s it
 * answered. Events carry no secrets: no signatures, tokens or secret keys, only key ids.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Where a node keeps its audit log, relative to its data directory. */
export const AUDIT_FILE = join('audit', 'audit.log');
/** `prev` of the first line. */
export const AUDIT_GENESIS_HASH = '0'.repeat(64);
/** Appends waiting for the disk beyond this many are dropped (and counted): the log never holds a request up without bound. */
export const AUDIT_QUEUE_MAX = 10_000;

/** What happened, as the node saw it. */
export interface AuditEvent {
  /** 'admin' for an admin API call, 'denied' for a refused request (403). */
  kind: 'admin' | 'denied';
  /** What was asked, e.g. "POST /keys" or "PUT /bucket/key". */
  action: string;
  /** Access key id of the caller ('' when anonymous or unknown). */
  actor: string;
  /** HTTP status answered. */
  status: number;
  /** Further fields (ids, parameters); never secrets. */
  [field: string]: unknown;
}

/** One line of the log. */
export interface AuditEntry {
  seq: number;
  timeMs: number;
  prev: string;
  event: AuditEvent;
  hash: string;
}

/** The hash of an entry's content (everything but `hash`). */
export function auditHash(entry: Omit<AuditEntry, 'hash'>): string {
  const body = JSON.stringify({ seq: entry.seq, timeMs: entry.timeMs, prev: entry.prev, event: entry.event });
  return createHash('sha256').update(`ts3gw-audit v1\n${body}`).digest('hex');
}

/** Serializes an entry as its line (with the newline). */
export function auditLine(entry: AuditEntry): string {
  return `${JSON.stringify({ seq: entry.seq, timeMs: entry.timeMs, prev: entry.prev, event: entry.event, hash: entry.hash })}\n`;
}

/** Counters of the log, named as the node's Prometheus metrics. */
export interface AuditStats {
  ts3gw_audit_entries_total: number;
  /** Events lost: the queue was full or the disk failed. */
  ts3gw_audit_dropped_total: number;
}

/** The append end of one node's audit log. */
export class AuditLog {
  readonly #path: string;
  readonly #nowMs: () => number;
  readonly #logger: { error(obj: object, msg: string): void } | undefined;
  #seq: number;
  #head: string;
  #tail: Promise<void> = Promise.resolve();
  #queued = 0;
  #closed = false;
  readonly #stats: AuditStats = { ts3gw_audit_entries_total: 0, ts3gw_audit_dropped_total: 0 };

  private constructor(path: string, seq: number, head: string, nowMs: () => number, logger: { error(obj: object, msg: string): void } | undefined) {
    this.#path = path;
    this.#seq = seq;
    this.#head = head;
    this.#nowMs = nowMs;
    this.#logger = logger;
  }

  /** Opens (or creates) the log at `path`, continuing its chain. */
  static async open(path: string, options: { nowMs?: () => number; logger?: { error(obj: object, msg: string): void } } = {}): Promise<AuditLog> {
    await mkdir(dirname(path), { recursive: true });
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const complete = text.lastIndexOf('\n') + 1;
    if (complete < text.length) await truncate(path, Buffer.byteLength(text.slice(0, complete)));
    const lines = text.slice(0, complete).split('\n').filter((l) => l.length > 0);
    let seq = 0;
    let head = AUDIT_GENESIS_HASH;
    const last = lines.at(-1);
    if (last !== undefined) {
      // Continue from what the file says; whether it was tampered with is verify's question, and
      // a chain that continues from the tampered head still shows the break where it happened.
      try {
        const entry = JSON.parse(last) as AuditEntry;
        if (Number.isSafeInteger(entry.seq) && typeof entry.hash === 'string') {
          seq = entry.seq;
          head = entry.hash;
        }
      } catch {
        options.logger?.error({ path }, 'the last audit log line is not JSON; continuing the chain from the genesis hash (ts3ctl audit verify will show the break)');
      }
    }
    return new AuditLog(path, seq, head, options.nowMs ?? Date.now, options.logger);
  }

  /** The file this log appends to. */
  get path(): string {
    return this.#path;
  }

  stats(): AuditStats {
    return { ...this.#stats };
  }

  /**
   * Appends `event`; resolves once its line is on disk (fdatasync). Never rejects: a failed write
   * is logged and counted, and the request that caused it is answered anyway (the log is a
   * record, not a gate).
   */
  append(event: AuditEvent): Promise<void> {
    if (this.#closed || this.#queued >= AUDIT_QUEUE_MAX) {
      this.#stats.ts3gw_audit_dropped_total++;
      return Promise.resolve();
    }
    this.#queued++;
    const write = async () => {
      const draft = { seq: this.#seq + 1, timeMs: this.#nowMs(), prev: this.#head, event };
      const entry: AuditEntry = { ...draft, hash: auditHash(draft) };
      const file = await open(this.#path, 'a');
      try {
        await file.write(auditLine(entry));
        await file.datasync();
      } finally {
        await file.close();
      }
      this.#seq = entry.seq;
      this.#head = entry.hash;
      this.#stats.ts3gw_audit_entries_total++;
    };
    this.#tail = this.#tail.then(write).then(
      () => {
        this.#queued--;
      },
      (err: unknown) => {
        this.#queued--;
        this.#stats.ts3gw_audit_dropped_total++;
        this.#logger?.error({ err, path: this.#path }, 'could not append to the audit log');
      },
    );
    return this.#tail;
  }

  /** Waits for queued appends, then refuses new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }
}
