/**
 * DurableLogStorage: the Raft log and HardState on disk, as the core's RaftStorage.
 *
 * Reads are served from an in-memory MemoryStorage (the core's model storage); every write is
 * first appended to a WriteAheadLog and fsynced, and only then applied in memory, so what the
 * core reads back is always durable. After a restart the log is replayed into memory.
 *
 * Log compaction records a snapshot point (index, term, membership) and rewrites the file
 * without the entries it covers; the state itself lives in the metadata store, which the host
 * flushes durably before compacting.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type InitialState,
  MemoryStorage,
  type RaftStorage,
  type Snapshot,
  type SnapshotMetadata,
} from '../raft/index.ts';
import { assert } from '../util/assert.ts';
import type { DiskFaultHook } from '../util/disk-faults.ts';
import { allocRecord, encodeRecord, RECORD_PAYLOAD_OFFSET, sealRecord, WriteAheadLog } from './wal.ts';

const RECORD_HARD_STATE = 1;
const RECORD_ENTRIES = 2;
const RECORD_SNAPSHOT = 3;

/** What the host hands over from a Ready: the parts that must be durable before sending. */
export interface PersistInput {
  hardState?: HardState;
  entries: readonly Entry[];
  snapshot?: Snapshot;
}

/** Durable RaftStorage over a write-ahead log file. */
export class DurableLogStorage implements RaftStorage {
  readonly #memory: MemoryStorage;
  readonly #wal: WriteAheadLog;
  /** True when the log was empty at open: the node has never been part of a cluster. */
  readonly isNew: boolean;
  /** Bytes of torn tail removed at open (for logs and tests). */
  readonly truncatedBytes: number;

  private constructor(memory: MemoryStorage, wal: WriteAheadLog, isNew: boolean, truncatedBytes: number) {
    this.#memory = memory;
    this.#wal = wal;
    this.isNew = isNew;
    this.truncatedBytes = truncatedBytes;
  }

  /** Opens the log in `dir`, replaying it (and cutting a torn tail). */
  static async open(dir: string, options: { fsync: boolean; faults?: DiskFaultHook }): Promise<DurableLogStorage> {
    await mkdir(dir, { recursive: true });
    const { wal, replay } = await WriteAheadLog.open(join(dir, 'raft.wal'), options);
    const memory = new MemoryStorage();
    for (const record of replay.records) {
      switch (record.type) {
        case RECORD_HARD_STATE:
          memory.setHardState(decodeHardState(record.payload));
          break;
        case RECORD_ENTRIES:
          memory.append(decodeEntries(record.payload));
          break;
        case RECORD_SNAPSHOT:
          memory.applySnapshot({ metadata: decodeSnapshotMetadata(record.payload), data: new Uint8Array(0) });
          break;
        default:
          assert(false, `unknown raft log record type ${record.type}`);
      }
    }
    return new DurableLogStorage(memory, wal, replay.records.length === 0, replay.truncatedBytes);
  }

  /**
   * Writes the founding state of a new cluster: a snapshot point at index 1, term 1 holding the
   * initial membership, and HardState {term 1, commit 1} (see MemoryStorage.bootstrap).
   */
  async bootstrap(confState: ConfState): Promise<void> {
    assert(this.isNew && this.#memory.lastIndex() === 0, 'bootstrap of a log that is not new');
    await this.persist({ snapshot: { metadata: { index: 1, term: 1, confState }, data: new Uint8Array(0) }, hardState: { term: 1, vote: 0, commit: 1 }, entries: [] }, true);
  }

  /** Makes a Ready's durable parts durable (one write, one fsync when `sync`), then visible. */
  async persist(input: PersistInput, sync: boolean): Promise<void> {
    const records: Buffer[] = [];
    if (input.snapshot) records.push(encodeRecord(RECORD_SNAPSHOT, encodeSnapshotMetadata(input.snapshot.metadata)));
    if (input.entries.length > 0) records.push(encodeEntriesRecord(input.entries));
    if (input.hardState) records.push(encodeRecord(RECORD_HARD_STATE, encodeHardState(input.hardState)));
    // An unsynced append is held in memory until the next synced one (wal.ts), so a process
    // crash, not only a power loss, can drop it. That is harmless for a commit-only HardState
    // (commit is re-learned), which is all the core ever leaves unsynced (rd.mustSync); entries
    // and snapshot points are written durably even if a caller asked for less.
    await this.#wal.append(records, sync || input.entries.length > 0 || input.snapshot !== undefined);
    if (input.snapshot) this.#memory.applySnapshot({ metadata: input.snapshot.metadata, data: new Uint8Array(0) });
    if (input.entries.length > 0) this.#memory.append(input.entries);
    if (input.hardState) this.#memory.setHardState(input.hardState);
  }

  /**
   * Records a snapshot point at `index`, which must be applied AND durable in the state machine,
   * and drops the entries it covers by rewriting the file (snapshot record, HardState, the
   * entries after `index`). A follower that needs dropped entries is sent a snapshot.
   */
  async compact(index: number, confState: ConfState): Promise<void> {
    assert(index <= this.#memory.lastIndex(), 'snapshot beyond the log');
    assert(index <= this.#memory.hardState().commit, 'snapshot of an uncommitted index');
    if (index <= this.#memory.snapshot().metadata.index) return;
    this.#memory.createSnapshot(index, confState, new Uint8Array(0));
    this.#memory.compact(index);
    const lastIndex = this.#memory.lastIndex();
    const records = [
      encodeRecord(RECORD_SNAPSHOT, encodeSnapshotMetadata(this.#memory.snapshot().metadata)),
      encodeRecord(RECORD_HARD_STATE, encodeHardState(this.#memory.hardState())),
    ];
    if (lastIndex > index) records.push(encodeEntriesRecord(this.#memory.entries(index + 1, lastIndex + 1, Number.MAX_SAFE_INTEGER)));
    await this.#wal.rewrite(records);
  }

  /** Size of the log file, to decide when to compact. */
  get sizeBytes(): number {
    return this.#wal.sizeBytes;
  }

  hardState(): HardState {
    return this.#memory.hardState();
  }

  initialState(): InitialState {
    return this.#memory.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.#memory.entries(lo, hi, maxBytes);
  }
  term(i: number): number {
    return this.#memory.term(i);
  }
  firstIndex(): number {
    return this.#memory.firstIndex();
  }
  lastIndex(): number {
    return this.#memory.lastIndex();
  }
  snapshot(): Snapshot {
    return this.#memory.snapshot();
  }

  async close(): Promise<void> {
    await this.#wal.close();
  }
}

// --- binary encodings (48-bit unsigned integers: indexes and terms never exceed 2^48) ---

function encodeHardState(hs: HardState): Buffer {
  const b = Buffer.allocUnsafe(18);
  b.writeUIntBE(hs.term, 0, 6);
  b.writeUIntBE(hs.vote, 6, 6);
  b.writeUIntBE(hs.commit, 12, 6);
  return b;
}

function decodeHardState(b: Buffer): HardState {
  assert(b.length === 18, 'hard state record size');
  return { term: b.readUIntBE(0, 6), vote: b.readUIntBE(6, 6), commit: b.readUIntBE(12, 6) };
}

/** An entries record, encoded in place in the record's buffer (one allocation, one copy of the data). */
function encodeEntriesRecord(entries: readonly Entry[]): Buffer {
  let size = 4;
  for (const e of entries) size += 17 + e.data.byteLength;
  const b = allocRecord(RECORD_ENTRIES, size);
  let at = RECORD_PAYLOAD_OFFSET;
  b.writeUInt32BE(entries.length, at);
  at += 4;
  for (const e of entries) {
    writeUint48(b, e.term, at);
    writeUint48(b, e.index, at + 6);
    b[at + 12] = e.type === EntryType.ConfChange ? 1 : 0;
    b.writeUInt32BE(e.data.byteLength, at + 13);
    b.set(e.data, at + 17);
    at += 17 + e.data.byteLength;
  }
  assert(at === b.length, 'entries encoding size');
  return sealRecord(b);
}

/** writeUIntBE(v, at, 6) without its generic checks; indexes and terms are below 2^48. */
function writeUint48(b: Buffer, v: number, at: number): void {
  assert(Number.isSafeInteger(v) && v >= 0 && v < 2 ** 48, 'index or term out of range');
  const hi = Math.floor(v / 2 ** 32);
  b.writeUInt16BE(hi, at);
  b.writeUInt32BE(v - hi * 2 ** 32, at + 2);
}

function decodeEntries(b: Buffer): Entry[] {
  const count = b.readUInt32BE(0);
  const entries: Entry[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    const length = b.readUInt32BE(at + 13);
    entries.push({
      term: b.readUIntBE(at, 6),
      index: b.readUIntBE(at + 6, 6),
      type: b[at + 12] === 1 ? EntryType.ConfChange : EntryType.Normal,
      data: new Uint8Array(b.subarray(at + 17, at + 17 + length)),
    });
    at += 17 + length;
  }
  assert(at === b.length, 'entries record has trailing bytes');
  return entries;
}

function encodeSnapshotMetadata(m: SnapshotMetadata): Buffer {
  const ids = [...m.confState.voters, ...m.confState.learners];
  const b = Buffer.allocUnsafe(16 + ids.length * 6);
  b.writeUIntBE(m.index, 0, 6);
  b.writeUIntBE(m.term, 6, 6);
  b.writeUInt16BE(m.confState.voters.length, 12);
  b.writeUInt16BE(m.confState.learners.length, 14);
  for (const [i, id] of ids.entries()) b.writeUIntBE(id, 16 + i * 6, 6);
  return b;
}

function decodeSnapshotMetadata(b: Buffer): SnapshotMetadata {
  const voters = b.readUInt16BE(12);
  const learners = b.readUInt16BE(14);
  const ids = Array.from({ length: voters + learners }, (_, i) => b.readUIntBE(16 + i * 6, 6));
  assert(b.length === 16 + ids.length * 6, 'snapshot record size');
  return { index: b.readUIntBE(0, 6), term: b.readUIntBE(6, 6), confState: { voters: ids.slice(0, voters), learners: ids.slice(voters) } };
}
