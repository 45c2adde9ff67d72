/**
 * Chunk placement: the consistent-hash ring built from the committed membership, the moves
 * between two rings, and the replication settings. Pure: no I/O, clocks or randomness, so every
 * node computes the same placement from the same membership.
 */
export { type ChunkMoves, diffRings, type MoveSummary, RingDiff } from './diff.ts';
export { CHUNK_ID_HEX_LENGTH, chunkPosition, isChunkId, NODE_ID_MAX, RING_SIZE, vnodeToken } from './hash.ts';
export { RING_NODES_MAX, RING_TOKENS_MAX, VNODES_PER_WEIGHT, WEIGHT_MAX, ZONE_LENGTH_MAX } from './limits.ts';
export { type RingMembership, type RingNode, validateMembership } from './membership.ts';
export {
  DEFAULT_REPLICATION_FACTOR,
  DEFAULT_REPLICATION_SETTINGS,
  effectiveR,
  effectiveW,
  majority,
  REPLICATION_FACTOR_MAX,
  type ReplicationSettings,
  validateReplicationSettings,
} from './replication.ts';
export { Ring } from './ring.ts';
export { type OwnerRange, ownerRanges, ownershipShares, rangeLength, tokenRanges } from './shares.ts';
