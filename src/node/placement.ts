/**
 * Builds the data path's ChunkPlacement from committed node records. Until the consistent-hash
 * ring of src/placement/ lands this uses weighted rendezvous hashing (highest random weight),
 * which has the same contract: deterministic for the same membership, R distinct owners,
 * minimal movement when a node joins or leaves.
 */
import { createHash } from 'node:crypto';
import type { ChunkPlacement } from '../chunks/cluster-chunk-store.ts';
import type { NodeRecord, ReplicationSettings } from '../meta/types.ts';

/** Placement over `nodes` with the cluster's replication settings (R and W capped at the node count). */
export function buildPlacement(nodes: NodeRecord[], replication: ReplicationSettings): ChunkPlacement {
  const ids = nodes.map((n) => n.nodeId).sort((a, b) => a - b);
  const weights = new Map(nodes.map((n) => [n.nodeId, n.weight]));
  const r = Math.min(replication.replicationFactor, ids.length);
  const w = Math.min(replication.writeQuorum, r);
  return {
    replicationFactor: r,
    writeQuorum: w,
    nodes: () => [...ids],
    owners(chunkId: string, count: number): number[] {
      const scored = ids.map((id) => {
        const h = createHash('sha256').update(`${chunkId}/${id}`).digest().readUInt32BE(0);
        // Weighted rendezvous: -w / ln(u) with u uniform in (0, 1).
        const u = (h + 1) / 0x1_0000_0002;
        return { id, score: -(weights.get(id) ?? 1) / Math.log(u) };
      });
      scored.sort((a, b) => b.score - a.score || a.id - b.id);
      return scored.slice(0, Math.min(count, ids.length)).map((s) => s.id);
    },
  };
}
