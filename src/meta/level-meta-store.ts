/**
 * LevelMetaStore: the metadata state machine on classic-level (LevelDB).
 *
 * `applyBatch` is deterministic: it reads only the store and the commands (never a clock or a
 * random source), and it writes every effect of a batch of commands together with the new applied
 * index in ONE LevelDB batch, so a crash leaves either all of the batch or none of it, and a
 * restart never applies an entry twice (it resumes after `appliedIndex()`).
 *
 * Commands inside one batch see each other's effects through an in-memory overlay; that is what
 * lets the host group-commit many proposals with a single fsync.
 */
import { ClassicLevel } from 'classic-level';
import { assert } from '../util/assert.ts';
import { errorCode, StoreError } from '../util/errors.ts';
import { grantsOnlyTo } from './acl.ts';
import {
  META_ERR_ACL_BLOCKS_OWNERSHIP,
  META_ERR_ACL_NOT_SUPPORTED,
  META_ERR_BAD_COMMAND,
  META_ERR_BUCKET_NOT_EMPTY,
  META_ERR_BUCKET_OWNED_BY_YOU,
  META_ERR_BUCKET_EXISTS,
  META_ERR_CONDITIONAL_CONFLICT,
  META_ERR_COPY_SOURCE_CHANGED,
  META_ERR_LOCKED,
  META_ERR_NO_SUCH_BUCKET,
  META_ERR_NO_SUCH_KEY,
  META_ERR_NO_SUCH_UPLOAD,
  META_ERR_PRECONDITION_FAILED,
  META_ERR_UPLOAD_CHANGED,
} from './errors.ts';
import {
  afterPrefix,
  bucketKey,
  bucketKeyBinary,
  bucketRange,
  completionKey,
  completionPrefix,
  metaKey,
  nodeKey,
  nodeRange,
  objectKey,
  objectKeyBinary,
  objectPrefix,
  partKey,
  partPrefix,
  uploadKey,
  uploadPrefix,
} from './keys.ts';
import { DedupTable, dedupGroupRange, legacyDedupMigration } from './dedup-table.ts';
import { listObjects } from './listing.ts';
import { exportLevel, importLevel, recoverSwap, swapIn } from './snapshot.ts';
import { checkCompletion, listUploads, sameCompletion } from './multipart.ts';
import type {
  ApplyResult,
  NodeRecord,
  ReplicationSettings,
  DecommissionRecord,
  ReplacementRecord,
  AccessKeyRecord,
  BucketRecord,
  CompletionRecord,
  ListPage,
  ListQuery,
  MetaCommand,
  ObjectRecord,
  PartRecord,
  UploadListPage,
  UploadListQuery,
  UploadRecord,
  WriteCondition,
} from './types.ts';

export { DEDUP_WINDOW_ENTRIES } from './dedup-table.ts';

/**
 * LevelDB's memtable size (its default is 4 MiB). Every memtable flush starts a chain of
 * compactions, and on this kind of VM their syscalls and table-file fsyncs cost more than the
 * merging itself: with 32 MiB, LevelDB's own threads spend about 12 µs per applied 700-byte put
 * instead of about 20–24 (250k puts, steady state). The price is up to twice this in memory (a
 * memtable being flushed plus the next) and up to this much of LevelDB log to replay at open.
 */
const WRITE_BUFFER_BYTES = 32 * 1024 * 1024;
const DB_OPTIONS = { keyEncoding: 'buffer', valueEncoding: 'utf8', writeBufferSize: WRITE_BUFFER_BYTES } as const;

/** Apply's read-ahead reads at most this many keys in place, more with one getMany (see #prefetch). */
const PREFETCH_IN_PLACE_KEYS_MAX = 16;

const APPLIED_INDEX = 'appliedIndex';
const REPLICATION = 'replication';
const NEXT_NODE_ID = 'next-node-id';
/** One record for all decommissions: there are few, and they change rarely. */
const DECOMMISSIONS = 'decommissions';
const REPLACEMENTS = 'replacements';
/** [incarnation, node id] of the latest joins, oldest first (AllocateNodeId). */
const ADMISSIONS = 'admissions';
/** Joins remembered by incarnation: far more than ever join at once. */
const ADMISSIONS_MAX = 256;
/** One record for all access keys (bounded by ACCESS_KEYS_MAX). */
const ACCESS_KEYS = 'access-keys';
/** Access keys at most: the whole table is one record, read on every change. */
export const ACCESS_KEYS_MAX = 1000;

/**
 * One committed log position and its command. `command` is undefined for positions that carry no
 * metadata change (a new leader's empty entry, a membership change): they only advance the index.
 */
export interface IndexedCommand {
  index: number;
  command: MetaCommand | undefined;
}

/** Read side of the metadata store, as the object layer sees it. */
export interface MetaReader {
  appliedIndex(): number;
  getBucket(name: string): Promise<BucketRecord | undefined>;
  listBuckets(): Promise<BucketRecord[]>;
  getObject(bucket: string, key: string): Promise<ObjectRecord | undefined>;
  listObjects(bucket: string, query: ListQuery): Promise<ListPage>;
  getUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord | undefined>;
  /** Parts of an upload with numbers above `partNumberMarker`, ascending, at most `maxParts` (+1 to tell truncation). */
  listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<PartRecord[]>;
  getCompletion(bucket: string, key: string, uploadId: string): Promise<CompletionRecord | undefined>;
  listUploads(bucket: string, query: UploadListQuery): Promise<UploadListPage>;
  /** Registered cluster nodes, by id. */
  listNodes(): Promise<NodeRecord[]>;
  /** Replication settings, or undefined when never set (use the defaults). */
  getReplication(): Promise<ReplicationSettings | undefined>;
  /** Decommissions under way or finished, by node id. */
  listDecommissions(): Promise<DecommissionRecord[]>;
  /** Replacements of dead nodes under way or finished, by node id. */
  listReplacements(): Promise<ReplacementRecord[]>;
  /** Access keys other than the root key, by id. */
  listAccessKeys(): Promise<AccessKeyRecord[]>;
  /**
   * Every chunk id referenced by an object record or a stored multipart part, from one
   * consistent view of the store (a single LevelDB iterator, i.e. one implicit snapshot taken
   * when the scan starts). Ids repeat when several records share a chunk; callers deduplicate.
   */
  chunkRefs(): AsyncGenerator<string>;
}

/** The metadata state machine: reads plus deterministic batch apply. */
export interface MetaStore extends MetaReader {
  /**
   * Applies a batch. `onApplied`, when given, receives the results as soon as they are known,
   * possibly before the batch's own write finished (see LevelMetaStore.applyBatch).
   */
  applyBatch(entries: IndexedCommand[], onApplied?: (results: ApplyResult[]) => void): Promise<ApplyResult[]>;
  /** Makes every applied batch durable. */
  flush(): Promise<void>;
  /** The whole state as snapshot chunks. */
  exportSnapshot(): AsyncIterable<Uint8Array>;
  /** Replaces the whole state with a snapshot stream. */
  installSnapshot(chunks: AsyncIterable<Uint8Array>): Promise<void>;
  close(): Promise<void>;
}

/** Options of the LevelDB-backed store. */
export interface LevelMetaStoreOptions {
  /** Directory of the LevelDB database. */
  location: string;
  /** fsync each applied batch; on when no durable log sits in front of the store. */
  syncWrites: boolean;
}

type Db = ClassicLevel<Buffer, string>;
type Pending = Map<string, string | null>;

/** Opens (or creates) the store. Turns LevelDB's lock error into a clear startup error. */
export async function openLevelMetaStore(options: LevelMetaStoreOptions): Promise<LevelMetaStore> {
  await recoverSwap(options.location);
  const db: Db = new ClassicLevel<Buffer, string>(options.location, DB_OPTIONS);
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    if (errorCode(err) === 'LEVEL_LOCKED' || errorCode(cause) === 'LEVEL_LOCKED') {
      throw new StoreError(META_ERR_LOCKED, `metadata store ${options.location} is in use by another process`, {}, { cause: err });
    }
    throw err;
  }
  const { appliedIndex, dedup } = await loadState(db);
  return new LevelMetaStore(db, options, appliedIndex, dedup);
}

/** What a store keeps in memory about an opened database: its applied index and dedup table. */
async function loadState(db: Db): Promise<{ appliedIndex: number; dedup: DedupTable }> {
  const raw = await db.get(metaKey(APPLIED_INDEX));
  const appliedIndex = raw === undefined ? 0 : Number(raw);
  assert(Number.isSafeInteger(appliedIndex) && appliedIndex >= 0, 'corrupt applied index');
  return { appliedIndex, dedup: await loadDedup(db) };
}

/** A key as the batch overlay holds it: a binary string (one char per byte), see keys.ts. */
function overlayKey(key: Buffer | string): string {
  return typeof key === 'string' ? key : key.toString('latin1');
}

/** Loads the dedup table of `db`, converting an older layout first (see legacyDedupMigration). */
async function loadDedup(db: Db): Promise<DedupTable> {
  const migration = await legacyDedupMigration((range) => db.iterator(range));
  if (migration.length > 0) {
    await db.batch(
      migration.map((op) => (op.type === 'del' ? { type: 'del' as const, key: op.key } : { type: 'put' as const, key: op.key, value: op.value! })),
      { sync: true },
    );
  }
  return DedupTable.load(db.iterator(dedupGroupRange()), (key) => db.get(key));
}

/** The classic-level implementation of MetaStore. Construct with openLevelMetaStore(). */
export class LevelMetaStore implements MetaStore {
  #db: Db;
  readonly #options: LevelMetaStoreOptions;
  #appliedIndex: number;
  #applying = false;
  /** Database values read ahead for the batch being applied (see #prefetch). */
  #prefetched = new Map<string, string | undefined>();
  /** The effects of the batch whose write is in flight, by overlay key (see applyBatch). */
  #unwritten: Pending | undefined;
  /** Settles once the batch write in flight, if any, is done: range reads wait for it. */
  #written: Promise<void> = Promise.resolve();
  /** While a command executes: the values its writes replaced in the batch overlay, to undo them. */
  #undo: Map<string, string | null | undefined> | undefined;
  /** Answers of recent commands by request id (its records live in the same database). */
  #dedup: DedupTable;

  constructor(db: Db, options: LevelMetaStoreOptions, appliedIndex: number, dedup: DedupTable) {
    this.#db = db;
    this.#options = options;
    this.#appliedIndex = appliedIndex;
    this.#dedup = dedup;
  }

  /** Index of the last command whose effects are in the store. */
  appliedIndex(): number {
    return this.#appliedIndex;
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    return parse<BucketRecord>(this.#getNow(bucketKey(name)));
  }

  async listBuckets(): Promise<BucketRecord[]> {
    await this.#written;
    const out: BucketRecord[] = [];
    for await (const value of this.#db.values(bucketRange())) out.push(JSON.parse(value) as BucketRecord);
    return out;
  }

  async listNodes(): Promise<NodeRecord[]> {
    await this.#written;
    const out: NodeRecord[] = [];
    for await (const value of this.#db.values(nodeRange())) out.push(JSON.parse(value) as NodeRecord);
    return out;
  }

  async getReplication(): Promise<ReplicationSettings | undefined> {
    return parse<ReplicationSettings>(this.#getNow(metaKey(REPLICATION)));
  }

  async listAccessKeys(): Promise<AccessKeyRecord[]> {
    const all = parse<Record<string, AccessKeyRecord>>(this.#getNow(metaKey(ACCESS_KEYS))) ?? {};
    return Object.values(all).sort((a, b) => (a.accessKeyId < b.accessKeyId ? -1 : 1));
  }

  async listDecommissions(): Promise<DecommissionRecord[]> {
    const all = parse<Record<string, DecommissionRecord>>(this.#getNow(metaKey(DECOMMISSIONS))) ?? {};
    return Object.values(all).sort((a, b) => a.nodeId - b.nodeId);
  }

  async listReplacements(): Promise<ReplacementRecord[]> {
    const all = parse<Record<string, ReplacementRecord>>(this.#getNow(metaKey(REPLACEMENTS))) ?? {};
    return Object.values(all).sort((a, b) => a.nodeId - b.nodeId);
  }

  async getObject(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    return parse<ObjectRecord>(this.#getNow(objectKey(bucket, key)));
  }

  async listObjects(bucket: string, query: ListQuery): Promise<ListPage> {
    await this.#written;
    return listObjects(this.#db, bucket, query);
  }

  async getUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord | undefined> {
    return parse<UploadRecord>(this.#getNow(uploadKey(bucket, key, uploadId)));
  }

  async listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<PartRecord[]> {
    assert(Number.isInteger(maxParts) && maxParts >= 0, 'maxParts must be a non-negative integer');
    const prefix = partPrefix(bucket, key, uploadId);
    const gt = partNumberMarker >= 1 ? partKey(bucket, key, uploadId, Math.min(partNumberMarker, 10_000)) : prefix;
    const out: PartRecord[] = [];
    await this.#written;
    for await (const value of this.#db.values({ gt, lt: afterPrefix(prefix), limit: maxParts })) out.push(JSON.parse(value) as PartRecord);
    return out;
  }

  async getCompletion(bucket: string, key: string, uploadId: string): Promise<CompletionRecord | undefined> {
    return parse<CompletionRecord>(this.#getNow(completionKey(bucket, key, uploadId)));
  }

  async listUploads(bucket: string, query: UploadListQuery): Promise<UploadListPage> {
    await this.#written;
    return listUploads(this.#db, bucket, query);
  }

  /**
   * Chunk references live in exactly two record kinds: object records ('O', `data.chunks`) and
   * parts of in-progress uploads ('P', `data.chunks`). Upload, completion, bucket, node and dedup
   * records hold none (a completed upload's chunks moved into its object record in the same
   * batch). The tags sort 'O' < 'P' with nothing between, so one iterator over ['O' 0x00,
   * 'P' 0x01) reads both from the same snapshot: a chunk moving from parts to an object in one
   * applied batch is seen in one place or the other, never in neither.
   */
  async *chunkRefs(): AsyncGenerator<string> {
    const range = { gte: Buffer.from('O\0', 'latin1'), lt: Buffer.from('P\x01', 'latin1') };
    await this.#written;
    for await (const value of this.#db.values(range)) {
      const record = JSON.parse(value) as ObjectRecord | PartRecord;
      if (record.data.kind !== 'chunks') continue;
      for (const chunk of record.data.chunks) {
        assert(typeof chunk.id === 'string' && chunk.id.length === 64, 'chunk reference without an id');
        yield chunk.id;
      }
    }
  }

  /**
   * Applies commands in index order and stores their effects and the last index atomically.
   * Entries at or below the applied index are skipped (a replay after restart).
   */
  async applyBatch(entries: IndexedCommand[], onApplied?: (results: ApplyResult[]) => void): Promise<ApplyResult[]> {
    assert(entries.length > 0, 'empty batch');
    // Batches are applied one at a time, in order: a second caller would compute its indexes
    // from an applied index that is about to move.
    assert(!this.#applying, 'applyBatch called concurrently');
    this.#applying = true;
    try {
      return await this.#applyBatch(entries, onApplied);
    } finally {
      this.#prefetched = new Map();
      // A no-op after a committed batch; after a failed one, drops what it recorded.
      this.#dedup.abort();
      this.#applying = false;
    }
  }

  async #applyBatch(entries: IndexedCommand[], onApplied: ((results: ApplyResult[]) => void) | undefined): Promise<ApplyResult[]> {
    this.#prefetched = await this.#prefetch(entries);
    const pending: Pending = new Map();
    const results: ApplyResult[] = [];
    let last = this.#appliedIndex;
    for (const { index, command } of entries) {
      assert(index > last || index <= this.#appliedIndex, `batch out of order at ${index}`);
      if (index <= this.#appliedIndex) {
        results.push({ ok: false, code: META_ERR_BAD_COMMAND, message: 'already applied' });
        continue;
      }
      assert(index === last + 1, `gap in applied indexes: ${last} → ${index}`);
      results.push(command === undefined ? { ok: true } : await this.#applyOne(pending, index, command));
      last = index;
    }
    if (last === this.#appliedIndex) {
      onApplied?.(results);
      return results;
    }
    for (const [k, v] of this.#dedup.writes(last)) pending.set(k, v);
    pending.set(metaKey(APPLIED_INDEX).toString('latin1'), String(last));
    const ops = [...pending].map(([k, v]) =>
      v === null ? { type: 'del' as const, key: Buffer.from(k, 'latin1') } : { type: 'put' as const, key: Buffer.from(k, 'latin1'), value: v },
    );
    const write = this.#db.batch(ops, { sync: this.#options.syncWrites });
    // Without syncWrites the store is not the durable record: the log in front of it is, and
    // these entries are in it (a crash replays them into the same results). So the results may
    // be answered now, while LevelDB writes them, as long as every read sees the batch: point
    // reads look in #unwritten first, range reads wait for #written. appliedIndex() moves only
    // once the write is done, so read barriers still wait for it.
    if (onApplied && !this.#options.syncWrites) {
      this.#unwritten = pending;
      this.#written = write.then(
        () => undefined,
        () => undefined,
      );
      onApplied(results);
    }
    try {
      await write;
    } finally {
      this.#unwritten = undefined;
    }
    this.#dedup.commit();
    this.#appliedIndex = last;
    if (!onApplied || this.#options.syncWrites) onApplied?.(results);
    return results;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  /** Makes every applied batch durable (one synced write); used before the log is compacted. */
  async flush(): Promise<void> {
    await this.#db.put(metaKey(APPLIED_INDEX), String(this.#appliedIndex), { sync: true });
  }

  /** Streams the whole state machine (one consistent view) as snapshot chunks. */
  async *exportSnapshot(): AsyncGenerator<Buffer> {
    await this.#written;
    yield* exportLevel(this.#db);
  }

  /**
   * Replaces the whole state with a snapshot stream, crash-safely (see snapshot.ts). Reads that
   * race the swap may fail and are retried by their clients; applies are excluded.
   */
  async installSnapshot(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    assert(!this.#applying, 'snapshot installed during an apply');
    this.#applying = true;
    try {
      const location = this.#options.location;
      await importLevel(`${location}.incoming`, chunks);
      await this.#db.close();
      await swapIn(location);
      const db: Db = new ClassicLevel<Buffer, string>(location, DB_OPTIONS);
      await db.open();
      this.#db = db;
      ({ appliedIndex: this.#appliedIndex, dedup: this.#dedup } = await loadState(db));
    } finally {
      this.#applying = false;
    }
  }

  /** The value of a key (a Buffer, or a binary string from keys.ts) as the batch so far sees it. */
  async #read(pending: Pending, key: Buffer | string): Promise<string | undefined> {
    const k = overlayKey(key);
    if (pending.has(k)) return pending.get(k) ?? undefined;
    if (this.#prefetched.has(k)) return this.#prefetched.get(k) ?? undefined;
    return this.#getNow(typeof key === 'string' ? Buffer.from(key, 'latin1') : key);
  }

  /**
   * Reads, in one getMany, the keys a batch's commands will look at first (their buckets and
   * objects), so applying N commands costs one database round trip instead of 2N.
   * The database does not change while a batch is applied (only the batch itself writes, at its
   * end), so these values stay exact; the batch's own writes take precedence through `pending`.
   */
  async #prefetch(entries: IndexedCommand[]): Promise<Map<string, string | undefined>> {
    const keys = new Set<string>();
    const add = (key: string) => keys.add(key);
    for (const { command } of entries) {
      if (!command || typeof command.requestId !== 'string' || command.requestId.includes('\0')) continue;
      const op = command.op as { bucket?: unknown; key?: unknown };
      if (typeof op.bucket !== 'string' || op.bucket.includes('\0')) continue;
      add(bucketKeyBinary(op.bucket));
      if (typeof op.key === 'string' && !op.key.includes('\0')) add(objectKeyBinary(op.bucket, op.key));
    }
    if (keys.size === 0) return new Map();
    const list = [...keys];
    // A few keys are read in place (the c=1 write path: one command, two keys); only a batch
    // worth a thread-pool round trip goes through getMany.
    const values = list.length <= PREFETCH_IN_PLACE_KEYS_MAX ? list.map((k) => this.#getNow(Buffer.from(k, 'latin1'))) : await this.#db.getMany(list.map((k) => Buffer.from(k, 'latin1')));
    return new Map(list.map((k, i) => [k, values[i] ?? undefined]));
  }

  /**
   * A point read done in place (LevelDB's synchronous get) instead of on libuv's thread pool.
   * Metadata records are small and nearly always in the memtable, the block cache or the page
   * cache, where a lookup costs a few microseconds; a thread-pool round trip costs far more on
   * this kind of VM (queueing the work, waking a worker, waking the loop again): in a 4 KiB PUT
   * profile at c=64 the bucket lookup's async get alone was 18% of the process's samples.
   */
  #getNow(key: Buffer): string | undefined {
    const unwritten = this.#unwritten;
    if (unwritten !== undefined) {
      const value = unwritten.get(key.toString('latin1'));
      if (value !== undefined) return value ?? undefined;
    }
    return this.#db.getSync(key) ?? undefined;
  }

  #write(pending: Pending, key: Buffer | string, value: string | null): void {
    const k = overlayKey(key);
    if (this.#undo && !this.#undo.has(k)) this.#undo.set(k, pending.has(k) ? pending.get(k) : undefined);
    pending.set(k, value);
  }

  async #applyOne(pending: Pending, index: number, command: MetaCommand): Promise<ApplyResult> {
    if (command.v !== 1 || typeof command.requestId !== 'string' || command.requestId.includes('\0')) {
      return { ok: false, code: META_ERR_BAD_COMMAND, message: 'malformed command' };
    }
    const seen = await this.#dedup.find(command.requestId, index);
    if (seen !== undefined) return seen;
    const result = await this.#executeGuarded(pending, command);
    this.#dedup.record(index, command.requestId, result);
    return result;
  }

  /**
   * Executes a command; a command whose shape makes execution throw (a TypeError from a missing
   * field, say) is undone and answered META_ERR_BAD_COMMAND instead. That outcome depends only on
   * the command, so every replica reaches it, and one malformed entry in the log cannot wedge every
   * node's apply loop forever. Errors of the store itself (I/O) still propagate.
   */
  async #executeGuarded(pending: Pending, command: MetaCommand): Promise<ApplyResult> {
    const undo = new Map<string, string | null | undefined>();
    this.#undo = undo;
    try {
      return await this.#execute(pending, command);
    } catch (err) {
      if (!(err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError)) throw err;
      for (const [k, v] of undo) {
        if (v === undefined) pending.delete(k);
        else pending.set(k, v);
      }
      return { ok: false, code: META_ERR_BAD_COMMAND, message: 'malformed command' };
    } finally {
      this.#undo = undefined;
    }
  }

  async #execute(pending: Pending, command: MetaCommand): Promise<ApplyResult> {
    const op = command.op;
    switch (op.type) {
      case 'CreateBucket': {
        const existing = parse<BucketRecord>(await this.#read(pending, bucketKey(op.bucket.name)));
        if (existing) {
          const code = existing.owner === op.bucket.owner ? META_ERR_BUCKET_OWNED_BY_YOU : META_ERR_BUCKET_EXISTS;
          return { ok: false, code, message: `bucket ${op.bucket.name} exists` };
        }
        this.#write(pending, bucketKey(op.bucket.name), JSON.stringify(op.bucket));
        return { ok: true };
      }
      case 'DeleteBucket': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        // In-progress uploads count too: deleting the bucket would silently drop their parts.
        if (!(await this.#prefixIsEmpty(pending, objectPrefix(op.bucket))) || !(await this.#prefixIsEmpty(pending, uploadPrefix(op.bucket)))) {
          return { ok: false, code: META_ERR_BUCKET_NOT_EMPTY, message: `bucket ${op.bucket} is not empty` };
        }
        for (const k of await this.#liveKeys(pending, completionPrefix(op.bucket))) this.#write(pending, k, null);
        this.#write(pending, bucketKey(op.bucket), null);
        // Key scopes name buckets: a scope must not outlive its bucket and then govern a later
        // bucket of the same name, perhaps another owner's.
        const keys = parse<Record<string, AccessKeyRecord>>(await this.#read(pending, metaKey(ACCESS_KEYS))) ?? {};
        let unscoped = false;
        for (const [id, k] of Object.entries(keys)) {
          if (k.buckets?.[op.bucket] === undefined) continue;
          const { [op.bucket]: _dropped, ...rest } = k.buckets;
          keys[id] = { ...k, buckets: rest };
          unscoped = true;
        }
        if (unscoped) this.#write(pending, metaKey(ACCESS_KEYS), JSON.stringify(keys));
        return { ok: true };
      }
      case 'PutObject': {
        if (!(await this.#read(pending, bucketKeyBinary(op.bucket)))) return noSuchBucket(op.bucket);
        const key = objectKeyBinary(op.bucket, op.key);
        const current = parse<ObjectRecord>(await this.#read(pending, key));
        const failed = conditionFails(op.condition, current);
        if (failed) return failed;
        if (op.copySource) {
          const source = parse<ObjectRecord>(await this.#read(pending, objectKeyBinary(op.copySource.bucket, op.copySource.key)));
          if (!source || source.writeId !== op.copySource.writeId) {
            return { ok: false, code: META_ERR_COPY_SOURCE_CHANGED, message: 'the copy source changed while it was being copied', meta: { ...op.copySource } };
          }
        }
        this.#write(pending, key, JSON.stringify(notBefore(op.object, current)));
        this.#dropCompletion(pending, op.bucket, op.key, current);
        return { ok: true, value: current ? { kind: 'PutObject', replaced: current } : { kind: 'PutObject' } };
      }
      case 'DeleteObject': {
        if (!(await this.#read(pending, bucketKeyBinary(op.bucket)))) return noSuchBucket(op.bucket);
        const key = objectKeyBinary(op.bucket, op.key);
        const current = parse<ObjectRecord>(await this.#read(pending, key));
        if (current) this.#write(pending, key, null);
        this.#dropCompletion(pending, op.bucket, op.key, current);
        return { ok: true, value: current ? { kind: 'DeleteObject', removed: current } : { kind: 'DeleteObject' } };
      }
      case 'DeleteObjects': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        for (const k of op.keys) {
          const key = objectKey(op.bucket, k);
          this.#dropCompletion(pending, op.bucket, k, parse<ObjectRecord>(await this.#read(pending, key)));
          this.#write(pending, key, null);
        }
        return { ok: true, value: { kind: 'DeleteObjects', deleted: op.keys } };
      }
      case 'CreateMultipartUpload': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        const key = uploadKey(op.bucket, op.key, op.upload.uploadId);
        if (await this.#read(pending, key)) return { ok: false, code: META_ERR_BAD_COMMAND, message: 'upload id already in use' };
        this.#write(pending, key, JSON.stringify(op.upload));
        return { ok: true };
      }
      case 'PutPart': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        if (!(await this.#read(pending, uploadKey(op.bucket, op.key, op.uploadId)))) return noSuchUpload(op.uploadId);
        const key = partKey(op.bucket, op.key, op.uploadId, op.part.partNumber);
        const replaced = parse<PartRecord>(await this.#read(pending, key));
        this.#write(pending, key, JSON.stringify(op.part));
        return { ok: true, value: replaced ? { kind: 'PutPart', replaced } : { kind: 'PutPart' } };
      }
      case 'CompleteMultipartUpload': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        const upload = await this.#read(pending, uploadKey(op.bucket, op.key, op.uploadId));
        if (!upload) {
          // A retried identical completion gets the first one's answer; anything else finds no upload.
          const done = parse<CompletionRecord>(await this.#read(pending, completionKey(op.bucket, op.key, op.uploadId)));
          if (done && sameCompletion(done.parts, op.parts)) {
            return { ok: true, value: { kind: 'CompleteMultipartUpload', completion: done, retried: true } };
          }
          return noSuchUpload(op.uploadId);
        }
        const stored = await this.#uploadParts(pending, op.bucket, op.key, op.uploadId);
        const check = checkCompletion(op.parts, new Map(stored.map((p) => [p.partNumber, p])), op.partSizeBytesMin);
        if (!check.ok) return { ok: false, code: check.code, message: check.message, ...(check.meta ? { meta: check.meta } : {}) };
        if (op.parts.some((p, i) => p.writeId !== undefined && p.writeId !== check.parts[i]!.writeId)) {
          return { ok: false, code: META_ERR_UPLOAD_CHANGED, message: 'a part was re-uploaded during completion' };
        }
        const objKey = objectKey(op.bucket, op.key);
        const current = parse<ObjectRecord>(await this.#read(pending, objKey));
        const failed = conditionFails(op.condition, current);
        if (failed) return failed;
        const completion: CompletionRecord = {
          parts: op.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
          etag: op.object.etag,
          sizeBytes: op.object.sizeBytes,
          completedMs: op.object.lastModifiedMs,
          ...(op.object.checksum ? { checksum: op.object.checksum } : {}),
        };
        // One batch: the object appears, the upload and all its parts (listed or not) disappear,
        // and the completion record of the object it replaces (if multipart) goes with that.
        this.#dropCompletion(pending, op.bucket, op.key, current);
        this.#write(pending, objKey, JSON.stringify({ ...notBefore(op.object, current), uploadId: op.uploadId }));
        this.#write(pending, uploadKey(op.bucket, op.key, op.uploadId), null);
        for (const p of stored) this.#write(pending, partKey(op.bucket, op.key, op.uploadId, p.partNumber), null);
        this.#write(pending, completionKey(op.bucket, op.key, op.uploadId), JSON.stringify(completion));
        return { ok: true, value: { kind: 'CompleteMultipartUpload', completion, retried: false, ...(current ? { replaced: current } : {}) } };
      }
      case 'AbortMultipartUpload': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        const key = uploadKey(op.bucket, op.key, op.uploadId);
        if (!(await this.#read(pending, key))) return noSuchUpload(op.uploadId);
        const parts = await this.#uploadParts(pending, op.bucket, op.key, op.uploadId);
        this.#write(pending, key, null);
        for (const p of parts) this.#write(pending, partKey(op.bucket, op.key, op.uploadId, p.partNumber), null);
        return { ok: true, value: { kind: 'AbortMultipartUpload', parts } };
      }
      case 'PutObjectTagging': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        const key = objectKey(op.bucket, op.key);
        const current = parse<ObjectRecord>(await this.#read(pending, key));
        if (!current) return { ok: false, code: META_ERR_NO_SUCH_KEY, message: `no such key ${op.key}`, meta: { bucket: op.bucket, key: op.key } };
        const { tags: _old, ...rest } = current;
        this.#write(pending, key, JSON.stringify(op.tags.length > 0 ? { ...rest, tags: op.tags } : rest));
        return { ok: true };
      }
      case 'PutBucketTagging':
      case 'PutBucketCors': {
        const current = parse<BucketRecord>(await this.#read(pending, bucketKey(op.bucket)));
        if (!current) return noSuchBucket(op.bucket);
        const field = op.type === 'PutBucketTagging' ? 'tags' : 'cors';
        const value = op.type === 'PutBucketTagging' ? op.tags : op.rules;
        const { [field]: _old, ...rest } = current;
        this.#write(pending, bucketKey(op.bucket), JSON.stringify(value === null ? rest : { ...rest, [field]: value }));
        return { ok: true };
      }
      case 'PutBucketAcl':
      case 'PutBucketOwnershipControls': {
        const current = parse<BucketRecord>(await this.#read(pending, bucketKey(op.bucket)));
        if (!current) return noSuchBucket(op.bucket);
        // Object Ownership's rule, checked in log order so a racing ACL change and ownership
        // change cannot together leave an enforced bucket with a foreign grant.
        if (op.type === 'PutBucketAcl') {
          if (current.ownership === 'BucketOwnerEnforced' && !grantsOnlyTo(op.acl, current.owner)) return aclNotSupported();
          this.#write(pending, bucketKey(op.bucket), JSON.stringify({ ...current, acl: op.acl }));
          return { ok: true };
        }
        if (op.ownership === 'BucketOwnerEnforced' && !grantsOnlyTo(current.acl, current.owner)) {
          return { ok: false, code: META_ERR_ACL_BLOCKS_OWNERSHIP, message: `bucket ${op.bucket}'s ACL grants others than its owner` };
        }
        const { ownership: _old, ...rest } = current;
        this.#write(pending, bucketKey(op.bucket), JSON.stringify(op.ownership === null ? rest : { ...rest, ownership: op.ownership }));
        return { ok: true };
      }
      case 'PutBucketPolicy': {
        const current = parse<BucketRecord>(await this.#read(pending, bucketKey(op.bucket)));
        if (!current) return noSuchBucket(op.bucket);
        const { policy: _old, ...rest } = current;
        this.#write(pending, bucketKey(op.bucket), JSON.stringify(op.policy === null ? rest : { ...rest, policy: op.policy }));
        return { ok: true };
      }
      case 'PutObjectAcl': {
        const bucket = parse<BucketRecord>(await this.#read(pending, bucketKey(op.bucket)));
        if (!bucket) return noSuchBucket(op.bucket);
        const key = objectKey(op.bucket, op.key);
        const current = parse<ObjectRecord>(await this.#read(pending, key));
        if (!current) return { ok: false, code: META_ERR_NO_SUCH_KEY, message: `no such key ${op.key}`, meta: { bucket: op.bucket, key: op.key } };
        if (bucket.ownership === 'BucketOwnerEnforced' && !grantsOnlyTo(op.acl, bucket.owner)) return aclNotSupported();
        this.#write(pending, key, JSON.stringify({ ...current, acl: op.acl }));
        return { ok: true };
      }
      case 'RegisterNode': {
        // A node being or done being decommissioned never comes back into placement, whatever
        // proposal was still in flight from it (a removed node can forward one to the leader).
        const leaving = parse<Record<string, DecommissionRecord>>(await this.#read(pending, metaKey(DECOMMISSIONS))) ?? {};
        if (leaving[String(op.node.nodeId)]) return { ok: false, code: META_ERR_PRECONDITION_FAILED, message: `node ${op.node.nodeId} is decommissioned` };
        this.#write(pending, nodeKey(op.node.nodeId), JSON.stringify(op.node));
        return { ok: true };
      }
      case 'DeregisterNode':
        this.#write(pending, nodeKey(op.nodeId), null);
        return { ok: true };
      case 'SetReplication':
        this.#write(pending, metaKey(REPLICATION), JSON.stringify(op.replication));
        return { ok: true };
      case 'SetDecommission': {
        if (!Number.isSafeInteger(op.nodeId) || op.nodeId < 1) return { ok: false, code: META_ERR_BAD_COMMAND, message: 'SetDecommission needs a node id' };
        const all = parse<Record<string, DecommissionRecord>>(await this.#read(pending, metaKey(DECOMMISSIONS))) ?? {};
        // Compare-and-set: a step proposed from a stale view (a drain report racing a cancel, a
        // cancel read on a lagging node) changes nothing.
        const current = all[String(op.nodeId)]?.state ?? null;
        if (op.expected !== undefined && current !== op.expected) {
          return { ok: false, code: META_ERR_PRECONDITION_FAILED, message: `node ${op.nodeId}'s decommission is ${current ?? 'absent'}, not ${op.expected ?? 'absent'}` };
        }
        if (op.record === null) delete all[String(op.nodeId)];
        else all[String(op.nodeId)] = op.record;
        this.#write(pending, metaKey(DECOMMISSIONS), JSON.stringify(all));
        return { ok: true };
      }
      case 'SetReplacement': {
        if (!Number.isSafeInteger(op.nodeId) || op.nodeId < 1) return { ok: false, code: META_ERR_BAD_COMMAND, message: 'SetReplacement needs a node id' };
        const all = parse<Record<string, ReplacementRecord>>(await this.#read(pending, metaKey(REPLACEMENTS))) ?? {};
        // Compare-and-set, as for decommissions: a step proposed from a stale view changes nothing.
        const current = all[String(op.nodeId)]?.state ?? null;
        if (current !== op.expected) {
          return { ok: false, code: META_ERR_PRECONDITION_FAILED, message: `node ${op.nodeId}'s replacement is ${current ?? 'absent'}, not ${op.expected ?? 'absent'}` };
        }
        if (op.record === null) delete all[String(op.nodeId)];
        else all[String(op.nodeId)] = op.record;
        this.#write(pending, metaKey(REPLACEMENTS), JSON.stringify(all));
        return { ok: true };
      }
      case 'PutAccessKey':
      case 'DeleteAccessKey': {
        const all = parse<Record<string, AccessKeyRecord>>(await this.#read(pending, metaKey(ACCESS_KEYS))) ?? {};
        if (op.type === 'DeleteAccessKey') {
          // Deleting an absent key changes nothing (a retried delete); the admin API says 404 first.
          delete all[op.accessKeyId];
        } else {
          const k = op.key;
          if (typeof k?.accessKeyId !== 'string' || !/^[A-Za-z0-9_-]{3,128}$/.test(k.accessKeyId) || typeof k.sealedSecret !== 'string') {
            return { ok: false, code: META_ERR_BAD_COMMAND, message: 'PutAccessKey needs an accessKeyId and a sealed secret' };
          }
          if (!all[k.accessKeyId] && Object.keys(all).length >= ACCESS_KEYS_MAX) return { ok: false, code: META_ERR_BAD_COMMAND, message: `at most ${ACCESS_KEYS_MAX} access keys` };
          all[k.accessKeyId] = k;
        }
        this.#write(pending, metaKey(ACCESS_KEYS), JSON.stringify(all));
        return { ok: true };
      }
      case 'SetAccessKeyStatus': {
        const all = parse<Record<string, AccessKeyRecord>>(await this.#read(pending, metaKey(ACCESS_KEYS))) ?? {};
        const key = all[op.accessKeyId];
        if (!key) return { ok: false, code: META_ERR_BAD_COMMAND, message: `no access key ${op.accessKeyId}` };
        if (op.status !== 'active' && op.status !== 'disabled') return { ok: false, code: META_ERR_BAD_COMMAND, message: 'status must be active or disabled' };
        // Only the status changes: a permission set meanwhile (applied before this) is kept.
        all[op.accessKeyId] = { ...key, status: op.status };
        this.#write(pending, metaKey(ACCESS_KEYS), JSON.stringify(all));
        return { ok: true };
      }
      case 'SetKeyBucketPermission': {
        const all = parse<Record<string, AccessKeyRecord>>(await this.#read(pending, metaKey(ACCESS_KEYS))) ?? {};
        const key = all[op.accessKeyId];
        if (!key) return { ok: false, code: META_ERR_BAD_COMMAND, message: `no access key ${op.accessKeyId}` };
        const buckets = { ...(key.buckets ?? {}) };
        if (op.permission === null) delete buckets[op.bucket];
        else if (op.permission === 'read' || op.permission === 'write' || op.permission === 'owner') buckets[op.bucket] = op.permission;
        else return { ok: false, code: META_ERR_BAD_COMMAND, message: 'permission must be read, write, owner or null' };
        all[op.accessKeyId] = { ...key, buckets };
        this.#write(pending, metaKey(ACCESS_KEYS), JSON.stringify(all));
        return { ok: true };
      }
      case 'AllocateNodeId': {
        if (!Number.isSafeInteger(op.floor) || op.floor < 1) return { ok: false, code: META_ERR_BAD_COMMAND, message: 'AllocateNodeId needs a positive integer floor' };
        const admissions = op.incarnation === undefined ? [] : (parse<Array<[string, number]>>(await this.#read(pending, metaKey(ADMISSIONS))) ?? []);
        // The same data directory asking again: the id it was given, and the counter stays.
        const before = admissions.find(([incarnation]) => incarnation === op.incarnation);
        if (before) return { ok: true, value: { kind: 'AllocateNodeId', nodeId: before[1] } };
        const next = Number((await this.#read(pending, metaKey(NEXT_NODE_ID))) ?? '1');
        const nodeId = Math.max(op.floor, next);
        this.#write(pending, metaKey(NEXT_NODE_ID), String(nodeId + 1));
        if (op.incarnation !== undefined) this.#write(pending, metaKey(ADMISSIONS), JSON.stringify([...admissions, [op.incarnation, nodeId]].slice(-ADMISSIONS_MAX)));
        return { ok: true, value: { kind: 'AllocateNodeId', nodeId } };
      }
      default:
        return { ok: false, code: META_ERR_BAD_COMMAND, message: `unknown operation ${(op as { type: string }).type}` };
    }
  }

  /** Every stored part of one upload, as the store plus the batch so far hold them, ascending. */
  async #uploadParts(pending: Pending, bucket: string, key: string, uploadId: string): Promise<PartRecord[]> {
    const out: PartRecord[] = [];
    for (const k of await this.#liveKeys(pending, partPrefix(bucket, key, uploadId))) {
      const value = await this.#read(pending, k);
      assert(value !== undefined, 'live part key without value');
      out.push(JSON.parse(value) as PartRecord);
    }
    return out;
  }

  /** Keys under `prefix` that exist in the store plus the batch so far, in key order. */
  /**
   * Removes the completion record of `replaced` (an object about to be replaced or deleted), if
   * a completion wrote it: a retried completion of that upload then finds no upload, as in S3,
   * and completion records stay one per live multipart object instead of piling up forever.
   */
  #dropCompletion(pending: Pending, bucket: string, key: string, replaced: ObjectRecord | undefined): void {
    if (replaced?.uploadId !== undefined) this.#write(pending, completionKey(bucket, key, replaced.uploadId), null);
  }

  async #liveKeys(pending: Pending, prefix: Buffer): Promise<Buffer[]> {
    const p = prefix.toString('latin1');
    const keys = new Set<string>();
    for await (const key of this.#db.keys({ gte: prefix, lt: afterPrefix(prefix) })) keys.add(key.toString('latin1'));
    for (const [k, v] of pending) {
      if (!k.startsWith(p)) continue;
      if (v === null) keys.delete(k);
      else keys.add(k);
    }
    return [...keys].map((k) => Buffer.from(k, 'latin1')).sort(Buffer.compare);
  }

  /** True when neither the store nor the batch so far holds a key under `prefix`. */
  async #prefixIsEmpty(pending: Pending, prefix: Buffer): Promise<boolean> {
    const p = prefix.toString('latin1');
    for (const [k, v] of pending) if (v !== null && k.startsWith(p)) return false;
    for await (const key of this.#db.keys({ gte: prefix, lt: afterPrefix(prefix) })) {
      if (pending.get(key.toString('latin1')) !== null) return false;
    }
    return true;
  }
}

/** The failure a write condition gives against the current object, or undefined when it holds. */
function conditionFails(cond: WriteCondition | undefined, current: ObjectRecord | undefined): ApplyResult | undefined {
  if (cond?.ifNoneMatchAny && current) {
    return { ok: false, code: META_ERR_PRECONDITION_FAILED, message: 'object exists (If-None-Match: *)' };
  }
  if (cond?.ifMatchEtag !== undefined) {
    if (!current) return { ok: false, code: META_ERR_CONDITIONAL_CONFLICT, message: 'object does not exist (If-Match)' };
    if (current.etag !== cond.ifMatchEtag) return { ok: false, code: META_ERR_PRECONDITION_FAILED, message: 'ETag does not match (If-Match)' };
  }
  return undefined;
}

function aclNotSupported(): ApplyResult {
  return { ok: false, code: META_ERR_ACL_NOT_SUPPORTED, message: 'the bucket does not allow ACLs (BucketOwnerEnforced)' };
}

function noSuchUpload(uploadId: string): ApplyResult {
  return { ok: false, code: META_ERR_NO_SUCH_UPLOAD, message: `upload ${uploadId} does not exist`, meta: { uploadId } };
}

function noSuchBucket(bucket: string): ApplyResult {
  return { ok: false, code: META_ERR_NO_SUCH_BUCKET, message: `bucket ${bucket} does not exist`, meta: { bucket } };
}

function parse<T>(value: string | undefined | null): T | undefined {
  return value === undefined || value === null ? undefined : (JSON.parse(value) as T);
}

/**
 * The object to store in place of `current`, its Last-Modified raised to 1 ms after current's
 * when the proposer stamped it earlier: stamps come from the proposing node's clock, and a node
 * whose clock is behind would otherwise date an overwrite before the object it replaced (found
 * by the chaos suite's clock nemesis: 488 such pairs in 40 s with one node 40 s off). Same rule
 * as TigerBeetle's prepare timestamps; deterministic, it reads only the store.
 */
function notBefore(object: ObjectRecord, current: ObjectRecord | undefined): ObjectRecord {
  if (current === undefined || object.lastModifiedMs > current.lastModifiedMs) return object;
  return { ...object, lastModifiedMs: current.lastModifiedMs + 1 };
}
