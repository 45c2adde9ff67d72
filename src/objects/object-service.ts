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
import { randomBytes, randomUUID } from 'node:crypto';
import { type ChunkBytes, type ChunkStore, hashChunk } from '../chunks/chunk-store.ts';
import type { Consensus } from '../consensus/types.ts';
import { META_ERR_NO_SUCH_BUCKET, META_ERR_NO_SUCH_KEY, META_ERR_NO_SUCH_UPLOAD, META_ERR_UPLOAD_CHANGED } from '../meta/errors.ts';
import { checkCompletion, PART_SIZE_BYTES_MIN, sameCompletion } from '../meta/multipart.ts';
import type {
  AclGrant,
  ApplyResult,
  BucketPolicy,
  BucketRecord,
  ChecksumAlgorithm,
  ChunkRef,
  CompletePart,
  CompletionRecord,
  CorsRule,
  ListPage,
  ListQuery,
  MetaOp,
  ObjectData,
  ObjectOwnership,
  ObjectRecord,
  PartRecord,
  StoredChecksum,
  Tag,
  UploadListPage,
  UploadListQuery,
  UploadRecord,
  WriteCondition,
} from '../meta/types.ts';
import { assert } from '../util/assert.ts';
import { ByteBudget } from '../util/byte-budget.ts';
import { type Clock, MonotonicStamper } from '../util/clock.ts';
import { StoreError } from '../util/errors.ts';
import { OBJ_ERR_INCOMPLETE_BODY, OBJ_ERR_TOO_LARGE } from './errors.ts';

/** Chunk writes of one upload that may be outstanding while the next chunk is read. */
export const CHUNK_WRITES_IN_FLIGHT_MAX = 2;
/** Whole-chunk buffers kept for reuse by the chunker (see ObjectService#spareChunkBuffers). */
export const CHUNK_BUFFERS_KEPT_MAX = 8;

/** Tunables of the object layer. */
export interface ObjectServiceOptions {
  chunkSizeBytes: number;
  inlineMaxBytes: number;
  objectSizeBytesMax: number;
  /** Smallest part but the last of a multipart upload; S3's 5 MiB unless a test lowers it. */
  partSizeBytesMin?: number;
  /** Bytes of chunk buffers all uploads together may hold (default CHUNK_BUFFER_BYTES_MAX). */
  chunkBufferBytesMax?: number;
}

/**
 * Chunk buffers all uploads of a node may hold at once: uploads past it wait (and stop reading
 * their sockets) until earlier chunks are stored. Keeps the server's memory bounded however many
 * parts are uploaded in parallel.
 */
export const CHUNK_BUFFER_BYTES_MAX = 64 * 1024 * 1024;

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
  tags?: Tag[];
  /** The new object's ACL grants; absent: private. */
  acl?: AclGrant[];
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
  /** Where the source lives; the copy is refused if that version is gone when it is ordered. */
  sourceBucket: string;
  sourceKey: string;
  bucket: string;
  key: string;
  owner: string;
  replace?: { contentType: string; headers: Record<string, string>; userMeta: Record<string, string> };
  /** Tags of the copy (x-amz-tagging-directive REPLACE); the source's tags otherwise. */
  tags?: Tag[];
  /** The copy's ACL grants: never the source's (S3 does not copy ACLs); absent: private. */
  acl?: AclGrant[];
  condition?: WriteCondition;
}

/** A CreateMultipartUpload request. */
export interface CreateUploadInput {
  bucket: string;
  key: string;
  owner: string;
  contentType: string;
  headers: Record<string, string>;
  userMeta: Record<string, string>;
  tags?: Tag[];
  /** The ACL the completed object gets; absent: private. */
  acl?: AclGrant[];
  checksumAlgorithm?: ChecksumAlgorithm;
  checksumType?: 'FULL_OBJECT' | 'COMPOSITE';
}

/** An UploadPart (or UploadPartCopy, whose body is the source range) request. */
export interface UploadPartInput {
  bucket: string;
  key: string;
  uploadId: string;
  partNumber: number;
  body: AsyncIterable<Uint8Array>;
  declaredSizeBytes?: number;
  /** Verifies the bytes seen and returns their digests, as PutObjectInput.finalize; gets the upload. */
  finalize(sizeBytes: number, upload: UploadRecord): Promise<BodyDigests> | BodyDigests;
}

/** A CompleteMultipartUpload request. */
export interface CompleteUploadInput {
  bucket: string;
  key: string;
  uploadId: string;
  parts: CompletePart[];
  condition?: WriteCondition;
  /** The object's ETag and checksum from its parts (S3 formulas live in the wire layer). */
  summarize(upload: UploadRecord, parts: readonly PartRecord[]): { etag: string; checksum?: StoredChecksum };
}

/** One page of ListParts. */
export interface PartsPage {
  upload: UploadRecord;
  parts: PartRecord[];
  isTruncated: boolean;
}

/** How many times a completion is rebuilt when a part is re-uploaded while it completes. */
const COMPLETE_ATTEMPTS_MAX = 3;

/** S3 object semantics for one cluster. */
export class ObjectService {
  readonly #options: ObjectServiceOptions;
  readonly #consensus: Consensus;
  readonly #chunks: ChunkStore;
  readonly #stamper: MonotonicStamper;
  readonly #buffers: ByteBudget;
  /**
   * Whole-chunk buffers whose bytes every store has finished reading, kept for the next chunk:
   * fresh 4 MiB buffers cost page faults and garbage collections that, on a VM, weighed more
   * than copying the bytes into them (64 MiB PUT profile: 13% of the node's CPU in the copy).
   * Idle ones are not counted in #buffers (at most CHUNK_BUFFERS_KEPT_MAX of them).
   */
  readonly #spareChunkBuffers: Buffer[] = [];

  constructor(options: ObjectServiceOptions, deps: ObjectServiceDeps) {
    assert(options.inlineMaxBytes <= options.chunkSizeBytes, 'inline limit above chunk size');
    assert(options.chunkSizeBytes > 0, 'chunk size must be positive');
    this.#options = options;
    this.#consensus = deps.consensus;
    this.#chunks = deps.chunks;
    this.#stamper = new MonotonicStamper(deps.clock);
    this.#buffers = new ByteBudget(options.chunkBufferBytesMax ?? CHUNK_BUFFER_BYTES_MAX);
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

  /**
   * Waits until this node has applied every change acknowledged before the call (a linearizable
   * read point). Authorization passes one per request, then reads with the *AfterBarrier methods,
   * so that a policy Deny, a private ACL or BucketOwnerEnforced acknowledged through any node
   * binds the next request on every node, for the price of one consensus round.
   */
  async readBarrier(): Promise<void> {
    await this.#consensus.readBarrier();
  }

  /** The bucket's record, read locally by a caller that passed readBarrier() for this request. */
  async bucketAfterBarrier(name: string): Promise<BucketRecord> {
    const bucket = await this.#consensus.reader.getBucket(name);
    if (!bucket) throw noSuchBucket(name);
    return bucket;
  }

  async deleteBucket(name: string): Promise<void> {
    await this.#commit({ type: 'DeleteBucket', bucket: name });
  }

  /**
   * Fails fast, before a write reads a byte, when the bucket is missing. A local read that finds
   * the bucket is enough (apply checks it again in log order, so a write never lands in a deleted
   * bucket); only a miss pays for a read barrier, since the bucket may have just been created
   * through another node. This saves a consensus round trip on every write.
   */
  async #requireBucket(bucket: string): Promise<void> {
    if (await this.#consensus.reader.getBucket(bucket)) return;
    await this.getBucket(bucket);
  }

  /** The object's manifest; META_ERR_NO_SUCH_BUCKET or META_ERR_NO_SUCH_KEY when absent. */
  async getObject(bucket: string, key: string): Promise<ObjectRecord> {
    await this.#consensus.readBarrier();
    return this.getObjectAfterBarrier(bucket, key);
  }

  /** getObject for a caller that passed readBarrier() for this request already. */
  async getObjectAfterBarrier(bucket: string, key: string): Promise<ObjectRecord> {
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
    await this.#requireBucket(input.bucket);
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
      ...(input.tags && input.tags.length > 0 ? { tags: input.tags } : {}),
      ...(input.acl ? { acl: input.acl } : {}),
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
    // Not the source's upload id: the copy is a new object, no completion record is its.
    // Nor its ACL: a copy gets the ACL of its request (private by default), as in S3.
    const { tags: sourceTags, uploadId: _sourceUpload, acl: _sourceAcl, ...source } = input.source;
    const tags = input.tags ?? sourceTags;
    const object: ObjectRecord = {
      ...source,
      ...meta,
      lastModifiedMs,
      writeId: randomUUID(),
      owner: input.owner,
      ...(tags && tags.length > 0 ? { tags } : {}),
      ...(input.acl ? { acl: input.acl } : {}),
    };
    const copySource = { bucket: input.sourceBucket, key: input.sourceKey, writeId: input.source.writeId };
    await this.#commit({ type: 'PutObject', bucket: input.bucket, key: input.key, object, copySource, ...condition(input.condition) }, lastModifiedMs);
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

  /** Replaces an object's tag set (empty deletes it); the object's bytes and ETag stay. */
  async putObjectTagging(bucket: string, key: string, tags: Tag[]): Promise<void> {
    await this.#commit({ type: 'PutObjectTagging', bucket, key, tags });
  }

  /** Replaces (or with null removes) a bucket's tag set. */
  async putBucketTagging(bucket: string, tags: Tag[] | null): Promise<void> {
    await this.#commit({ type: 'PutBucketTagging', bucket, tags });
  }

  /** Replaces a bucket's ACL. */
  async putBucketAcl(bucket: string, acl: AclGrant[]): Promise<void> {
    await this.#commit({ type: 'PutBucketAcl', bucket, acl });
  }

  /** Replaces an object's ACL; its bytes, ETag and metadata stay. */
  async putObjectAcl(bucket: string, key: string, acl: AclGrant[]): Promise<void> {
    await this.#commit({ type: 'PutObjectAcl', bucket, key, acl });
  }

  /** Replaces (or with null removes) a bucket's policy. */
  async putBucketPolicy(bucket: string, policy: BucketPolicy | null): Promise<void> {
    await this.#commit({ type: 'PutBucketPolicy', bucket, policy });
  }

  /** Sets (or with null removes) a bucket's Object Ownership. */
  async putBucketOwnershipControls(bucket: string, ownership: ObjectOwnership | null): Promise<void> {
    await this.#commit({ type: 'PutBucketOwnershipControls', bucket, ownership });
  }

  /** Replaces (or with null removes) a bucket's CORS rules. */
  async putBucketCors(bucket: string, rules: CorsRule[] | null): Promise<void> {
    await this.#commit({ type: 'PutBucketCors', bucket, rules });
  }

  // -------------------------------------------------------------------------------------------
  // Multipart upload. Parts are stored as chunks like any body; completion proposes ONE command
  // whose object points at the parts' chunks in order, so no byte is copied and readers see the
  // old object or the new one, never a mix.

  /** Starts an upload; its id sorts by initiation time and is visible in listings at once. */
  async createMultipartUpload(input: CreateUploadInput): Promise<UploadRecord> {
    await this.#requireBucket(input.bucket);
    const initiatedMs = this.#stamper.next();
    const upload: UploadRecord = {
      uploadId: `${initiatedMs.toString(16).padStart(12, '0')}${randomBytes(16).toString('hex')}`,
      initiatedMs,
      owner: input.owner,
      contentType: input.contentType,
      headers: input.headers,
      userMeta: input.userMeta,
      ...(input.tags && input.tags.length > 0 ? { tags: input.tags } : {}),
      ...(input.acl ? { acl: input.acl } : {}),
      ...(input.checksumAlgorithm ? { checksumAlgorithm: input.checksumAlgorithm, checksumType: input.checksumType ?? 'COMPOSITE' } : {}),
    };
    await this.#commit({ type: 'CreateMultipartUpload', bucket: input.bucket, key: input.key, upload }, initiatedMs);
    return upload;
  }

  /** The upload's record; NoSuchBucket / NoSuchUpload when absent (completed and aborted included). */
  async getUpload(bucket: string, key: string, uploadId: string): Promise<UploadRecord> {
    await this.#consensus.readBarrier();
    const upload = await this.#consensus.reader.getUpload(bucket, key, uploadId);
    if (upload) return upload;
    if (!(await this.#consensus.reader.getBucket(bucket))) throw noSuchBucket(bucket);
    throw noSuchUpload(uploadId);
  }

  /** Stores one part (replacing an earlier one of the same number). */
  async uploadPart(input: UploadPartInput): Promise<PartRecord> {
    const upload = await this.getUpload(input.bucket, input.key, input.uploadId);
    const { chunks, sizeBytes } = await this.#storeChunks(input.body, input.declaredSizeBytes);
    const digests = await input.finalize(sizeBytes, upload);
    const lastModifiedMs = this.#stamper.next();
    const part: PartRecord = {
      partNumber: input.partNumber,
      sizeBytes,
      etag: digests.etag,
      lastModifiedMs,
      writeId: randomUUID(),
      data: { kind: 'chunks', chunks },
      ...(digests.checksum ? { checksum: { algorithm: digests.checksum.algorithm, value: digests.checksum.value } } : {}),
    };
    await this.#commit({ type: 'PutPart', bucket: input.bucket, key: input.key, uploadId: input.uploadId, part }, lastModifiedMs);
    return part;
  }

  /**
   * Completes an upload: checks the part list against the stored parts, builds the object from
   * them, and proposes it; apply re-checks against the parts then stored. A retry of a completion
   * that already succeeded with the same parts gets the same answer.
   */
  async completeMultipartUpload(input: CompleteUploadInput): Promise<CompletionRecord> {
    const minBytes = this.#options.partSizeBytesMin ?? PART_SIZE_BYTES_MIN;
    for (let attempt = 1; ; attempt++) {
      await this.#consensus.readBarrier();
      const reader = this.#consensus.reader;
      const upload = await reader.getUpload(input.bucket, input.key, input.uploadId);
      if (!upload) {
        if (!(await reader.getBucket(input.bucket))) throw noSuchBucket(input.bucket);
        const done = await reader.getCompletion(input.bucket, input.key, input.uploadId);
        if (done && sameCompletion(done.parts, input.parts)) return done;
        throw noSuchUpload(input.uploadId);
      }
      const stored = await reader.listParts(input.bucket, input.key, input.uploadId, 0, 10_000);
      const check = checkCompletion(input.parts, new Map(stored.map((p) => [p.partNumber, p])), minBytes);
      if (!check.ok) throw new StoreError(check.code, check.message, check.meta ?? {});
      const { etag, checksum } = input.summarize(upload, check.parts);
      const lastModifiedMs = this.#stamper.next();
      const object: ObjectRecord = {
        sizeBytes: check.parts.reduce((n, p) => n + p.sizeBytes, 0),
        etag,
        lastModifiedMs,
        writeId: randomUUID(),
        owner: upload.owner,
        contentType: upload.contentType,
        headers: upload.headers,
        userMeta: upload.userMeta,
        data: { kind: 'chunks', chunks: check.parts.flatMap((p) => p.data.chunks) },
        parts: check.parts.map((p) => ({
          partNumber: p.partNumber,
          sizeBytes: p.sizeBytes,
          ...(p.checksum && p.checksum.algorithm === upload.checksumAlgorithm ? { checksum: p.checksum.value } : {}),
        })),
        ...(checksum ? { checksum } : {}),
        ...(upload.tags ? { tags: upload.tags } : {}),
        ...(upload.acl ? { acl: upload.acl } : {}),
      };
      const parts = input.parts.map((p, i) => ({ ...p, writeId: check.parts[i]!.writeId }));
      const op: MetaOp = {
        type: 'CompleteMultipartUpload',
        bucket: input.bucket,
        key: input.key,
        uploadId: input.uploadId,
        parts,
        partSizeBytesMin: minBytes,
        object,
        ...condition(input.condition),
      };
      const result = await this.#consensus.propose(op, lastModifiedMs);
      if (!result.ok && result.code === META_ERR_UPLOAD_CHANGED && attempt < COMPLETE_ATTEMPTS_MAX) continue;
      if (!result.ok) throw new StoreError(result.code, result.message, result.meta ?? {});
      assert(result.value?.kind === 'CompleteMultipartUpload', 'completion result');
      return result.value.completion;
    }
  }

  /** Aborts an upload; its parts' chunks become garbage (collected by chunk GC, a later issue). */
  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    await this.#commit({ type: 'AbortMultipartUpload', bucket, key, uploadId });
  }

  /** One page of an upload's parts above `partNumberMarker`. */
  async listParts(bucket: string, key: string, uploadId: string, partNumberMarker: number, maxParts: number): Promise<PartsPage> {
    const upload = await this.getUpload(bucket, key, uploadId);
    const parts = await this.#consensus.reader.listParts(bucket, key, uploadId, partNumberMarker, maxParts + 1);
    // max-parts=0 is an empty page that is not truncated, as S3 answers max-keys=0.
    const isTruncated = maxParts > 0 && parts.length > maxParts;
    return { upload, parts: parts.slice(0, maxParts), isTruncated };
  }

  /** One page of a bucket's in-progress uploads. */
  async listUploads(bucket: string, query: UploadListQuery): Promise<UploadListPage> {
    await this.getBucket(bucket);
    return this.#consensus.reader.listUploads(bucket, query);
  }

  /**
   * Streams bytes [start, endInclusive] of an object, chunk by chunk, each verified against its
   * id by the chunk store. A corrupt or missing chunk ends the stream with an error.
   */
  async *readObject(object: ObjectRecord, start: number, endInclusive: number): AsyncGenerator<Buffer> {
    // The pieces' buffers are never released here: they are the consumer's to keep.
    for await (const piece of this.readObjectPieces(object, start, endInclusive)) yield piece.bytes;
  }

  /**
   * readObject for consumers that say when they are done with each piece: its buffer is the
   * chunk store's to recycle once release() is called (e.g. when the socket write completed).
   */
  async *readObjectPieces(object: ObjectRecord, start: number, endInclusive: number): AsyncGenerator<ChunkBytes> {
    assert(start >= 0 && start <= endInclusive + 1, 'bad range start');
    assert(endInclusive < object.sizeBytes, 'range past the end');
    if (start > endInclusive) return;
    if (object.data.kind === 'inline') {
      yield { bytes: Buffer.from(object.data.base64, 'base64').subarray(start, endInclusive + 1), release: () => undefined };
      return;
    }
    let offset = 0;
    for (const chunk of object.data.chunks) {
      const chunkEnd = offset + chunk.sizeBytes - 1;
      if (chunkEnd >= start && offset <= endInclusive) {
        const read = this.#chunks.read ? await this.#chunks.read(chunk.id) : { bytes: await this.#chunks.get(chunk.id), release: () => undefined };
        assert(read.bytes.length === chunk.sizeBytes, `chunk ${chunk.id} has the wrong size`);
        yield { bytes: read.bytes.subarray(Math.max(0, start - offset), Math.min(chunk.sizeBytes, endInclusive - offset + 1)), release: read.release };
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

  /** Reads the body into chunks (or inline bytes, when small enough), enforcing the size limits. */
  async #storeBody(body: AsyncIterable<Uint8Array>, declared: number | undefined): Promise<{ data: ObjectData; sizeBytes: number }> {
    const { chunks, sizeBytes, inline } = await this.#chunkBody(body, declared, this.#options.inlineMaxBytes);
    if (inline) return { data: { kind: 'inline', base64: inline.toString('base64') }, sizeBytes };
    return { data: { kind: 'chunks', chunks }, sizeBytes };
  }

  /** Reads the body into chunks only (multipart parts: completion concatenates chunk lists). */
  async #storeChunks(body: AsyncIterable<Uint8Array>, declared: number | undefined): Promise<{ chunks: ChunkRef[]; sizeBytes: number }> {
    const { chunks, sizeBytes, inline } = await this.#chunkBody(body, declared, -1);
    assert(inline === undefined, 'parts are never inline');
    return { chunks, sizeBytes };
  }

  /**
   * The chunker: cuts the body into chunks of chunkSizeBytes, hashes and stores each with a
   * bounded number of writes in flight. A body of at most `inlineMaxBytes` comes back as bytes
   * instead (pass -1 to always chunk).
   */
  async #chunkBody(
    body: AsyncIterable<Uint8Array>,
    declared: number | undefined,
    inlineMaxBytes: number,
  ): Promise<{ chunks: ChunkRef[]; sizeBytes: number; inline?: Buffer }> {
    const { chunkSizeBytes, objectSizeBytesMax } = this.#options;
    if (declared !== undefined && declared > objectSizeBytesMax) throw tooLarge(declared, objectSizeBytesMax);
    const chunks: ChunkRef[] = [];
    const inFlight: Promise<void>[] = [];
    // Bytes are copied once, straight into the chunk being filled; a body known to be small
    // gets a buffer of its size instead of a whole chunk's.
    let flushedBytes = 0;
    const capacity = () => (declared === undefined ? chunkSizeBytes : Math.max(1, Math.min(chunkSizeBytes, declared - flushedBytes)));
    let sizeBytes = 0;
    let filled = 0;
    // Every chunk buffer is paid for from the node-wide budget before it is allocated and paid
    // back when its write settles (or, for the buffer being filled, when the upload ends).
    const allocate = async (): Promise<Buffer> => {
      const size = capacity();
      await this.#buffers.acquire(size);
      return (size === chunkSizeBytes ? this.#spareChunkBuffers.pop() : undefined) ?? Buffer.allocUnsafe(size);
    };
    // Gives a buffer back to the budget, and a whole-chunk one to the spares.
    const giveBack = (buffer: Buffer): void => {
      this.#buffers.release(buffer.length);
      if (buffer.length === chunkSizeBytes && this.#spareChunkBuffers.length < CHUNK_BUFFERS_KEPT_MAX) this.#spareChunkBuffers.push(buffer);
    };
    let fill: Buffer | undefined = await allocate();
    // The first failed chunk write. Writes are settled into this instead of being left as
    // rejected promises nobody awaits yet (which would crash the process as unhandled).
    let writeError: { err: unknown } | undefined;

    const flush = async (buffer: Buffer, length: number): Promise<void> => {
      const bytes = buffer.subarray(0, length);
      // Hashed once here; the local store trusts it instead of hashing the same bytes again.
      const id = hashChunk(bytes);
      chunks.push({ id, sizeBytes: bytes.length });
      inFlight.push(
        // The put resolves once the chunk is durable (W copies); the buffer is reused only once
        // every copy stopped reading it.
        this.#chunks.put(id, bytes, { onBytesReleased: () => giveBack(buffer) }).then(
          () => undefined,
          (err: unknown) => {
            writeError ??= { err };
          },
        ),
      );
      if (inFlight.length >= CHUNK_WRITES_IN_FLIGHT_MAX) await inFlight.shift();
      if (writeError) throw writeError.err;
    };

    try {
      for await (const piece of body) {
        sizeBytes += piece.byteLength;
        if (sizeBytes > objectSizeBytesMax) throw tooLarge(sizeBytes, objectSizeBytesMax);
        if (declared !== undefined && sizeBytes > declared) {
          throw new StoreError(OBJ_ERR_INCOMPLETE_BODY, `body is longer than the ${declared} bytes declared`);
        }
        for (let offset = 0; offset < piece.byteLength; ) {
          fill ??= await allocate();
          const n = Math.min(fill.length - filled, piece.byteLength - offset);
          fill.set(piece.subarray(offset, offset + n), filled);
          filled += n;
          offset += n;
          if (filled === chunkSizeBytes) {
            const full = fill;
            fill = undefined;
            filled = 0;
            flushedBytes += chunkSizeBytes;
            await flush(full, chunkSizeBytes);
          }
        }
      }
      if (declared !== undefined && sizeBytes !== declared) {
        throw new StoreError(OBJ_ERR_INCOMPLETE_BODY, `body has ${sizeBytes} bytes, ${declared} declared`);
      }
      if (chunks.length === 0 && sizeBytes <= inlineMaxBytes) {
        return { chunks, sizeBytes, inline: Buffer.from(fill ? fill.subarray(0, filled) : new Uint8Array(0)) };
      }
      if (fill && filled > 0) {
        const last = fill;
        fill = undefined;
        await flush(last, filled);
      }
    } finally {
      if (fill) giveBack(fill);
      // Let outstanding writes settle, on failure too, so none races the caller's cleanup; the
      // chunks of a failed upload are unreferenced and left to garbage collection.
      await Promise.all(inFlight.splice(0));
    }
    if (writeError) throw writeError.err;
    assert(chunks.reduce((n, c) => n + c.sizeBytes, 0) === sizeBytes, 'chunks do not add up to the object size');
    return { chunks, sizeBytes };
  }
}

function condition(cond: WriteCondition | undefined): { condition?: WriteCondition } {
  return cond && (cond.ifMatchEtag !== undefined || cond.ifNoneMatchAny) ? { condition: cond } : {};
}

function noSuchBucket(bucket: string): StoreError {
  return new StoreError(META_ERR_NO_SUCH_BUCKET, `no such bucket ${bucket}`, { bucket });
}

function noSuchUpload(uploadId: string): StoreError {
  return new StoreError(META_ERR_NO_SUCH_UPLOAD, `no such upload ${uploadId}`, { uploadId });
}

function tooLarge(size: number, max: number): StoreError {
  return new StoreError(OBJ_ERR_TOO_LARGE, `object of ${size} bytes exceeds ${max}`, { size, max });
}
