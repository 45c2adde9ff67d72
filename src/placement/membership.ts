/**
 * The ring's input: the committed data-path membership. Every node builds its ring from the same
 * committed description, so the description alone (never local state, clocks or chance) decides
 * where chunks live.
 */
import { NODE_ID_MAX } from './hash.ts';
import { RING_NODES_MAX, RING_TOKENS_MAX, VNODES_PER_WEIGHT, WEIGHT_MAX, ZONE_LENGTH_MAX } from './limits.ts';

/** One member of the ring. */
export interface RingNode {
  /** Cluster-unique node id (an unsigned 32-bit integer). */
  id: number;
  /** Capacity in whole units; a node of weight 2 gets twice the data of a node of weight 1. */
  weight: number;
  /** Failure domain (rack, zone). A node without one is a failure domain of its own. */
  zone?: string;
}

/** A membership as committed: the nodes that hold chunks, at a version that increases on change. */
export interface RingMembership {
  /** Version of the membership this ring was built from; carried for logs and comparisons. */
  version: number;
  nodes: readonly RingNode[];
}

/**
 * Returns every problem with a membership at once (empty when it is valid). The proposer of a
 * membership change calls this before proposing, so a bad weight is refused at the door instead
 * of crashing every node that later builds the ring.
 */
export function validateMembership(m: RingMembership): string[] {
  const problems: string[] = [];
  if (!Number.isSafeInteger(m.version) || m.version < 0) problems.push(`version must be a non-negative integer, got ${m.version}`);
  if (!Array.isArray(m.nodes) || m.nodes.length === 0) {
    problems.push('membership must have at least one node');
    return problems;
  }
  if (m.nodes.length > RING_NODES_MAX) problems.push(`at most ${RING_NODES_MAX} nodes, got ${m.nodes.length}`);
  const seen = new Set<number>();
  let tokens = 0;
  for (const n of m.nodes) {
    if (!Number.isInteger(n.id) || n.id < 0 || n.id > NODE_ID_MAX) problems.push(`node id must be an integer in [0, ${NODE_ID_MAX}], got ${n.id}`);
    else if (seen.has(n.id)) problems.push(`node id ${n.id} appears twice`);
    seen.add(n.id);
    if (!Number.isInteger(n.weight) || n.weight < 1 || n.weight > WEIGHT_MAX) {
      problems.push(`node ${n.id}: weight must be an integer in [1, ${WEIGHT_MAX}], got ${n.weight}`);
    } else {
      tokens += n.weight * VNODES_PER_WEIGHT;
    }
    if (n.zone !== undefined && (typeof n.zone !== 'string' || n.zone.length === 0 || n.zone.length > ZONE_LENGTH_MAX)) {
      problems.push(`node ${n.id}: zone must be a non-empty string of at most ${ZONE_LENGTH_MAX} characters`);
    }
  }
  if (tokens > RING_TOKENS_MAX) problems.push(`the ring would have ${tokens} tokens, more than ${RING_TOKENS_MAX}`);
  return problems;
}
