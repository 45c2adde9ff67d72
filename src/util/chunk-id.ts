/**
 * Chunk ids: the sha256 of a chunk's bytes as 64 lowercase hex digits. Here in util/ because every
 * layer that names chunks (placement, chunks, forward, s3's internal endpoint) checks them.
 */

/** Length of a chunk id in hex digits (a sha256 digest). */
export const CHUNK_ID_HEX_LENGTH = 64;

const CHUNK_ID_PATTERN = /^[0-9a-f]{64}$/;

/** Returns true when `chunkId` is a chunk id: 64 lowercase hex digits. */
export function isChunkId(chunkId: string): boolean {
  return CHUNK_ID_PATTERN.test(chunkId);
}
