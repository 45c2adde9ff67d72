/**
 * Builds the data path's ChunkPlacement from committed node records: the consistent-hash ring of
 * src/placement/ (virtual nodes, weights, zones) plus the cluster's replication settings, with
 * R and W capped at the node count.
 */
import type { ChunkPlacement } from '../chunks/cluster-chunk-store.ts';
import type { NodeRecord, ReplicationSettings } from '../meta/types.ts';
import { effectiveR, effectiveW, Ring } from '../placement/index.ts';

/** Placement over `nodes`; every node with the same records builds the same ring. */
export function buildPlacement(nodes: NodeRecord[], replication: ReplicationSettings, version = 0): ChunkPlacement {
  const ring = new Ring({
    version,
    nodes: nodes.map((n) => ({ id: n.nodeId, weight: n.weight, ...(n.zone ? { zone: n.zone } : {}) })),
  });
  return {
    owners: (chunkId, r) => ring.owners(chunkId, r),
    nodes: () => ring.nodes(),
    replicationFactor: effectiveR(replication, ring.nodeCount),
    writeQuorum: effectiveW(replication, ring.nodeCount),
  };
}
