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
import {
  META_ERR_BAD_COMMAND,
  META_ERR_BUCKET_NOT_EMPTY,
  META_ERR_BUCKET_OWNED_BY_YOU,
  META_ERR_BUCKET_EXISTS,
  META_ERR_CONDITIONAL_CONFLICT,
  META_ERR_LOCKED,
  META_ERR_NO_SUCH_BUCKET,
  META_ERR_PRECONDITION_FAILED,
} from './errors.ts';
import {
  afterPrefix,
  bucketKey,
  bucketRange,
  dedupKey,
  dedupQueueBelow,
  dedupQueueKey,
  metaKey,
  objectKey,
  objectPrefix,
  requestIdOfQueueKey,
} from './keys.ts';
import { listObjects } from './listing.ts';
import type { ApplyResult, BucketRecord, ListPage, ListQuery, MetaCommand, ObjectRecord } from './types.ts';

/** How many applied indexes a request id is remembered for deduplication. */
export const DEDUP_WINDOW_ENTRIES = 100_000;

const APPLIED_INDEX = 'appliedIndex';

/** One committed command with its position in the ordered log. */
export interface IndexedCommand {
  index: number;
  command: MetaCommand;
}

/** Read side of the metadata store, as the object layer sees it. */
export interface MetaReader {
  appliedIndex(): number;
  getBucket(name: string): Promise<BucketRecord | undefined>;
  listBuckets(): Promise<BucketRecord[]>;
  getObject(bucket: string, key: string): Promise<ObjectRecord | undefined>;
  listObjects(bucket: string, query: ListQuery): Promise<ListPage>;
}

/** The metadata state machine: reads plus deterministic batch apply. */
export interface MetaStore extends MetaReader {
  applyBatch(entries: IndexedCommand[]): Promise<ApplyResult[]>;
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
  const db: Db = new ClassicLevel<Buffer, string>(options.location, { keyEncoding: 'buffer', valueEncoding: 'utf8' });
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    if (errorCode(err) === 'LEVEL_LOCKED' || errorCode(cause) === 'LEVEL_LOCKED') {
      throw new StoreError(META_ERR_LOCKED, `metadata store ${options.location} is in use by another process`, {}, { cause: err });
    }
    throw err;
  }
  const raw = await db.get(metaKey(APPLIED_INDEX));
  const applied = raw === undefined ? 0 : Number(raw);
  assert(Number.isSafeInteger(applied) && applied >= 0, 'corrupt applied index');
  return new LevelMetaStore(db, options, applied);
}

/** The classic-level implementation of MetaStore. Construct with openLevelMetaStore(). */
export class LevelMetaStore implements MetaStore {
  readonly #db: Db;
  readonly #options: LevelMetaStoreOptions;
  #appliedIndex: number;
  #applying = false;

  constructor(db: Db, options: LevelMetaStoreOptions, appliedIndex: number) {
    this.#db = db;
    this.#options = options;
    this.#appliedIndex = appliedIndex;
  }

  /** Index of the last command whose effects are in the store. */
  appliedIndex(): number {
    return this.#appliedIndex;
  }

  async getBucket(name: string): Promise<BucketRecord | undefined> {
    return parse<BucketRecord>(await this.#db.get(bucketKey(name)));
  }

  async listBuckets(): Promise<BucketRecord[]> {
    const out: BucketRecord[] = [];
    for await (const value of this.#db.values(bucketRange())) out.push(JSON.parse(value) as BucketRecord);
    return out;
  }

  async getObject(bucket: string, key: string): Promise<ObjectRecord | undefined> {
    return parse<ObjectRecord>(await this.#db.get(objectKey(bucket, key)));
  }

  async listObjects(bucket: string, query: ListQuery): Promise<ListPage> {
    return listObjects(this.#db, bucket, query);
  }

  /**
   * Applies commands in index order and stores their effects and the last index atomically.
   * Entries at or below the applied index are skipped (a replay after restart).
   */
  async applyBatch(entries: IndexedCommand[]): Promise<ApplyResult[]> {
    assert(entries.length > 0, 'empty batch');
    // Batches are applied one at a time, in order: a second caller would compute its indexes
    // from an applied index that is about to move.
    assert(!this.#applying, 'applyBatch called concurrently');
    this.#applying = true;
    try {
      return await this.#applyBatch(entries);
    } finally {
      this.#applying = false;
    }
  }

  async #applyBatch(entries: IndexedCommand[]): Promise<ApplyResult[]> {
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
      results.push(await this.#applyOne(pending, index, command));
      last = index;
    }
    if (last === this.#appliedIndex) return results;
    await this.#pruneDedup(pending, last);
    pending.set(metaKey(APPLIED_INDEX).toString('latin1'), String(last));
    const ops = [...pending].map(([k, v]) =>
      v === null ? { type: 'del' as const, key: Buffer.from(k, 'latin1') } : { type: 'put' as const, key: Buffer.from(k, 'latin1'), value: v },
    );
    await this.#db.batch(ops, { sync: this.#options.syncWrites });
    this.#appliedIndex = last;
    return results;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  async #read(pending: Pending, key: Buffer): Promise<string | undefined> {
    const k = key.toString('latin1');
    if (pending.has(k)) return pending.get(k) ?? undefined;
    return this.#db.get(key);
  }

  #write(pending: Pending, key: Buffer, value: string | null): void {
    pending.set(key.toString('latin1'), value);
  }

  async #applyOne(pending: Pending, index: number, command: MetaCommand): Promise<ApplyResult> {
    if (command.v !== 1 || typeof command.requestId !== 'string' || command.requestId.includes('\0')) {
      return { ok: false, code: META_ERR_BAD_COMMAND, message: 'malformed command' };
    }
    const seen = await this.#read(pending, dedupKey(command.requestId));
    if (seen !== undefined) return (JSON.parse(seen) as { result: ApplyResult }).result;
    const result = await this.#execute(pending, command);
    this.#write(pending, dedupKey(command.requestId), JSON.stringify({ index, result }));
    this.#write(pending, dedupQueueKey(index, command.requestId), '');
    return result;
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
        if (!(await this.#bucketIsEmpty(pending, op.bucket))) {
          return { ok: false, code: META_ERR_BUCKET_NOT_EMPTY, message: `bucket ${op.bucket} is not empty` };
        }
        this.#write(pending, bucketKey(op.bucket), null);
        return { ok: true };
      }
      case 'PutObject': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        const key = objectKey(op.bucket, op.key);
        const current = parse<ObjectRecord>(await this.#read(pending, key));
        const cond = op.condition;
        if (cond?.ifNoneMatchAny && current) {
          return { ok: false, code: META_ERR_PRECONDITION_FAILED, message: 'object exists (If-None-Match: *)' };
        }
        if (cond?.ifMatchEtag !== undefined) {
          if (!current) return { ok: false, code: META_ERR_CONDITIONAL_CONFLICT, message: 'object does not exist (If-Match)' };
          if (current.etag !== cond.ifMatchEtag) {
            return { ok: false, code: META_ERR_PRECONDITION_FAILED, message: 'ETag does not match (If-Match)' };
          }
        }
        this.#write(pending, key, JSON.stringify(op.object));
        return { ok: true, value: current ? { kind: 'PutObject', replaced: current } : { kind: 'PutObject' } };
      }
      case 'DeleteObject': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        const key = objectKey(op.bucket, op.key);
        const current = parse<ObjectRecord>(await this.#read(pending, key));
        if (current) this.#write(pending, key, null);
        return { ok: true, value: current ? { kind: 'DeleteObject', removed: current } : { kind: 'DeleteObject' } };
      }
      case 'DeleteObjects': {
        if (!(await this.#read(pending, bucketKey(op.bucket)))) return noSuchBucket(op.bucket);
        for (const k of op.keys) this.#write(pending, objectKey(op.bucket, k), null);
        return { ok: true, value: { kind: 'DeleteObjects', deleted: op.keys } };
      }
      default:
        return { ok: false, code: META_ERR_BAD_COMMAND, message: `unknown operation ${(op as { type: string }).type}` };
    }
  }

  /** True when neither the store nor the batch so far holds an object of `bucket`. */
  async #bucketIsEmpty(pending: Pending, bucket: string): Promise<boolean> {
    const prefix = objectPrefix(bucket);
    const p = prefix.toString('latin1');
    for (const [k, v] of pending) if (v !== null && k.startsWith(p)) return false;
    for await (const key of this.#db.keys({ gte: prefix, lt: afterPrefix(prefix) })) {
      if (pending.get(key.toString('latin1')) !== null) return false;
    }
    return true;
  }

  /** Forgets request ids older than the dedup window, in the same batch (deterministic). */
  async #pruneDedup(pending: Pending, lastIndex: number): Promise<void> {
    const below = lastIndex - DEDUP_WINDOW_ENTRIES;
    if (below <= 0) return;
    for await (const key of this.#db.keys({ ...dedupQueueBelow(below), limit: 1024 })) {
      this.#write(pending, key, null);
      this.#write(pending, dedupKey(requestIdOfQueueKey(key)), null);
    }
  }
}

function noSuchBucket(bucket: string): ApplyResult {
  return { ok: false, code: META_ERR_NO_SUCH_BUCKET, message: `bucket ${bucket} does not exist`, meta: { bucket } };
}

function parse<T>(value: string | undefined | null): T | undefined {
  return value === undefined || value === null ? undefined : (JSON.parse(value) as T);
}
