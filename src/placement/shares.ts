/**
 * Exact keyspace arithmetic over a ring: how much of the keyspace each node holds, and the
 * ranges of the ring with their owners. Exact because owners are constant between consecutive
 * tokens, so one walk per token covers the whole circle; no sampling error to reason about.
 */
import { assert } from '../util/assert.ts';
import { RING_SIZE } from './hash.ts';
import type { Ring } from './ring.ts';

/** A ring range: positions in (start, end], wrapping past 2^32 when start >= end. */
export interface OwnerRange {
  /** Exclusive start position. */
  start: number;
  /** Inclusive end position. */
  end: number;
  /** The owners of every position in the range, in preference order. */
  owners: number[];
}

/** Number of positions in (start, end] on the circle; a full circle when start === end. */
export function rangeLength(start: number, end: number): number {
  assert(Number.isInteger(start) && start >= 0 && start < RING_SIZE, 'range start is a position');
  assert(Number.isInteger(end) && end >= 0 && end < RING_SIZE, 'range end is a position');
  return end > start ? end - start : RING_SIZE - start + end;
}

/**
 * Returns the ranges of the ring with their R owners, in ring order, merging neighbours that have
 * the same owners. Each range is (start, end]; together they cover the circle exactly once.
 * Anti-entropy compares chunk inventories per range: positions are chunk id prefixes (hash.ts), so
 * a range is a contiguous range of chunk ids.
 */
export function ownerRanges(ring: Ring, r: number): OwnerRange[] {
  const ranges: OwnerRange[] = [];
  for (const { start, end, owners } of tokenRanges(ring, r)) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && sameList(last.owners, owners)) last.end = end;
    else ranges.push({ start, end, owners });
  }
  // The first and last ranges meet across zero; merge them when their owners agree.
  const first = ranges[0];
  const last = ranges[ranges.length - 1];
  if (ranges.length > 1 && first !== undefined && last !== undefined && sameList(first.owners, last.owners)) {
    first.start = last.start;
    ranges.pop();
  }
  assert(ranges.length >= 1, 'a ring has at least one range');
  return ranges;
}

/**
 * The ring's partitions, one per distinct token: (previous token, token] with its owners, in ring
 * order, not merged. Anti-entropy compares chunk inventories per partition: fine-grained enough
 * that one missing chunk makes one partition differ, and the same on every node of one ring.
 */
export function tokenRanges(ring: Ring, r: number): OwnerRange[] {
  const ranges: OwnerRange[] = [];
  const total = ring.tokenCount;
  let covered = 0;
  for (let i = 0; i < total; i++) {
    const end = ring.tokenAt(i);
    const start = ring.tokenAt(i === 0 ? total - 1 : i - 1);
    // A duplicate token owns nothing: the first of equal tokens takes the whole range.
    if (i > 0 && start === end) continue;
    covered += rangeLength(start, end);
    ranges.push({ start, end, owners: ring.ownersAt(end, r) });
  }
  assert(covered === RING_SIZE, 'the partitions cover the circle exactly once');
  assert(ranges.length >= 1 && ranges.length <= total, 'one partition per distinct token');
  return ranges;
}

/**
 * Returns each node's share of all chunk copies at replication r: the fraction of the keyspace it
 * owns a copy of, divided by the copies per chunk. Shares sum to 1; with equal weights each is
 * about 1/nodeCount.
 */
export function ownershipShares(ring: Ring, r: number): Map<number, number> {
  const copies = Math.min(r, ring.nodeCount);
  const owned = new Map<number, number>(ring.nodes().map((id) => [id, 0]));
  for (const range of ownerRanges(ring, r)) {
    const length = rangeLength(range.start, range.end);
    for (const id of range.owners) owned.set(id, (owned.get(id) ?? 0) + length);
  }
  const shares = new Map<number, number>();
  let sum = 0;
  for (const [id, positions] of owned) {
    const share = positions / (RING_SIZE * copies);
    shares.set(id, share);
    sum += share;
  }
  assert(Math.abs(sum - 1) < 1e-9, `shares sum to 1, got ${sum}`);
  assert(shares.size === ring.nodeCount, 'every node has a share');
  return shares;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
