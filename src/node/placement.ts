/**
 * Builds the data path's ChunkPlacement from committed node records: the consistent-hash ring of
 * src/placement/ (virtual nodes, weights, zones) plus the cluster's replication settings, with
 * R and W capped at the node count.
 */
import type { ChunkPlacement } from '../chunks/cluster-chunk-store.ts';
import type { NodeRecord, ReplicationSettings } from '../meta/types.ts';
import { effectiveR, effectiveW, type OwnerRange, Ring, tokenRanges } from '../placement/index.ts';

/** Placement over `nodes`; every node with the same records builds the same ring. */
export function buildPlacement(nodes: NodeRecord[], replication: ReplicationSettings, version = 0): ChunkPlacement {
  const ring = new Ring({
    version,
    nodes: nodes.map((n) => ({ id: n.nodeId, weight: n.weight, ...(n.zone ? { zone: n.zone } : {}) })),
  });
  const replicationFactor = effectiveR(replication, ring.nodeCount);
  // Computed on first use (anti-entropy), then kept: one walk per token.
  let ranges: OwnerRange[] | undefined;
  return {
    owners: (chunkId, r) => ring.owners(chunkId, r),
    nodes: () => ring.nodes(),
    replicationFactor,
    writeQuorum: effectiveW(replication, ring.nodeCount),
    ranges: () => {
      ranges ??= tokenRanges(ring, replicationFactor);
      return ranges;
    },
  };
}
