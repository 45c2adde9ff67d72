/**
 * Scrub: re-hash every local chunk at a bounded rate (bytes/s) to find bit rot before a reader
 * does. A corrupt copy is deleted and replaced by a verified copy from a peer; when no peer has
 * one, the chunk stays absent here (the read path and repair keep trying other copies).
 */
import { errorCode } from '../util/errors.ts';
import { CHUNK_ERR_CORRUPT, CHUNK_ERR_NOT_FOUND } from './chunk-store.ts';
import type { ChunkPlacement } from './cluster-chunk-store.ts';
import { fetchGoodCopy, type RepairContext, storeFetched } from './repair.ts';

/** Checks one local chunk; true when it was corrupt. Rate-limits by its size before reading it. */
export async function scrubOne(ctx: RepairContext, scrubBytes: { take(n: number, signal?: AbortSignal): Promise<void> }, placement: () => ChunkPlacement | undefined, id: string): Promise<boolean> {
  const s = await ctx.local.stat(id);
  if (!s) return false;
  await scrubBytes.take(s.sizeBytes, ctx.signal);
  try {
    await ctx.local.get(id);
    ctx.stats.ts3gw_scrub_checked_chunks_total++;
    ctx.stats.ts3gw_scrub_checked_bytes_total += s.sizeBytes;
    return false;
  } catch (err) {
    const code = errorCode(err);
    if (code === CHUNK_ERR_NOT_FOUND) return false;
    if (code !== CHUNK_ERR_CORRUPT) throw err;
  }
  ctx.stats.ts3gw_scrub_checked_chunks_total++;
  ctx.stats.ts3gw_scrub_checked_bytes_total += s.sizeBytes;
  ctx.stats.ts3gw_scrub_corrupt_chunks_total++;
  ctx.logger.warn({ chunk: id, bytes: s.sizeBytes }, 'scrub: corrupt chunk copy; deleting it and fetching a good one');
  // Never serve or keep the bad bytes, even when no peer can replace them.
  await ctx.local.delete(id);
  const p = placement();
  const copy = p ? await fetchGoodCopy(ctx, p, id) : undefined;
  if (!copy) {
    ctx.logger.warn({ chunk: id }, 'scrub: no peer has a good copy; left absent here');
    return true;
  }
  await storeFetched(ctx, id, copy);
  ctx.stats.ts3gw_scrub_repaired_chunks_total++;
  ctx.logger.info({ chunk: id }, 'scrub: replaced a corrupt copy');
  return true;
}
