/**
 * Garbage collection of unreferenced chunks: mark and sweep, per node, over its local store.
 *
 *   mark:  T0 = now; readBarrier(); referenced = { every chunk id in the metadata } (one snapshot)
 *   sweep: for each local chunk c not in referenced: delete c iff mtime(c) < T0 − grace
 *
 * Why a referenced-later chunk is never deleted. A write relies on chunk c from the moment its
 * put(c) returns (t0) until its metadata command is applied (t1), and t1 − t0 < grace (the grace
 * is chosen longer than any in-flight write). If t1 is before the mark's snapshot, the mark sees
 * the reference. Otherwise t0 > T0 − grace, and put(c) left mtime(c) ≥ t0 whether it wrote the
 * file or found it already there (DiskChunkStore.put refreshes the mtime of a deduplicated
 * chunk), so the sweep keeps c. The mtime check and the unlink are atomic with respect to put()
 * of the same id (deleteIfOlder), so a put cannot slip between them. The cutoff is taken from the
 * mark's start, not from the sweep's clock, so a slow sweep does not widen the window.
 *
 * CopyObject re-references the source's chunks without putting them. It cannot lose them: its
 * command names the source version (PutObject.copySource) and apply refuses the copy unless that
 * version still exists, so at every applied index the chunks are referenced by the source or by
 * the copy, and a mark (taken at one applied index) always sees one of them.
 *
 * Memory: the mark holds every referenced id of the cluster in one Set<string> (64-char hex,
 * about 150 bytes each with the set's overhead), bounded by GC_REFERENCED_IDS_MAX; a bigger
 * cluster refuses to collect (logged, counted as a failed pass) rather than grow without bound.
 */
import { assert } from '../util/assert.ts';
import { StoreError } from '../util/errors.ts';
import { isChunkId } from './chunk-store.ts';
import type { MaintainedStore, MaintenanceStats } from './maintenance-types.ts';

/**
 * Most distinct referenced chunk ids one mark holds: about 600 MB of heap, 16 TiB of unique data
 * at 4 MiB chunks. Past this the mark needs a disk-backed or Bloom-filter design.
 */
export const GC_REFERENCED_IDS_MAX = 4_000_000;

/** The metadata references more chunks than one mark may hold. */
export const CHUNK_ERR_TOO_MANY_REFS = 'CHUNK_ERR_TOO_MANY_REFS';

/** Default grace before an unreferenced chunk may be deleted: one hour. */
export const GC_GRACE_SECONDS_DEFAULT = 3_600;

/** The mark: the distinct chunk ids `refs` yields, at most `max` of them. */
export async function markReferenced(refs: AsyncIterable<string>, max = GC_REFERENCED_IDS_MAX, signal?: AbortSignal): Promise<Set<string>> {
  const referenced = new Set<string>();
  for await (const id of refs) {
    assert(isChunkId(id), `metadata references a malformed chunk id: ${id}`);
    referenced.add(id);
    if (referenced.size > max) {
      throw new StoreError(CHUNK_ERR_TOO_MANY_REFS, `more than ${max} referenced chunks; garbage collection is off`, { max });
    }
    if ((referenced.size & 0xfff) === 0) signal?.throwIfAborted();
  }
  return referenced;
}

/**
 * Sweeps one local chunk known to be unreferenced at the mark: deletes it when older than
 * `cutoffMs` (mark start − grace). Returns true when it was deleted.
 */
export async function sweepUnreferenced(local: MaintainedStore, id: string, cutoffMs: number, stats: MaintenanceStats): Promise<boolean> {
  assert(isChunkId(id), 'sweep of a malformed chunk id');
  const freed = await local.deleteIfOlder(id, cutoffMs);
  if (freed === undefined) {
    stats.ts3gw_gc_kept_young_chunks_total++;
    return false;
  }
  assert(freed >= 0, 'negative size freed');
  stats.ts3gw_gc_deleted_chunks_total++;
  stats.ts3gw_gc_deleted_bytes_total += freed;
  return true;
}
