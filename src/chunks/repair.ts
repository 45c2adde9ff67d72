/**
 * Repair and rebalance of one chunk against the current placement ring.
 *
 *   owned, missing here     → fetch a verified copy from a peer (owners first), store it  (repair)
 *   held here, not an owner → make sure every current owner has a good copy (ask with has();
 *                             push ours to an owner that lacks it), and only then delete ours
 *                                                                                      (rebalance)
 *
 * Together these give repair after a node loss or disk replacement (the new/empty owner fetches)
 * and data movement after a membership change, in the safe order: new owners hold copies before
 * an old one is dropped, so a chunk never has fewer good copies than before the move. A node that
 * is unreachable counts as not confirming, so a copy is never dropped while an owner is down.
 */
import { createHash } from 'node:crypto';
import { assert } from '../util/assert.ts';
import { errorCode } from '../util/errors.ts';
import { CHUNK_ERR_CORRUPT, CHUNK_ERR_NOT_FOUND, type ChunkBytes, isChunkId } from './chunk-store.ts';
import type { ChunkPlacement } from './cluster-chunk-store.ts';
import type { MaintainedStore, MaintenanceLogger, MaintenanceRemote, MaintenanceStats } from './maintenance-types.ts';
import type { RateLimiter } from './rate-limit.ts';

/** What repairing one chunk uses. */
export interface RepairContext {
  selfId: number;
  local: MaintainedStore;
  remote: MaintenanceRemote;
  stats: MaintenanceStats;
  logger: MaintenanceLogger;
  /** Limits bytes moved between nodes (fetched and pushed). */
  bytes: RateLimiter;
  signal?: AbortSignal;
}

/**
 * A verified copy of `id` from some peer (`preferred` first, when given: the node an inventory
 * listing showed holding it; then the chunk's owners, then every other node), or undefined.
 */
export async function fetchGoodCopy(ctx: RepairContext, placement: ChunkPlacement, id: string, preferred?: number): Promise<ChunkBytes | undefined> {
  const owners = placement.owners(id, placement.replicationFactor);
  const others = placement.nodes().filter((n) => !owners.includes(n));
  const order = preferred === undefined ? [...owners, ...others] : [preferred, ...owners.filter((n) => n !== preferred), ...others.filter((n) => n !== preferred)];
  for (const node of order) {
    if (node === ctx.selfId) continue;
    let copy: ChunkBytes | undefined;
    try {
      copy = await fetchFrom(ctx.remote, node, id);
    } catch (err) {
      ctx.logger.warn({ node, chunk: id, err: String(err) }, 'repair: chunk fetch from peer failed');
      continue;
    }
    if (copy === undefined) continue;
    if (createHash('sha256').update(copy.bytes).digest('hex') !== id) {
      copy.release();
      ctx.logger.warn({ node, chunk: id }, 'repair: peer sent a corrupt copy; trying the next');
      continue;
    }
    return copy;
  }
  return undefined;
}

/** One peer's copy, in a recycled buffer when the transport has them. */
async function fetchFrom(remote: RepairContext['remote'], node: number, id: string): Promise<ChunkBytes | undefined> {
  if (remote.read) return remote.read(node, id);
  const bytes = await remote.get(node, id);
  return bytes === undefined ? undefined : { bytes, release: () => undefined };
}

/** Stores a fetched copy locally (rate-limited), then gives its buffer back. */
export async function storeFetched(ctx: RepairContext, id: string, copy: ChunkBytes): Promise<void> {
  try {
    await ctx.bytes.take(copy.bytes.byteLength, ctx.signal);
    await ctx.local.put(id, copy.bytes);
  } finally {
    // put() settled: no write refers to the bytes any more.
    copy.release();
  }
}

/**
 * Repair: when this node owns `id` and lacks it, fetches and stores a verified copy (from
 * `preferred` first, when given). True when fetched.
 */
export async function repairOwned(ctx: RepairContext, placement: ChunkPlacement, id: string, preferred?: number): Promise<boolean> {
  assert(isChunkId(id), 'repair of a malformed chunk id');
  assert(placement.owners(id, placement.replicationFactor).includes(ctx.selfId), 'repair of a chunk this node does not own');
  if (await ctx.local.has(id)) return false;
  const copy = await fetchGoodCopy(ctx, placement, id, preferred);
  if (!copy) {
    ctx.stats.ts3gw_repair_unavailable_chunks_total++;
    ctx.logger.warn({ chunk: id }, 'repair: no peer has a good copy of an owned chunk');
    return false;
  }
  const bytes = copy.bytes.byteLength;
  await storeFetched(ctx, id, copy);
  ctx.stats.ts3gw_repair_fetched_chunks_total++;
  ctx.stats.ts3gw_repair_fetched_bytes_total += bytes;
  ctx.logger.info({ chunk: id, bytes }, 'repair: restored a missing copy');
  return true;
}

/**
 * Rebalance: this node holds `id` but is not among its owners. Drops the local copy once every
 * owner confirms a good copy, pushing ours to owners that lack one. True when dropped.
 */
export async function rebalanceHeld(ctx: RepairContext, placement: ChunkPlacement, id: string): Promise<boolean> {
  assert(isChunkId(id), 'rebalance of a malformed chunk id');
  const owners = placement.owners(id, placement.replicationFactor);
  assert(!owners.includes(ctx.selfId), 'rebalance of a chunk this node owns');
  assert(owners.length > 0, 'a placement names at least one owner');
  let data: Buffer | undefined;
  for (const owner of owners) {
    let confirmed = false;
    try {
      confirmed = await ctx.remote.has(owner, id);
    } catch (err) {
      ctx.logger.warn({ node: owner, chunk: id, err: String(err) }, 'rebalance: owner unreachable; keeping the local copy');
    }
    if (confirmed) continue;
    if (data === undefined) {
      try {
        data = await ctx.local.get(id);
      } catch (err) {
        const code = errorCode(err);
        // Our copy vanished or rotted: nothing to give; the owners' repair fetches elsewhere.
        if (code === CHUNK_ERR_NOT_FOUND || code === CHUNK_ERR_CORRUPT) return false;
        throw err;
      }
    }
    try {
      await ctx.bytes.take(data.byteLength, ctx.signal);
      await ctx.remote.put(owner, id, data);
      ctx.stats.ts3gw_rebalance_pushed_chunks_total++;
      ctx.stats.ts3gw_rebalance_pushed_bytes_total += data.byteLength;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      ctx.stats.ts3gw_rebalance_kept_unconfirmed_chunks_total++;
      ctx.logger.warn({ node: owner, chunk: id, err: String(err) }, 'rebalance: push to new owner failed; keeping the local copy');
      return false;
    }
  }
  // Every owner confirmed (has() verified its copy, or acknowledged our put after fsync).
  const s = await ctx.local.stat(id);
  await ctx.local.delete(id);
  ctx.stats.ts3gw_rebalance_dropped_chunks_total++;
  ctx.stats.ts3gw_rebalance_dropped_bytes_total += s?.sizeBytes ?? 0;
  return true;
}
