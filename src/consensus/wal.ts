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
 *
 * A synced append is ONE write through a second descriptor opened with O_DSYNC, instead of a
 * write and then an fdatasync: each costs a thread-pool round trip, and on this kind of VM a
 * round trip that waits for the disk costs 100–250 µs of CPU on its own. An O_DSYNC write makes
 * durable only the range it writes (Linux syncs that range and the metadata to reach it), so it
 * is enough only when everything written before is durable already: open() syncs the whole file
 * once (a previous process may have died inside a write), and an append that
 * need not be durable is not written at once but held in memory and written in front of the next
 * durable one (or at close): every byte in the file is then durable when its write returns, and
 * losing a held record in a crash is exactly the loss its caller accepted by not asking for sync.
 */
import { constants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../util/assert.ts';
import type { DiskFaultHook } from '../util/disk-faults.ts';
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
  const record = allocRecord(type, payload.byteLength);
  record.set(payload, RECORD_PAYLOAD_OFFSET);
  return sealRecord(record);
}

/** Where a record's payload starts in the buffer allocRecord() returns. */
export const RECORD_PAYLOAD_OFFSET = HEADER_BYTES + 1;

/**
 * A record of `type` with room for `payloadBytes` of payload at RECORD_PAYLOAD_OFFSET, for an
 * encoder to fill in place (one allocation, no copy); sealRecord() then adds the checksum.
 */
export function allocRecord(type: number, payloadBytes: number): Buffer {
  assert(Number.isInteger(type) && type > 0 && type < 256, 'record type is a byte');
  assert(Number.isInteger(payloadBytes) && payloadBytes >= 0 && payloadBytes < WAL_RECORD_BYTES_MAX, 'record payload size');
  const record = Buffer.allocUnsafe(RECORD_PAYLOAD_OFFSET + payloadBytes);
  record.writeUInt32BE(1 + payloadBytes, 0);
  record[HEADER_BYTES] = type;
  return record;
}

/** Writes the checksum of a filled allocRecord() buffer; returns it. */
export function sealRecord(record: Buffer): Buffer {
  assert(record.readUInt32BE(0) === record.length - HEADER_BYTES, 'sealed record size');
  record.writeUInt32BE(crc32(record.subarray(HEADER_BYTES)) >>> 0, 4);
  return record;
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
  /** The same file opened O_APPEND | O_DSYNC, for durable appends (when fsync is on). */
  #syncHandle: FileHandle | undefined;
  #sizeBytes: number;
  readonly #fsync: boolean;
  /** Records appended without sync and not yet written (see the header comment). */
  #held: Buffer[] = [];
  /** Chaos fault mode only (src/faults/); undefined in production. */
  #faults: DiskFaultHook | undefined;

  private constructor(path: string, handle: FileHandle, syncHandle: FileHandle | undefined, sizeBytes: number, fsync: boolean) {
    this.#path = path;
    this.#handle = handle;
    this.#syncHandle = syncHandle;
    this.#sizeBytes = sizeBytes;
    this.#fsync = fsync;
  }

  static async #openSyncHandle(path: string, fsync: boolean): Promise<FileHandle | undefined> {
    return fsync ? open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_DSYNC) : undefined;
  }

  /** Opens (creating) the log, replays it and cuts a torn tail off. */
  static async open(path: string, options: { fsync: boolean; faults?: DiskFaultHook }): Promise<{ wal: WriteAheadLog; replay: ReplayResult }> {
    await rm(`${path}.tmp`, { force: true });
    const handle = await open(path, 'a+');
    const data = await handle.readFile();
    const { records, validBytes } = decodeRecords(data);
    if (validBytes < data.length) await handle.truncate(validBytes);
    // Make the whole file durable once: the previous process may have died inside a write that
    // reached the page cache but not the disk, and later O_DSYNC appends sync only their own
    // range, so without this a power loss could still tear a record that replay accepted.
    if (options.fsync) await handle.sync();
    const syncHandle = await WriteAheadLog.#openSyncHandle(path, options.fsync);
    const wal = new WriteAheadLog(path, handle, syncHandle, validBytes, options.fsync);
    wal.#faults = options.faults;
    return { wal, replay: { records, truncatedBytes: data.length - validBytes } };
  }

  /** Size of the file in bytes. */
  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /**
   * Appends records. With `sync`, resolves once they (and every earlier record) are durable, in
   * one write. Without, the records may only be written by a later append or close(): a crash
   * before that loses them, as it could lose any write not synced.
   */
  async append(records: Buffer[], sync: boolean): Promise<void> {
    for (const r of records) this.#sizeBytes += r.length;
    if (!sync) {
      this.#held.push(...records);
      return;
    }
    const data = this.#held.length === 0 ? records : [...this.#held, ...records];
    this.#held = [];
    // Chaos fault mode only: a slow disk, or an EIO that the raft host turns into a crash.
    await this.#faults?.beforeSync('wal');
    await this.#write(this.#syncHandle ?? this.#handle, data);
  }

  async #write(handle: FileHandle, buffers: Buffer[]): Promise<void> {
    if (buffers.length === 0) return;
    if (buffers.length === 1) {
      const data = buffers[0]!;
      const { bytesWritten } = await handle.write(data, 0, data.length, null);
      assert(bytesWritten === data.length, 'short write to the raft log');
    } else {
      const total = buffers.reduce((n, b) => n + b.length, 0);
      const { bytesWritten } = await handle.writev(buffers);
      assert(bytesWritten === total, 'short write to the raft log');
    }
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
    await this.#syncHandle?.close();
    this.#handle = await open(this.#path, 'a+');
    this.#syncHandle = await WriteAheadLog.#openSyncHandle(this.#path, this.#fsync);
    // Held records were appended before the rewrite, whose records replace the whole log.
    this.#held = [];
    this.#sizeBytes = data.length;
  }

  /** Writes held records (without waiting for the disk) and closes the file. */
  async close(): Promise<void> {
    const held = this.#held;
    this.#held = [];
    try {
      await this.#write(this.#handle, held);
    } finally {
      await this.#handle.close();
      await this.#syncHandle?.close();
    }
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
