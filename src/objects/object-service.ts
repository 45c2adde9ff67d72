/**
 * ObjectService: S3 semantics over metadata commands and chunks. It turns a request into chunk
 * writes plus ONE metadata command, so a write is visible entirely or not at all, and it reads
 * metadata only after a read barrier so every read sees every write acknowledged before it.
 *
 * Write path: stream the body, cut it into chunks of `chunkSizeBytes`, hash each (sha256 → chunk
 * id), store each durably, then propose PutObject. Objects up to `inlineMaxBytes` skip the chunk
 * store and travel inside the manifest. Memory per upload is bounded by
 * chunkSizeBytes × (CHUNK_WRITES_IN_FLIGHT_MAX + 1).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { ChunkStore } from '../chunks/chunk-store.ts';
import type { Consensus } from '../consensus/types.ts';
import { META_ERR_NO_SUCH_BUCKET, META_ERR_NO_SUCH_KEY } from '../meta/errors.ts';
import type {
  ApplyResult,
  BucketRecord,
  ChunkRef,
  ListPage,
  ListQuery,
  MetaOp,
  ObjectData,
  ObjectRecord,
  StoredChecksum,
  WriteCondition,
} from '../meta/types.ts';
import { assert } from '../util/assert.ts';
import { type Clock, MonotonicStamper } from '../util/clock.ts';
import { StoreError } from '../util/errors.ts';
import { OBJ_ERR_INCOMPLETE_BODY, OBJ_ERR_TOO_LARGE } from './errors.ts';

/** Chunk writes of one upload that may be outstanding while the next chunk is read. */
export const CHUNK_WRITES_IN_FLIGHT_MAX = 2;

/** Tunables of the object layer. */
export interface ObjectServiceOptions {
  chunkSizeBytes: number;
  inlineMaxBytes: number;
  objectSizeBytesMax: number;
}

/** Collaborators of the object layer. */
export interface ObjectServiceDeps {
  consensus: Consensus;
  chunks: ChunkStore;
  clock: Clock;
}

/** What the wire layer knows once the body has been read: its digests, already verified. */
export interface BodyDigests {
  /** Unquoted ETag (MD5 hex of the content). */
  etag: string;
  checksum?: StoredChecksum;
}

/** A PutObject request as the object layer sees it. */
export interface PutObjectInput {
  bucket: string;
  key: string;
  owner: string;
  /** The decoded object bytes. */
  body: AsyncIterable<Uint8Array>;
  /** The size the client declared; a different byte count fails the upload. */
  declaredSizeBytes?: number;
  contentType: string;
  headers: Record<string, string>;
  userMeta: Record<string, string>;
  condition?: WriteCondition;
  /**
   * Called once the whole body has been consumed and stored, before anything is made visible.
   * It verifies signatures and checksums of the bytes seen and returns their digests; throwing
   * aborts the upload with nothing visible.
   */
  finalize(sizeBytes: number): Promise<BodyDigests> | BodyDigests;
}

/** A CopyObject request. `replace` is set for MetadataDirective REPLACE. */
export interface CopyObjectInput {
  source: ObjectRecord;
  bucket: string;
  key: string;
  owner: string;
  replace?: { contentType: string; headers: Record<string, string>; userMeta: Record<string, string> };
  condition?: WriteCondition;
}

/** S3 object semantics for one cluster. */
export class ObjectService {
  readonly #options: ObjectServiceOptions;
  readonly #consensus: Consensus;
  readonly #chunks: ChunkStore;
  readonly #stamper: MonotonicStamper;

  constructor(options: ObjectServiceOptions, deps: ObjectServiceDeps) {
    assert(options.inlineMaxBytes <= options.chunkSizeBytes, 'inline limit above chunk size');
    assert(options.chunkSizeBytes > 0, 'chunk size must be positive');
    this.#options = options;
    this.#consensus = deps.consensus;
    this.#chunks = deps.chunks;
    this.#stamper = new MonotonicStamper(deps.clock);
  }

  async listBuckets(): Promise<BucketRecord[]> {
    await this.#consensus.readBarrier();
    return this.#consensus.reader.listBuckets();
  }

  async createBucket(bucket: BucketRecord): Promise<void> {
    await this.#commit({ type: 'CreateBucket', bucket });
  }

  /** The bucket's record; META_ERR_NO_SUCH_BUCKET when it does not exist. */
  async getBucket(name: string): Promise<BucketRecord> {
    await this.#consensus.readBarrier();
    const bucket = await this.#consensus.reader.getBucket(name);
    if (!bucket) throw noSuchBucket(name);
    return bucket;
  }

  async deleteBucket(name: string): Promise<void> {
    await this.#commit({ type: 'DeleteBucket', bucket: name });
  }

  /** The object's manifest; META_ERR_NO_SUCH_BUCKET or META_ERR_NO_SUCH_KEY when absent. */
  async getObject(bucket: string, key: string): Promise<ObjectRecord> {
    await this.#consensus.readBarrier();
    const reader = this.#consensus.reader;
    const object = await reader.getObject(bucket, key);
    if (object) return object;
    if (!(await reader.getBucket(bucket))) throw noSuchBucket(bucket);
    throw new StoreError(META_ERR_NO_SUCH_KEY, `no such key ${key}`, { bucket, key });
  }

  async listObjects(bucket: string, query: ListQuery): Promise<ListPage> {
    await this.getBucket(bucket);
    return this.#consensus.reader.listObjects(bucket, query);
  }

  /** Stores an object; resolves with its manifest once it is durable and visible. */
  async putObject(input: PutObjectInput): Promise<ObjectRecord> {
    // Fail fast, before reading a byte, when the bucket is missing.
    await this.getBucket(input.bucket);
    const { data, sizeBytes } = await this.#storeBody(input.body, input.declaredSizeBytes);
    const digests = await input.finalize(sizeBytes);
    const lastModifiedMs = this.#stamper.next();
    const object: ObjectRecord = {
      sizeBytes,
      etag: digests.etag,
      lastModifiedMs,
      writeId: randomUUID(),
      owner: input.owner,
      contentType: input.contentType,
      headers: input.headers,
      userMeta: input.userMeta,
      data,
      ...(digests.checksum ? { checksum: digests.checksum } : {}),
    };
    await this.#commit({ type: 'PutObject', bucket: input.bucket, key: input.key, object, ...condition(input.condition) }, lastModifiedMs);
    return object;
  }

  /** Copies by reference: the new manifest points at the source's chunks, no bytes move. */
  async copyObject(input: CopyObjectInput): Promise<ObjectRecord> {
    const lastModifiedMs = this.#stamper.next();
    const meta = input.replace ?? {
      contentType: input.source.contentType,
      headers: input.source.headers,
      userMeta: input.source.userMeta,
    };
    const object: ObjectRecord = { ...input.source, ...meta, lastModifiedMs, writeId: randomUUID(), owner: input.owner };
    await this.#commit({ type: 'PutObject', bucket: input.bucket, key: input.key, object, ...condition(input.condition) }, lastModifiedMs);
    return object;
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.#commit({ type: 'DeleteObject', bucket, key });
  }

  /** Deletes many keys in one command; deleting a missing key succeeds, as in S3. */
  async deleteObjects(bucket: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#commit({ type: 'DeleteObjects', bucket, keys });
  }

  /**
   * Streams bytes [start, endInclusive] of an object, chunk by chunk, each verified against its
   * id by the chunk store. A corrupt or missing chunk ends the stream with an error.
   */
  async *readObject(object: ObjectRecord, start: number, endInclusive: number): AsyncGenerator<Buffer> {
    assert(start >= 0 && start <= endInclusive + 1, 'bad range start');
    assert(endInclusive < object.sizeBytes, 'range past the end');
    if (start > endInclusive) return;
    if (object.data.kind === 'inline') {
      yield Buffer.from(object.data.base64, 'base64').subarray(start, endInclusive + 1);
      return;
    }
    let offset = 0;
    for (const chunk of object.data.chunks) {
      const chunkEnd = offset + chunk.sizeBytes - 1;
      if (chunkEnd >= start && offset <= endInclusive) {
        const bytes = await this.#chunks.get(chunk.id);
        assert(bytes.length === chunk.sizeBytes, `chunk ${chunk.id} has the wrong size`);
        yield bytes.subarray(Math.max(0, start - offset), Math.min(chunk.sizeBytes, endInclusive - offset + 1));
      }
      offset += chunk.sizeBytes;
      if (offset > endInclusive) break;
    }
  }

  async #commit(op: MetaOp, stampMs = this.#stamper.next()): Promise<ApplyResult> {
    const result = await this.#consensus.propose(op, stampMs);
    if (!result.ok) throw new StoreError(result.code, result.message, result.meta ?? {});
    return result;
  }

  /** Reads the body into chunks (or inline bytes), enforcing the size limits. */
  async #storeBody(body: AsyncIterable<Uint8Array>, declared: number | undefined): Promise<{ data: ObjectData; sizeBytes: number }> {
    const { chunkSizeBytes, inlineMaxBytes, objectSizeBytesMax } = this.#options;
    if (declared !== undefined && declared > objectSizeBytesMax) throw tooLarge(declared, objectSizeBytesMax);
    const chunks: ChunkRef[] = [];
    const inFlight: Promise<void>[] = [];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let sizeBytes = 0;
    // The first failed chunk write. Writes are settled into this instead of being left as
    // rejected promises nobody awaits yet (which would crash the process as unhandled).
    let writeError: { err: unknown } | undefined;

    const flush = async (bytes: Buffer): Promise<void> => {
      const id = createHash('sha256').update(bytes).digest('hex');
      chunks.push({ id, sizeBytes: bytes.length });
      inFlight.push(
        this.#chunks.put(id, bytes).then(undefined, (err: unknown) => {
          writeError ??= { err };
        }),
      );
      if (inFlight.length >= CHUNK_WRITES_IN_FLIGHT_MAX) await inFlight.shift();
      if (writeError) throw writeError.err;
    };

    try {
      for await (const piece of body) {
        sizeBytes += piece.byteLength;
        if (sizeBytes > objectSizeBytesMax) throw tooLarge(sizeBytes, objectSizeBytesMax);
        pending.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
        pendingBytes += piece.byteLength;
        while (pendingBytes >= chunkSizeBytes) {
          const all = Buffer.concat(pending, pendingBytes);
          await flush(all.subarray(0, chunkSizeBytes));
          pending = pendingBytes > chunkSizeBytes ? [all.subarray(chunkSizeBytes)] : [];
          pendingBytes -= chunkSizeBytes;
        }
      }
      if (declared !== undefined && sizeBytes !== declared) {
        throw new StoreError(OBJ_ERR_INCOMPLETE_BODY, `body has ${sizeBytes} bytes, ${declared} declared`);
      }
      const rest = Buffer.concat(pending, pendingBytes);
      if (chunks.length === 0 && sizeBytes <= inlineMaxBytes) {
        return { data: { kind: 'inline', base64: rest.toString('base64') }, sizeBytes };
      }
      if (rest.length > 0) await flush(rest);
    } finally {
      // Let outstanding writes settle, on failure too, so none races the caller's cleanup; the
      // chunks of a failed upload are unreferenced and left to garbage collection.
      await Promise.all(inFlight.splice(0));
    }
    if (writeError) throw writeError.err;
    assert(chunks.reduce((n, c) => n + c.sizeBytes, 0) === sizeBytes, 'chunks do not add up to the object size');
    return { data: { kind: 'chunks', chunks }, sizeBytes };
  }
}

function condition(cond: WriteCondition | undefined): { condition?: WriteCondition } {
  return cond && (cond.ifMatchEtag !== undefined || cond.ifNoneMatchAny) ? { condition: cond } : {};
}

function noSuchBucket(bucket: string): StoreError {
  return new StoreError(META_ERR_NO_SUCH_BUCKET, `no such bucket ${bucket}`, { bucket });
}

function tooLarge(size: number, max: number): StoreError {
  return new StoreError(OBJ_ERR_TOO_LARGE, `object of ${size} bytes exceeds ${max}`, { size, max });
}
