/**
 * The difference between two rings: which copies move when membership changes. Rebalance uses
 * movesFor() per chunk it holds (copy to the gained owners first, drop from the lost ones after);
 * keyspace() gives the exact fraction that moves, for progress and for planning a change before
 * it is proposed.
 *
 * What the ring guarantees (tested in test/unit/placement/diff.test.ts): when one node X joins, a
 * chunk's owners change only if X becomes one of them, and then X gains a copy and at most one old
 * owner loses one; when X leaves, only chunks that X owned change, each losing X's copy and gaining
 * at most one other node. A weight change of X behaves the same way (X gains or loses vnodes). So
 * about 1/N of the data moves, and none of it between two untouched nodes.
 */
import { assert } from '../util/assert.ts';
import { chunkPosition, RING_SIZE } from './hash.ts';
import type { Ring } from './ring.ts';
import { rangeLength } from './shares.ts';

/** How one chunk's owners change between two rings. */
export interface ChunkMoves {
  /** Owners in the old ring, in preference order. */
  before: number[];
  /** Owners in the new ring, in preference order. */
  after: number[];
  /** Nodes that must receive a copy (in `after` but not `before`), in the new preference order. */
  gained: number[];
  /** Nodes whose copy becomes surplus (in `before` but not `after`), in the old preference order. */
  lost: number[];
}

/** Aggregate moves over the keyspace (exact) or over a sample of chunk ids (an estimate). */
export interface MoveSummary {
  /** Fraction of chunks whose owner set changes. */
  changedFraction: number;
  /** Mean number of copies per chunk that must be written to a new owner. */
  copiesGainedPerChunk: number;
  /** Mean number of copies per chunk that become surplus. */
  copiesLostPerChunk: number;
  /** Copies written divided by the copies held after the change: the fraction of data that moves. */
  movedFraction: number;
  /** Per node (all nodes of either ring), the fraction of chunks of which it gains a copy. */
  gainedByNode: Map<number, number>;
  /** Per node (all nodes of either ring), the fraction of chunks of which it loses a copy. */
  lostByNode: Map<number, number>;
}

/** The moves between an old and a new ring. Pure and immutable like the rings themselves. */
export class RingDiff {
  /** The ring before the change. */
  readonly before: Ring;
  /** The ring after the change. */
  readonly after: Ring;

  constructor(before: Ring, after: Ring) {
    this.before = before;
    this.after = after;
  }

  /** The moves of one chunk at replication r. Throws TypeError for a malformed id or r. */
  movesFor(chunkId: string, r: number): ChunkMoves {
    return this.movesAt(chunkPosition(chunkId), r);
  }

  /** The moves of ring position `position` at replication r. */
  movesAt(position: number, r: number): ChunkMoves {
    const before = this.before.ownersAt(position, r);
    const after = this.after.ownersAt(position, r);
    const gained = after.filter((id) => !before.includes(id));
    const lost = before.filter((id) => !after.includes(id));
    assert(after.length - gained.length === before.length - lost.length, 'kept owners are counted once on each side');
    assert(gained.every((id) => !lost.includes(id)), 'a node never both gains and loses a copy');
    return { before, after, gained, lost };
  }

  /**
   * The exact moves over the whole keyspace at replication r. Between two consecutive tokens of
   * either ring, owners are constant in both rings, so one comparison per token suffices.
   */
  keyspace(r: number): MoveSummary {
    const bounds = mergeTokens(this.before, this.after);
    const tally = new Tally(this.#allNodes());
    for (let j = 0; j < bounds.length; j++) {
      const end = bounds[j]!;
      const start = bounds[j === 0 ? bounds.length - 1 : j - 1]!;
      tally.add(this.movesAt(end, r), rangeLength(start, end));
    }
    assert(tally.weight === RING_SIZE, 'the keyspace was covered exactly once');
    return tally.summary(Math.min(r, this.after.nodeCount));
  }

  /** An estimate of keyspace(r) from a sample of chunk ids (e.g. the chunks a node holds). */
  sample(chunkIds: Iterable<string>, r: number): MoveSummary {
    const tally = new Tally(this.#allNodes());
    for (const id of chunkIds) tally.add(this.movesFor(id, r), 1);
    if (tally.weight === 0) throw new TypeError('sample needs at least one chunk id');
    return tally.summary(Math.min(r, this.after.nodeCount));
  }

  #allNodes(): number[] {
    return [...new Set([...this.before.nodes(), ...this.after.nodes()])].sort((a, b) => a - b);
  }
}

/** Returns the moves from ring `before` to ring `after`. */
export function diffRings(before: Ring, after: Ring): RingDiff {
  return new RingDiff(before, after);
}

/** Weighted counts of moves, turned into fractions at the end. */
class Tally {
  weight = 0;
  changed = 0;
  gainedCopies = 0;
  lostCopies = 0;
  readonly gained: Map<number, number>;
  readonly lost: Map<number, number>;

  constructor(nodes: readonly number[]) {
    this.gained = new Map(nodes.map((id) => [id, 0]));
    this.lost = new Map(nodes.map((id) => [id, 0]));
  }

  add(m: ChunkMoves, weight: number): void {
    assert(weight >= 0, 'weights are non-negative');
    this.weight += weight;
    if (m.gained.length > 0 || m.lost.length > 0) this.changed += weight;
    this.gainedCopies += m.gained.length * weight;
    this.lostCopies += m.lost.length * weight;
    for (const id of m.gained) this.gained.set(id, (this.gained.get(id) ?? 0) + weight);
    for (const id of m.lost) this.lost.set(id, (this.lost.get(id) ?? 0) + weight);
  }

  summary(copiesAfter: number): MoveSummary {
    assert(this.weight > 0 && copiesAfter >= 1, 'a summary covers something');
    const w = this.weight;
    const fractions = (m: Map<number, number>) => new Map([...m].map(([id, x]) => [id, x / w]));
    return {
      changedFraction: this.changed / w,
      copiesGainedPerChunk: this.gainedCopies / w,
      copiesLostPerChunk: this.lostCopies / w,
      movedFraction: this.gainedCopies / w / copiesAfter,
      gainedByNode: fractions(this.gained),
      lostByNode: fractions(this.lost),
    };
  }
}

/** The distinct tokens of both rings, ascending. */
function mergeTokens(a: Ring, b: Ring): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.tokenCount || j < b.tokenCount) {
    const x = i < a.tokenCount ? a.tokenAt(i) : Number.POSITIVE_INFINITY;
    const y = j < b.tokenCount ? b.tokenAt(j) : Number.POSITIVE_INFINITY;
    const next = Math.min(x, y);
    if (next === x) i++;
    if (next === y) j++;
    if (out.length === 0 || out[out.length - 1] !== next) out.push(next);
  }
  assert(out.length >= 1, 'rings have tokens');
  assert(out.every((x, k) => k === 0 || out[k - 1]! < x), 'merged tokens are strictly ascending');
  return out;
}
