/**
 * WriteAheadLog: an append-only file of checksummed records, replayed at start.
 *
 *   record := length:u32be  crc32:u32be  type:u8  payload[length-1]
 *             └─ covers type + payload ─┘
 *
 * A crash can leave a torn record at the tail (a short header, a short payload, or a checksum
 * that does not match). Replay stops at the first such record and truncates the file there:
 * everything before it was fsynced by an append() that returned, everything after it was never
 * acknowledged. A bad record followed by good ones is not a torn tail but corruption, and
 * replay refuses to start rather than silently dropping acknowledged data.
 *
 * Rewrites (after log compaction) go to a temp file, are fsynced and renamed over the log, and
 * the directory is fsynced, so a crash leaves the old or the new file, never a mix.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../util/assert.ts';
import { StoreError } from '../util/errors.ts';

/** The log is corrupt before its tail: refuse to start. */
export const RAFT_ERR_LOG_CORRUPT = 'RAFT_ERR_LOG_CORRUPT';

/** Largest record accepted on replay; a length above it is treated as a torn header. */
export const WAL_RECORD_BYTES_MAX = 256 * 1024 * 1024;

const HEADER_BYTES = 8;

/** One decoded record. */
export interface WalRecord {
  type: number;
  payload: Buffer;
}

/** What replay found. */
export interface ReplayResult {
  records: WalRecord[];
  /** Bytes of torn tail that were cut off (0 when the file ended cleanly). */
  truncatedBytes: number;
}

/** Encodes one record with its header. */
export function encodeRecord(type: number, payload: Uint8Array): Buffer {
  assert(Number.isInteger(type) && type > 0 && type < 256, 'record type is a byte');
  const body = Buffer.allocUnsafe(1 + payload.byteLength);
  body[0] = type;
  body.set(payload, 1);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(crc32(body) >>> 0, 4);
  return Buffer.concat([header, body]);
}

/**
 * Decodes every record in `data`. Returns the offset where the valid prefix ends; throws
 * RAFT_ERR_LOG_CORRUPT when a damaged record is followed by a valid one.
 */
export function decodeRecords(data: Buffer): { records: WalRecord[]; validBytes: number } {
  const records: WalRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    const record = readRecordAt(data, offset);
    if (record === undefined) {
      if (hasValidRecordAfter(data, offset)) {
        throw new StoreError(RAFT_ERR_LOG_CORRUPT, `raft log damaged at byte ${offset} with valid records after it`);
      }
      break;
    }
    records.push(record.record);
    offset = record.next;
  }
  return { records, validBytes: offset };
}

function readRecordAt(data: Buffer, offset: number): { record: WalRecord; next: number } | undefined {
  if (offset + HEADER_BYTES > data.length) return undefined;
  const length = data.readUInt32BE(offset);
  if (length < 1 || length > WAL_RECORD_BYTES_MAX || offset + HEADER_BYTES + length > data.length) return undefined;
  const body = data.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
  if ((crc32(body) >>> 0) !== data.readUInt32BE(offset + 4)) return undefined;
  return { record: { type: body[0]!, payload: Buffer.from(body.subarray(1)) }, next: offset + HEADER_BYTES + length };
}

/** Scans past a damaged record for any later record that checks out (a sign of corruption). */
function hasValidRecordAfter(data: Buffer, damagedAt: number): boolean {
  for (let at = damagedAt + 1; at + HEADER_BYTES < data.length; at++) {
    const r = readRecordAt(data, at);
    // A coincidental match of a tiny record inside payload bytes is possible; require a real size.
    if (r && r.next - at > HEADER_BYTES + 8) return true;
  }
  return false;
}

/** An open log file. */
export class WriteAheadLog {
  readonly #path: string;
  #handle: FileHandle;
  #sizeBytes: number;
  readonly #fsync: boolean;

  private constructor(path: string, handle: FileHandle, sizeBytes: number, fsync: boolean) {
    this.#path = path;
    this.#handle = handle;
    this.#sizeBytes = sizeBytes;
    this.#fsync = fsync;
  }

  /** Opens (creating) the log, replays it and cuts a torn tail off. */
  static async open(path: string, options: { fsync: boolean }): Promise<{ wal: WriteAheadLog; replay: ReplayResult }> {
    await rm(`${path}.tmp`, { force: true });
    const handle = await open(path, 'a+');
    const data = await handle.readFile();
    const { records, validBytes } = decodeRecords(data);
    if (validBytes < data.length) {
      await handle.truncate(validBytes);
      if (options.fsync) await handle.sync();
    }
    return { wal: new WriteAheadLog(path, handle, validBytes, options.fsync), replay: { records, truncatedBytes: data.length - validBytes } };
  }

  /** Size of the file in bytes. */
  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** Appends records; resolves once they are durable (when `sync`), as one write. */
  async append(records: Buffer[], sync: boolean): Promise<void> {
    if (records.length === 0) return;
    const data = records.length === 1 ? records[0]! : Buffer.concat(records);
    await this.#handle.write(data, 0, data.length, null);
    this.#sizeBytes += data.length;
    if (sync && this.#fsync) await this.#handle.datasync();
  }

  /** Replaces the whole log with `records`, atomically (temp + fsync + rename + dir fsync). */
  async rewrite(records: Buffer[]): Promise<void> {
    const tmp = `${this.#path}.tmp`;
    const handle = await open(tmp, 'w');
    const data = Buffer.concat(records);
    try {
      await handle.write(data, 0, data.length, 0);
      if (this.#fsync) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.#path);
    if (this.#fsync) await fsyncDir(dirname(this.#path));
    await this.#handle.close();
    this.#handle = await open(this.#path, 'a+');
    this.#sizeBytes = data.length;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
