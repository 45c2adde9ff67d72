/**
 * ChunkMaintenance: the background work that keeps each node's chunk files equal to what the
 * metadata and the placement ring say they should be. Two loops per node:
 *
 *   pass (every intervalMs):  mark ─► sweep local chunks ─────────────► repair by anti-entropy
 *                                     ├ unreferenced: gc (grace)         digests per ring range vs
 *                                     └ referenced, not owned: rebalance each co-owner; list and
 *                                                                        fetch only where they differ
 *   scrub (continuous, rate-limited): re-hash local chunks; corrupt → delete, fetch a good copy
 *
 * Every step is rate-limited (chunks/s examined, bytes/s moved, bytes/s scrubbed), counted in
 * stats() (Prometheus-style names) and logged. A pass that fails (no leader for the read
 * barrier, a peer error that escapes) is logged, counted and retried at the next interval.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { assert } from '../util/assert.ts';
import { errorCode } from '../util/errors.ts';
import type { ChunkPlacement } from './cluster-chunk-store.ts';
import { GC_REFERENCED_IDS_MAX, markReferenced, sweepUnreferenced } from './gc.ts';
import { groupByRange, inventoryDigest } from './inventory.ts';
import { type MaintainedStore, type MaintenanceLogger, type MaintenanceRemote, type MaintenanceStats, newMaintenanceStats } from './maintenance-types.ts';
import { RateLimiter } from './rate-limit.ts';
import { rebalanceHeld, type RepairContext, repairOwned } from './repair.ts';
import { scrubOne } from './scrub.ts';

/** Default pause between maintenance passes (and between scrub cycles). */
export const MAINTENANCE_INTERVAL_MS_DEFAULT = 60_000;
/** Default rate of chunks examined per second by a pass (a stat or a set lookup each). */
export const MAINTENANCE_CHUNKS_PER_SECOND_DEFAULT = 2_000;
/** Default rate of bytes moved between nodes by repair and rebalance. */
export const MAINTENANCE_BYTES_PER_SECOND_DEFAULT = 64 * 1024 * 1024;
/**
 * Chunks a pass repairs or rebalances at once. Each one costs a few round trips (has() on every
 * owner, maybe a push or a fetch); doing them one by one makes a pass latency-bound.
 */
export const MAINTENANCE_CHUNKS_IN_FLIGHT_MAX = 8;
/** Default rate of bytes re-hashed by the scrubber. */
export const SCRUB_BYTES_PER_SECOND_DEFAULT = 8 * 1024 * 1024;

/** Settings of chunk maintenance. */
export interface ChunkMaintenanceOptions {
  selfId: number;
  /** An unreferenced chunk younger than this is kept; must exceed the longest in-flight write. */
  gcGraceMs: number;
  intervalMs: number;
  chunksPerSecond: number;
  bytesPerSecond: number;
  scrubBytesPerSecond: number;
  referencedIdsMax?: number;
}

/** Collaborators of chunk maintenance. */
export interface ChunkMaintenanceDeps {
  local: MaintainedStore;
  remote: MaintenanceRemote;
  /** The current placement; undefined until membership is known (then passes are skipped). */
  placement(): ChunkPlacement | undefined;
  /** Every referenced chunk id, from one consistent metadata view (LevelMetaStore.chunkRefs). */
  chunkRefs(): AsyncIterable<string>;
  /** Waits until the local metadata reflects every command committed before the call (ReadIndex). */
  barrier(): Promise<void>;
  logger: MaintenanceLogger;
  /**
   * True while this node is being decommissioned: it owns nothing, so it also hands on chunks no
   * object references yet but that are young (a write that placed a copy here may not have
   * committed yet when the pass took its snapshot); old ones are garbage as anywhere else.
   */
  draining?(): boolean;
  /** Wall clock in ms (compared with file mtimes). */
  nowMs?: () => number;
}

/** Background GC, repair, rebalance and scrub of one node's chunks. */
export class ChunkMaintenance {
  readonly #options: ChunkMaintenanceOptions;
  readonly #deps: ChunkMaintenanceDeps;
  readonly #stats = newMaintenanceStats();
  readonly #abort = new AbortController();
  readonly #chunks: RateLimiter;
  readonly #bytes: RateLimiter;
  readonly #scrubBytes: RateLimiter;
  readonly #loops: Promise<void>[] = [];
  #passRunning = false;

  constructor(options: ChunkMaintenanceOptions, deps: ChunkMaintenanceDeps) {
    assert(options.gcGraceMs >= 0 && options.intervalMs > 0, 'maintenance needs a grace and an interval');
    assert(options.chunksPerSecond > 0 && options.bytesPerSecond > 0 && options.scrubBytesPerSecond > 0, 'rates must be positive');
    this.#options = options;
    this.#deps = deps;
    this.#chunks = new RateLimiter(options.chunksPerSecond);
    this.#bytes = new RateLimiter(options.bytesPerSecond);
    this.#scrubBytes = new RateLimiter(options.scrubBytesPerSecond);
  }

  /** Starts the pass and scrub loops in the background. */
  start(): void {
    assert(this.#loops.length === 0, 'maintenance started twice');
    this.#loops.push(this.#loop('pass', () => this.runPass()), this.#loop('scrub', () => this.scrubCycle()));
  }

  /** Stops both loops and waits for them (an in-flight step finishes or aborts). */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.all(this.#loops);
  }

  /** A snapshot of the counters and the current pass's progress. */
  stats(): MaintenanceStats {
    return { ...this.#stats };
  }

  /** One maintenance pass: mark, sweep (gc + rebalance), repair. Skipped before a ring is known. */
  async runPass(): Promise<void> {
    assert(!this.#passRunning, 'maintenance passes never overlap');
    if (!this.#deps.placement()) return;
    this.#passRunning = true;
    const stats = this.#stats;
    const signal = this.#abort.signal;
    const startedMs = performance.now();
    const now = this.#deps.nowMs ?? Date.now;
    const passStartMs = now();
    try {
      stats.phase = 'mark';
      // The cutoff comes from before the barrier and the snapshot: see gc.ts for why.
      const cutoffMs = now() - this.#options.gcGraceMs;
      await this.#deps.barrier();
      const referenced = await markReferenced(this.#deps.chunkRefs(), this.#options.referencedIdsMax ?? GC_REFERENCED_IDS_MAX, signal);
      stats.ts3gw_gc_referenced_chunks = referenced.size;
      const ctx = this.#context();

      stats.phase = 'sweep';
      stats.sweepExamined = 0;
      const before = { ...stats };
      const work = new BoundedWork(MAINTENANCE_CHUNKS_IN_FLIGHT_MAX);
      let misplaced = 0;
      let misplacedBytes = 0;
      for await (const id of this.#deps.local.list()) {
        await this.#chunks.take(1, signal);
        stats.sweepExamined++;
        stats.ts3gw_gc_examined_chunks_total++;
        const placement = this.#deps.placement();
        if (!referenced.has(id)) {
          const deleted = await sweepUnreferenced(this.#deps.local, id, cutoffMs, stats);
          if (!deleted && placement && this.#deps.draining?.()) {
            misplaced++;
            misplacedBytes += (await this.#deps.local.stat(id))?.sizeBytes ?? 0;
            await work.add(() => rebalanceHeld(ctx, placement, id));
          }
          continue;
        }
        if (placement && !placement.owners(id, placement.replicationFactor).includes(this.#options.selfId)) {
          misplaced++;
          misplacedBytes += (await this.#deps.local.stat(id))?.sizeBytes ?? 0;
          await work.add(() => rebalanceHeld(ctx, placement, id));
        }
      }
      await work.drain();
      // What rebalancing could not drop yet (an owner unreachable or unconfirmed) is still here.
      const misplacedLeft = misplaced - (stats.ts3gw_rebalance_dropped_chunks_total - before.ts3gw_rebalance_dropped_chunks_total);
      const misplacedBytesLeft = misplacedBytes - (stats.ts3gw_rebalance_dropped_bytes_total - before.ts3gw_rebalance_dropped_bytes_total);

      stats.phase = 'repair';
      const placement = this.#deps.placement();
      if (placement?.ranges && this.#deps.remote.inventoryDigests && this.#deps.remote.inventoryList) {
        await this.#antiEntropy(ctx, placement, referenced, work);
      } else {
        // No ring ranges to compare (fakes, or a placement without a ring): walk every reference.
        stats.repairExamined = 0;
        stats.repairTotal = referenced.size;
        for (const id of referenced) {
          await this.#chunks.take(1, signal);
          stats.repairExamined++;
          stats.ts3gw_repair_examined_chunks_total++;
          const p = this.#deps.placement();
          if (p?.owners(id, p.replicationFactor).includes(this.#options.selfId)) await work.add(() => repairOwned(ctx, p, id));
        }
      }
      await work.drain();
      stats.ts3gw_rebalance_misplaced_chunks = Math.max(0, misplacedLeft);
      stats.ts3gw_rebalance_misplaced_bytes = Math.max(0, misplacedBytesLeft);
      stats.lastPassStartMs = passStartMs;
      stats.ts3gw_maintenance_passes_total++;
      stats.ts3gw_maintenance_last_pass_duration_seconds = (performance.now() - startedMs) / 1000;
      stats.lastPassEndMs = now();
      const delta = (k: keyof MaintenanceStats) => (stats[k] as number) - (before[k] as number);
      this.#deps.logger.info(
        {
          referenced: referenced.size,
          examined: stats.sweepExamined,
          gcDeleted: delta('ts3gw_gc_deleted_chunks_total'),
          gcDeletedBytes: delta('ts3gw_gc_deleted_bytes_total'),
          fetched: delta('ts3gw_repair_fetched_chunks_total'),
          pushed: delta('ts3gw_rebalance_pushed_chunks_total'),
          dropped: delta('ts3gw_rebalance_dropped_chunks_total'),
          seconds: stats.ts3gw_maintenance_last_pass_duration_seconds,
        },
        'chunk maintenance pass done',
      );
    } catch (err) {
      if (signal.aborted) return;
      stats.ts3gw_maintenance_pass_failures_total++;
      throw err;
    } finally {
      stats.phase = 'idle';
      this.#passRunning = false;
    }
  }

  /**
   * Repair by anti-entropy: compare this node's inventory digest of every ring range it owns with
   * each co-owner's (one request per co-owner), list ids only for the ranges whose digests
   * differ, and fetch the referenced chunks a co-owner holds and this node lacks. Ranges that
   * match cost one digest comparison and no listing.
   *
   *   ranges I own ──► my digests ──┬─► co-owner p: digests of the ranges we share (1 request)
   *                                 └─► differ? ─► list p's ids there ─► referenced, missing here ─► fetch (p first)
   *   then: referenced, owned, still missing here, offered by nobody ─► fetch from any node (safety net)
   *
   * Only referenced chunks are fetched (from the mark), so garbage one co-owner still holds is
   * never copied back to a node whose collector already swept it: GC semantics are unchanged.
   */
  async #antiEntropy(ctx: RepairContext, placement: ChunkPlacement, referenced: Set<string>, work: BoundedWork): Promise<void> {
    const stats = this.#stats;
    const signal = this.#abort.signal;
    const selfId = this.#options.selfId;
    assert(placement.ranges !== undefined, 'anti-entropy needs ring ranges');
    const remote = this.#deps.remote;
    assert(remote.inventoryDigests !== undefined && remote.inventoryList !== undefined, 'anti-entropy needs remote inventories');
    const mine = placement.ranges().filter((r) => r.owners.includes(selfId));
    stats.antiEntropyRangesTotal = mine.length;
    stats.antiEntropyRangesDone = 0;
    const localIds: string[] = [];
    for await (const id of this.#deps.local.list()) localIds.push(id);
    const local = new Set(localIds);
    const myGroups = groupByRange(localIds, mine);
    const myDigests = myGroups.map(inventoryDigest);

    // Which co-owners disagree about which ranges.
    const differing = new Map<number, number[]>();
    const peers = [...new Set(mine.flatMap((r) => r.owners))].filter((n) => n !== selfId).sort((a, b) => a - b);
    for (const peer of peers) {
      const shared = mine.flatMap((r, i) => (r.owners.includes(peer) ? [i] : []));
      await this.#chunks.take(1, signal);
      let digests: string[];
      try {
        digests = await remote.inventoryDigests(
          peer,
          shared.map((i) => ({ start: mine[i]!.start, end: mine[i]!.end })),
        );
      } catch (err) {
        stats.ts3gw_antientropy_peer_failures_total++;
        this.#deps.logger.warn({ node: peer, err: String(err) }, 'anti-entropy: no inventory digests from a co-owner; its ranges wait for the next pass');
        continue;
      }
      assert(digests.length === shared.length, 'one digest per range asked');
      for (const [k, i] of shared.entries()) {
        stats.ts3gw_antientropy_ranges_compared_total++;
        if (digests[k] === myDigests[i]) continue;
        stats.ts3gw_antientropy_ranges_differing_total++;
        differing.set(i, [...(differing.get(i) ?? []), peer]);
      }
    }
    stats.antiEntropyRangesDone = mine.length - differing.size;

    // Only the differing ranges are listed; what a co-owner has and this node lacks is fetched.
    const fetching = new Set<string>();
    for (const [i, holders] of differing) {
      const range = { start: mine[i]!.start, end: mine[i]!.end };
      for (const peer of holders) {
        let ids: string[];
        try {
          ids = await remote.inventoryList(peer, range);
        } catch (err) {
          stats.ts3gw_antientropy_peer_failures_total++;
          this.#deps.logger.warn({ node: peer, err: String(err) }, 'anti-entropy: a co-owner could not list a range');
          continue;
        }
        stats.ts3gw_antientropy_ranges_listed_total++;
        stats.ts3gw_antientropy_ids_listed_total += ids.length;
        await this.#chunks.take(ids.length, signal);
        for (const id of ids) {
          if (local.has(id) || fetching.has(id) || !referenced.has(id)) continue;
          fetching.add(id);
          stats.ts3gw_antientropy_missing_found_total++;
          await work.add(() => repairOwned(ctx, placement, id, peer));
        }
      }
      stats.antiEntropyRangesDone++;
    }

    // Safety net, in memory: an owned reference that is missing here and that no co-owner offered
    // (every owner lost it; perhaps a node outside the owners still has it). Normally empty.
    let examined = 0;
    for (const id of referenced) {
      if ((++examined & 0xfff) === 0) signal.throwIfAborted();
      if (local.has(id) || fetching.has(id)) continue;
      if (!placement.owners(id, placement.replicationFactor).includes(selfId)) continue;
      stats.ts3gw_antientropy_unlisted_missing_total++;
      await work.add(() => repairOwned(ctx, placement, id));
    }
  }

  /** One scrub cycle over every local chunk. */
  async scrubCycle(): Promise<void> {
    const ctx = this.#context();
    for await (const id of this.#deps.local.list()) {
      this.#abort.signal.throwIfAborted();
      await scrubOne(ctx, this.#scrubBytes, () => this.#deps.placement(), id);
    }
    this.#stats.ts3gw_scrub_cycles_total++;
  }

  #context(): RepairContext {
    return {
      selfId: this.#options.selfId,
      local: this.#deps.local,
      remote: this.#deps.remote,
      stats: this.#stats,
      logger: this.#deps.logger,
      bytes: this.#bytes,
      signal: this.#abort.signal,
    };
  }

  async #loop(name: string, step: () => Promise<void>): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        await step();
      } catch (err) {
        if (signal.aborted) break;
        this.#deps.logger.warn({ loop: name, err: String(err), code: errorCode(err) }, 'chunk maintenance step failed; retrying next interval');
      }
      try {
        await sleep(this.#options.intervalMs, undefined, { signal });
      } catch {
        // Aborted: the while condition ends the loop.
      }
    }
  }
}

/** Runs at most `max` tasks at once; the first failure is rethrown by add() or drain(). */
class BoundedWork {
  readonly #max: number;
  readonly #running = new Set<Promise<void>>();
  #failure: { err: unknown } | undefined;

  constructor(max: number) {
    assert(max >= 1, 'BoundedWork needs room for one task');
    this.#max = max;
  }

  /** Starts `task`, first waiting while `max` tasks run. */
  async add(task: () => Promise<unknown>): Promise<void> {
    while (this.#running.size >= this.#max) await Promise.race(this.#running);
    this.#check();
    const p: Promise<void> = task().then(
      () => {
        this.#running.delete(p);
      },
      (err: unknown) => {
        this.#running.delete(p);
        this.#failure ??= { err };
      },
    );
    this.#running.add(p);
  }

  /** Waits for every started task. */
  async drain(): Promise<void> {
    await Promise.all(this.#running);
    this.#check();
  }

  #check(): void {
    if (this.#failure) throw this.#failure.err;
  }
}
