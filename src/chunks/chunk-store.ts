/**
 * ChunkStore: content-addressed storage of object bytes. A chunk's id is the lowercase hex
 * sha256 of its bytes, so a chunk is immutable, deduplicated for free, and verifiable on read.
 */
import { createHash } from 'node:crypto';

/** The chunk-id check the ring uses (64 lowercase hex digits), re-exported for chunk code. */
export { isChunkId } from '../placement/index.ts';

/** Stable error codes of chunk storage. */
export const CHUNK_ERR_NOT_FOUND = 'CHUNK_ERR_NOT_FOUND';
export const CHUNK_ERR_CORRUPT = 'CHUNK_ERR_CORRUPT';
export const CHUNK_ERR_HASH_MISMATCH = 'CHUNK_ERR_HASH_MISMATCH';
export const CHUNK_ERR_TOO_LARGE = 'CHUNK_ERR_TOO_LARGE';
/** A streamed chunk body was longer or shorter than declared. */
export const CHUNK_ERR_SIZE_MISMATCH = 'CHUNK_ERR_SIZE_MISMATCH';
export const CHUNK_ERR_CLOSED = 'CHUNK_ERR_CLOSED';

/** Largest chunk any store accepts; chunks are held in memory whole, so this bounds memory. */
export const CHUNK_SIZE_BYTES_MAX = 16 * 1024 * 1024;

/** Options of ChunkStore.put. */
export interface ChunkPutOptions {
  /**
   * Called once, when nothing reads `data` any more: after the put settled and, for a
   * replicated put (which resolves at W acknowledgements), after every owner's copy settled.
   * The caller may reuse the buffer from then on, not before.
   */
  onBytesReleased?: () => void;
}

/** Durable, verified storage of immutable chunks. */
export interface ChunkStore {
  /**
   * Stores `data` under `id` and resolves only once it is durable (fsynced). Verifies that
   * sha256(data) is `id` first (CHUNK_ERR_HASH_MISMATCH), unless this very buffer was hashed to
   * `id` by hashChunk() in this process. Storing an existing chunk is a no-op.
   */
  put(id: string, data: Uint8Array, options?: ChunkPutOptions): Promise<void>;
  /** Reads a chunk and verifies its hash; CHUNK_ERR_NOT_FOUND or CHUNK_ERR_CORRUPT otherwise. */
  get(id: string): Promise<Buffer>;
  /**
   * Like get, into a buffer the store recycles once the caller calls release() (optional; get
   * serves without it). A fresh buffer per 4 MiB chunk costs this project's VMs more CPU than
   * reading and hashing it: page faults and the collections external-memory growth sets off.
   */
  read?(id: string): Promise<ChunkBytes>;
  has(id: string): Promise<boolean>;
  /** Removes a chunk; removing a missing chunk is a no-op. */
  delete(id: string): Promise<void>;
  /** Every stored chunk id, in no particular order. */
  list(): AsyncIterable<string>;
  close(): Promise<void>;
}

/** A chunk's bytes in a recycled buffer, with the way back for the buffer. */
export interface ChunkBytes {
  bytes: Buffer;
  /** Call once nothing refers to `bytes` any more (or never, when unsure); twice is harmless. */
  release(): void;
}

/** Buffers hashed by hashChunk, with their id, until a store takes them (takeHashedId). */
const hashedHere = new WeakMap<Uint8Array, string>();

/**
 * The chunk id of `data`, remembered for the first local store that takes this very buffer
 * object: the chunker hashes each chunk once, and the store it hands the buffer to a moment
 * later trusts that instead of hashing the same bytes again (sha256 is the biggest CPU cost of
 * a large PUT). Bytes from the network are never registered: every store hashes those itself.
 * A caller must not change the bytes between hashChunk and put.
 */
export function hashChunk(data: Uint8Array): string {
  const id = createHash('sha256').update(data).digest('hex');
  hashedHere.set(data, id);
  return id;
}

/** The id hashChunk computed for this buffer object, once (the registration is consumed). */
export function takeHashedId(data: Uint8Array): string | undefined {
  const id = hashedHere.get(data);
  if (id !== undefined) hashedHere.delete(data);
  return id;
}

