/**
 * What background chunk maintenance (gc.ts, repair.ts, scrub.ts, driven by maintenance.ts) needs
 * from the rest of the node, and the counters it keeps. Counters are a plain object named like
 * Prometheus series (`ts3gw_<subsystem>_<name>_<unit>`) so a registry can export them as they are.
 */
import type { ChunkStore } from './chunk-store.ts';
import type { RemoteChunks } from './cluster-chunk-store.ts';

/** The local store as maintenance uses it (DiskChunkStore; a fake in unit tests). */
export interface MaintainedStore extends ChunkStore {
  /** Size and mtime of a stored chunk, or undefined when absent. */
  stat(id: string): Promise<{ sizeBytes: number; mtimeMs: number } | undefined>;
  /**
   * Deletes the chunk only if its mtime is before `cutoffMs`, atomically with respect to put() of
   * the same id; the bytes freed, or undefined when kept (young) or absent.
   */
  deleteIfOlder(id: string, cutoffMs: number): Promise<number | undefined>;
}

/** Chunk transfer to peers plus the existence check rebalancing asks before dropping a copy. */
export interface MaintenanceRemote extends RemoteChunks {
  /** True when `nodeId` holds a copy that hashes to `id` (it verifies before answering). */
  has(nodeId: number, id: string): Promise<boolean>;
  /**
   * Anti-entropy: `nodeId`'s inventory digest (chunks/inventory.ts) of each range, in order.
   * Absent (with inventoryList) in fakes that only do per-chunk repair.
   */
  inventoryDigests?(nodeId: number, ranges: ReadonlyArray<{ start: number; end: number }>): Promise<string[]>;
  /** Anti-entropy: the ids `nodeId` holds in one range. */
  inventoryList?(nodeId: number, range: { start: number; end: number }): Promise<string[]>;
}

/** Structured logging (pino's shape). */
export interface MaintenanceLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Counters and gauges of chunk maintenance; a snapshot is what stats() returns. */
export interface MaintenanceStats {
  /** Phase of the running pass: idle, mark, sweep (gc + rebalance over local chunks), repair. */
  phase: 'idle' | 'mark' | 'sweep' | 'repair';
  ts3gw_maintenance_passes_total: number;
  ts3gw_maintenance_pass_failures_total: number;
  ts3gw_maintenance_last_pass_duration_seconds: number;
  /** Wall-clock end of the last completed pass (ms since the epoch), 0 before the first. */
  lastPassEndMs: number;
  /** Distinct chunk ids referenced by metadata at the last mark. */
  ts3gw_gc_referenced_chunks: number;
  ts3gw_gc_examined_chunks_total: number;
  ts3gw_gc_deleted_chunks_total: number;
  ts3gw_gc_deleted_bytes_total: number;
  /** Unreferenced chunks kept because they are younger than the grace period. */
  ts3gw_gc_kept_young_chunks_total: number;
  /** Progress of the current pass's sweep (local chunks) and repair (referenced chunks). */
  sweepExamined: number;
  repairExamined: number;
  repairTotal: number;
  ts3gw_repair_examined_chunks_total: number;
  ts3gw_repair_fetched_chunks_total: number;
  ts3gw_repair_fetched_bytes_total: number;
  /** Chunks this node owns but no peer could supply (a lost chunk unless a peer comes back). */
  ts3gw_repair_unavailable_chunks_total: number;
  /**
   * Anti-entropy progress of the current pass: ranges this node owns, and how many of them were
   * compared with every reachable co-owner so far.
   */
  antiEntropyRangesTotal: number;
  antiEntropyRangesDone: number;
  /** (range, co-owner) digest comparisons; of them, how many differed. */
  ts3gw_antientropy_ranges_compared_total: number;
  ts3gw_antientropy_ranges_differing_total: number;
  /** Range listings fetched from co-owners (only for differing ranges) and the ids they held. */
  ts3gw_antientropy_ranges_listed_total: number;
  ts3gw_antientropy_ids_listed_total: number;
  /** Referenced chunks a listing showed a co-owner holds and this node lacks (then fetched). */
  ts3gw_antientropy_missing_found_total: number;
  /** Co-owners whose digests or listings could not be had (down, partitioned). */
  ts3gw_antientropy_peer_failures_total: number;
  /**
   * Referenced, owned chunks missing here that no co-owner's inventory offered (every owner lacks
   * them); fetched from any node that has one, else counted unavailable.
   */
  ts3gw_antientropy_unlisted_missing_total: number;
  ts3gw_rebalance_pushed_chunks_total: number;
  ts3gw_rebalance_pushed_bytes_total: number;
  ts3gw_rebalance_dropped_chunks_total: number;
  ts3gw_rebalance_dropped_bytes_total: number;
  /** Copies kept because not every current owner confirmed a good copy yet. */
  ts3gw_rebalance_kept_unconfirmed_chunks_total: number;
  /**
   * Referenced chunks held here that the ring places elsewhere and that were still here at the
   * end of the last pass (with their bytes): what a draining node has left to move.
   */
  ts3gw_rebalance_misplaced_chunks: number;
  ts3gw_rebalance_misplaced_bytes: number;
  /** Wall-clock start of the last completed pass (ms since the epoch), 0 before the first. */
  lastPassStartMs: number;
  ts3gw_scrub_cycles_total: number;
  ts3gw_scrub_checked_chunks_total: number;
  ts3gw_scrub_checked_bytes_total: number;
  ts3gw_scrub_corrupt_chunks_total: number;
  ts3gw_scrub_repaired_chunks_total: number;
}

/** Fresh, zeroed counters. */
export function newMaintenanceStats(): MaintenanceStats {
  return {
    phase: 'idle',
    ts3gw_maintenance_passes_total: 0,
    ts3gw_maintenance_pass_failures_total: 0,
    ts3gw_maintenance_last_pass_duration_seconds: 0,
    lastPassEndMs: 0,
    ts3gw_gc_referenced_chunks: 0,
    ts3gw_gc_examined_chunks_total: 0,
    ts3gw_gc_deleted_chunks_total: 0,
    ts3gw_gc_deleted_bytes_total: 0,
    ts3gw_gc_kept_young_chunks_total: 0,
    sweepExamined: 0,
    repairExamined: 0,
    repairTotal: 0,
    ts3gw_repair_examined_chunks_total: 0,
    ts3gw_repair_fetched_chunks_total: 0,
    ts3gw_repair_fetched_bytes_total: 0,
    ts3gw_repair_unavailable_chunks_total: 0,
    antiEntropyRangesTotal: 0,
    antiEntropyRangesDone: 0,
    ts3gw_antientropy_ranges_compared_total: 0,
    ts3gw_antientropy_ranges_differing_total: 0,
    ts3gw_antientropy_ranges_listed_total: 0,
    ts3gw_antientropy_ids_listed_total: 0,
    ts3gw_antientropy_missing_found_total: 0,
    ts3gw_antientropy_peer_failures_total: 0,
    ts3gw_antientropy_unlisted_missing_total: 0,
    ts3gw_rebalance_pushed_chunks_total: 0,
    ts3gw_rebalance_pushed_bytes_total: 0,
    ts3gw_rebalance_dropped_chunks_total: 0,
    ts3gw_rebalance_dropped_bytes_total: 0,
    ts3gw_rebalance_kept_unconfirmed_chunks_total: 0,
    ts3gw_rebalance_misplaced_chunks: 0,
    ts3gw_rebalance_misplaced_bytes: 0,
    lastPassStartMs: 0,
    ts3gw_scrub_cycles_total: 0,
    ts3gw_scrub_checked_chunks_total: 0,
    ts3gw_scrub_checked_bytes_total: 0,
    ts3gw_scrub_corrupt_chunks_total: 0,
    ts3gw_scrub_repaired_chunks_total: 0,
  };
}
