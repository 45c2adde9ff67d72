/**
 * Replication settings: how many copies of each chunk exist (R) and how many must be durable
 * before a write is acknowledged (W). They are cluster-wide and stored in the Raft log; this
 * module only defines them, their defaults and what they mean on a ring of a given size.
 */
import { assert } from '../util/assert.ts';

/** Replication settings as stored. */
export interface ReplicationSettings {
  /** Copies of each chunk. Capped at the node count on a smaller cluster. */
  replicationFactor: number;
  /**
   * Copies that must be durable before a write is acknowledged. When absent it is a majority of
   * the effective R, so it follows the cluster as it grows from one node to R.
   */
  writeQuorum?: number;
}

/** Default copies per chunk. */
export const DEFAULT_REPLICATION_FACTOR = 3;

/** Most copies per chunk: bounds the fan-out of every chunk write. */
export const REPLICATION_FACTOR_MAX = 16;

/** The default settings: three copies, acknowledged by a majority of them. */
export const DEFAULT_REPLICATION_SETTINGS: Readonly<ReplicationSettings> = Object.freeze({
  replicationFactor: DEFAULT_REPLICATION_FACTOR,
});

/** Smallest majority of n: 1 of 1, 2 of 2 or 3, 3 of 4 or 5. */
export function majority(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`majority of a positive integer, got ${n}`);
  return Math.floor(n / 2) + 1;
}

/** Returns every problem with the settings at once (empty when they are valid). */
export function validateReplicationSettings(s: ReplicationSettings): string[] {
  const problems: string[] = [];
  const r = s.replicationFactor;
  const rValid = Number.isInteger(r) && r >= 1 && r <= REPLICATION_FACTOR_MAX;
  if (!rValid) problems.push(`replicationFactor must be an integer in [1, ${REPLICATION_FACTOR_MAX}], got ${r}`);
  const w = s.writeQuorum;
  if (w !== undefined && (!Number.isInteger(w) || w < 1 || (rValid && w > r))) {
    problems.push(`writeQuorum must be an integer in [1, replicationFactor], got ${w}`);
  }
  return problems;
}

/**
 * The R actually used on a ring of `nodeCount` nodes: the configured R, capped at the node count
 * (a chunk has at most one copy per node). Throws TypeError for invalid settings.
 */
export function effectiveR(s: ReplicationSettings, nodeCount: number): number {
  checkSettings(s, nodeCount);
  const r = Math.min(s.replicationFactor, nodeCount);
  assert(r >= 1 && r <= nodeCount, `effective R ${r} lies in [1, ${nodeCount}]`);
  return r;
}

/**
 * The W actually used on a ring of `nodeCount` nodes. An explicit writeQuorum is honoured up to
 * the effective R: it is a durability request (that many copies before the ack), so it is capped
 * rather than scaled down. Without one, W is a majority of the effective R.
 */
export function effectiveW(s: ReplicationSettings, nodeCount: number): number {
  const r = effectiveR(s, nodeCount);
  const w = s.writeQuorum === undefined ? majority(r) : Math.min(s.writeQuorum, r);
  assert(Number.isInteger(w) && w >= 1 && w <= r, `effective W ${w} lies in [1, ${r}]`);
  return w;
}

function checkSettings(s: ReplicationSettings, nodeCount: number): void {
  const problems = validateReplicationSettings(s);
  if (problems.length > 0) throw new TypeError(`invalid replication settings: ${problems.join('; ')}`);
  if (!Number.isInteger(nodeCount) || nodeCount < 1) throw new TypeError(`node count must be a positive integer, got ${nodeCount}`);
}
