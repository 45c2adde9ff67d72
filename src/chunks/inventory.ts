/**
 * Chunk inventories per ring range: what anti-entropy compares between the owners of a range.
 *
 * A range is a ring partition (start, end] between two consecutive tokens (placement's
 * tokenRanges): every position in it has the same owners, so all of them should hold the same
 * chunks of it. An inventory digest summarises the ids a node holds in a range in a few bytes:
 *
 *   digest(range) = "<count>:" + first 32 hex digits of sha256(sorted ids joined by "\n")
 *
 * Two owners whose digests of a range agree hold the same ids there (up to a 128-bit collision),
 * so a maintenance pass exchanges one batch of digests per co-owner and lists ids only for the
 * ranges whose digests differ. A chunk's ring position is the first 32 bits of its id, so the ids
 * of a range are also a contiguous slice of id order: a range's files sit in one or two of the
 * store's 256 shard directories, and listing one range reads only those.
 */
import { createHash } from 'node:crypto';
import { chunkPosition, RING_SIZE } from '../placement/index.ts';
import { assert } from '../util/assert.ts';
import { StoreError } from '../util/errors.ts';
import { isChunkId } from './chunk-store.ts';

/** Ring positions (start, end]; wraps past 2^32 when start >= end (start === end: the circle). */
export interface PositionRange {
  start: number;
  end: number;
}

/** Most ranges one digest request may name (a node owns about R/N of its ring's tokens). */
export const INVENTORY_RANGES_MAX = 1 << 16;
/** Most ids one range listing returns; a range past it is an operating error, not a truncation. */
export const INVENTORY_LIST_IDS_MAX = 200_000;
/** Error code: a range holds more ids than one listing may carry. */
export const CHUNK_ERR_INVENTORY_TOO_LARGE = 'CHUNK_ERR_INVENTORY_TOO_LARGE';

/** True when `position` lies in (start, end] on the circle. */
export function inRange(position: number, range: PositionRange): boolean {
  const { start, end } = range;
  if (start < end) return position > start && position <= end;
  if (start === end) return true;
  return position > start || position <= end;
}

/** Throws TypeError unless `ranges` are positions on the ring, at most INVENTORY_RANGES_MAX. */
export function validateRanges(ranges: readonly PositionRange[]): void {
  if (ranges.length > INVENTORY_RANGES_MAX) throw new TypeError(`more than ${INVENTORY_RANGES_MAX} ranges`);
  for (const r of ranges) {
    for (const p of [r.start, r.end]) if (!Number.isInteger(p) || p < 0 || p >= RING_SIZE) throw new TypeError(`range bound ${p} is not a ring position`);
  }
}

/**
 * A lookup from position to the index of the range holding it, for disjoint ranges. Built once
 * per batch: sorting by end lets a binary search find the only candidate, the first range whose
 * end is at or after the position (or, past every end, the range that wraps through zero).
 */
export class RangeIndex {
  readonly #ranges: readonly PositionRange[];
  readonly #order: number[];
  readonly #ends: number[];

  constructor(ranges: readonly PositionRange[]) {
    validateRanges(ranges);
    this.#ranges = ranges;
    this.#order = ranges.map((_, i) => i).sort((a, b) => ranges[a]!.end - ranges[b]!.end);
    this.#ends = this.#order.map((i) => ranges[i]!.end);
    for (let k = 1; k < this.#ends.length; k++) {
      if (this.#ends[k - 1] === this.#ends[k]) throw new TypeError(`two ranges end at ${this.#ends[k]}`);
    }
  }

  /** Index (in the constructor's array) of the range holding `position`, or -1. */
  find(position: number): number {
    const ends = this.#ends;
    if (ends.length === 0) return -1;
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    // Past every end: only a range wrapping through zero (its end is the smallest) can hold it.
    const i = this.#order[lo === ends.length ? 0 : lo]!;
    return inRange(position, this.#ranges[i]!) ? i : -1;
  }
}

/** The ids of `ids` grouped by the range holding them (ids in no range are left out). */
export function groupByRange(ids: Iterable<string>, ranges: readonly PositionRange[]): string[][] {
  const index = new RangeIndex(ranges);
  const groups = ranges.map((): string[] => []);
  for (const id of ids) {
    const i = index.find(chunkPosition(id));
    if (i >= 0) groups[i]!.push(id);
  }
  return groups;
}

/** The inventory digest of a set of ids (order does not matter; `ids` is not modified). */
export function inventoryDigest(ids: readonly string[]): string {
  const sorted = [...ids].sort();
  const hash = createHash('sha256');
  for (const [i, id] of sorted.entries()) {
    assert(isChunkId(id), 'an inventory holds chunk ids');
    assert(i === 0 || sorted[i - 1] !== id, 'an inventory holds each id once');
    hash.update(i === 0 ? id : `\n${id}`);
  }
  return `${sorted.length}:${hash.digest('hex').slice(0, 32)}`;
}

/** Digests of the ids a store holds in each range: one listing of the store. */
export async function inventoryDigests(list: AsyncIterable<string>, ranges: readonly PositionRange[]): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of list) ids.push(id);
  return groupByRange(ids, ranges).map(inventoryDigest);
}

/**
 * The 2-hex-digit shard prefixes whose positions overlap `range` (the store keeps `<id[0:2]>/<id>`,
 * and shard p holds positions [p·2^24, (p+1)·2^24)).
 */
export function shardsOf(range: PositionRange): string[] {
  const hex = (p: number) => p.toString(16).padStart(2, '0');
  if (range.start === range.end) return Array.from({ length: 256 }, (_, p) => hex(p));
  // (start, end] begins at start + 1; a wrapping range is the two pieces on either side of zero.
  const pieces: Array<[number, number]> =
    range.start < range.end ? [[range.start + 1, range.end]] : [[range.start + 1, RING_SIZE - 1], [0, range.end]];
  const out = new Set<string>();
  for (const [from, to] of pieces) {
    if (from > to) continue;
    for (let p = Math.floor(from / 2 ** 24); p <= Math.floor(to / 2 ** 24); p++) out.add(hex(p));
  }
  return [...out];
}

/** Sorted ids a store holds in `range`, reading only the shards that overlap it. */
export async function listRange(listShard: (shard: string) => AsyncIterable<string>, range: PositionRange): Promise<string[]> {
  validateRanges([range]);
  const ids: string[] = [];
  for (const shard of shardsOf(range)) {
    for await (const id of listShard(shard)) {
      if (!inRange(chunkPosition(id), range)) continue;
      ids.push(id);
      if (ids.length > INVENTORY_LIST_IDS_MAX) {
        throw new StoreError(CHUNK_ERR_INVENTORY_TOO_LARGE, `range (${range.start}, ${range.end}] holds more than ${INVENTORY_LIST_IDS_MAX} chunks`, { ...range });
      }
    }
  }
  return ids.sort();
}
