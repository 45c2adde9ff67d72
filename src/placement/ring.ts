/**
 * The consistent-hash ring: where each chunk lives, given a committed membership.
 *
 * Every node of weight w owns w × VNODES_PER_WEIGHT virtual nodes, each at a token that depends
 * only on (node id, vnode index) (hash.ts). A position p on the 32-bit circle belongs to the
 * first token clockwise at or after p; the owners of a chunk are found by walking clockwise from
 * its position and collecting distinct nodes:
 *
 *        token i-1          token i          token i+1
 *     ─────●────────────────────●────────────────●──────▶ clockwise (wraps at 2^32)
 *           (  positions here  ]
 *           └ all owned by the walk that starts at token i
 *
 * Zones: the walk first takes one node from each zone not yet used, until min(R, zone count)
 * distinct zones hold a copy; the remaining copies go to the next distinct nodes of the walk
 * whatever their zone. A node without a zone is a failure domain of its own, so a ring without
 * zones is the plain clockwise walk.
 *
 * Equal tokens (a 32-bit collision) are ordered by node id, then vnode index, so the order, and
 * hence placement, is total and identical on every node. The ring is immutable.
 */
import { assert } from '../util/assert.ts';
import { chunkPosition, RING_SIZE, vnodeToken } from './hash.ts';
import { VNODES_PER_WEIGHT } from './limits.ts';
import { type RingMembership, validateMembership } from './membership.ts';

/** An immutable consistent-hash ring built from one membership version. */
export class Ring {
  /** Version of the membership the ring was built from. */
  readonly version: number;
  /** Node ids, ascending; indexes into this array are the ring's internal node numbers. */
  readonly #nodeIds: readonly number[];
  /** Weight of each node (by internal number). */
  readonly #weights: readonly number[];
  /** Zone number of each node (by internal number); unzoned nodes get a zone of their own. */
  readonly #nodeZone: Uint32Array;
  readonly #zoneCount: number;
  /** Tokens, ascending (ties broken by node id then vnode index). */
  readonly #tokens: Uint32Array;
  /** Internal node number of each token. */
  readonly #tokenNode: Uint32Array;

  /**
   * Builds the ring. Throws TypeError listing every problem when the membership is invalid
   * (see validateMembership), since it comes from outside this module.
   */
  constructor(membership: RingMembership) {
    const problems = validateMembership(membership);
    if (problems.length > 0) throw new TypeError(`invalid ring membership: ${problems.join('; ')}`);
    const nodes = [...membership.nodes].sort((a, b) => a.id - b.id);
    this.version = membership.version;
    this.#nodeIds = nodes.map((n) => n.id);
    this.#weights = nodes.map((n) => n.weight);

    const zoneNumbers = new Map<string, number>();
    this.#nodeZone = new Uint32Array(nodes.length);
    let zoneCount = 0;
    for (const [i, n] of nodes.entries()) {
      if (n.zone === undefined) {
        this.#nodeZone[i] = zoneCount++;
        continue;
      }
      let z = zoneNumbers.get(n.zone);
      if (z === undefined) {
        z = zoneCount++;
        zoneNumbers.set(n.zone, z);
      }
      this.#nodeZone[i] = z;
    }
    this.#zoneCount = zoneCount;

    const total = nodes.reduce((sum, n) => sum + n.weight * VNODES_PER_WEIGHT, 0);
    const raw = new Uint32Array(total);
    const rawNode = new Uint32Array(total);
    const rawVnode = new Uint32Array(total);
    let k = 0;
    for (const [i, n] of nodes.entries()) {
      for (let v = 0; v < n.weight * VNODES_PER_WEIGHT; v++, k++) {
        raw[k] = vnodeToken(n.id, v);
        rawNode[k] = i;
        rawVnode[k] = v;
      }
    }
    // Node numbers follow ascending node id, so (token, node number, vnode) is the tie order.
    const order = Array.from({ length: total }, (_, j) => j);
    order.sort((a, b) => raw[a]! - raw[b]! || rawNode[a]! - rawNode[b]! || rawVnode[a]! - rawVnode[b]!);
    this.#tokens = new Uint32Array(total);
    this.#tokenNode = new Uint32Array(total);
    for (const [j, src] of order.entries()) {
      this.#tokens[j] = raw[src]!;
      this.#tokenNode[j] = rawNode[src]!;
    }

    assert(k === total && total > 0, 'every node placed all of its vnodes');
    assert(this.#zoneCount >= 1 && this.#zoneCount <= nodes.length, 'zone count is between 1 and the node count');
    for (let j = 1; j < total; j++) assert(this.#tokens[j - 1]! <= this.#tokens[j]!, 'tokens are sorted');
  }

  /** Node ids of the ring, ascending. A fresh array the caller may keep. */
  nodes(): number[] {
    return [...this.#nodeIds];
  }

  /** Number of nodes. */
  get nodeCount(): number {
    return this.#nodeIds.length;
  }

  /** Number of distinct failure domains (zones, counting each unzoned node as one). */
  get zoneCount(): number {
    return this.#zoneCount;
  }

  /** Number of tokens (virtual nodes). */
  get tokenCount(): number {
    return this.#tokens.length;
  }

  /** The i-th token in ring order. */
  tokenAt(i: number): number {
    assert(Number.isInteger(i) && i >= 0 && i < this.#tokens.length, `token index ${i} in range`);
    return this.#tokens[i]!;
  }

  /** Weight of a member node; undefined for a node not in the ring. */
  weightOf(nodeId: number): number | undefined {
    const i = this.#nodeIds.indexOf(nodeId);
    return i < 0 ? undefined : this.#weights[i];
  }

  /**
   * The owners of a chunk in preference order: min(r, nodeCount) distinct node ids, spread over
   * as many zones as possible. Identical on every node for the same membership. Throws TypeError
   * for a malformed chunk id or an r that is not a positive integer.
   */
  owners(chunkId: string, r: number): number[] {
    return this.ownersAt(chunkPosition(chunkId), r);
  }

  /** The owners of ring position `position` (see owners). */
  ownersAt(position: number, r: number): number[] {
    if (!Number.isInteger(position) || position < 0 || position >= RING_SIZE) throw new TypeError(`position must be a u32, got ${position}`);
    if (!Number.isInteger(r) || r < 1) throw new TypeError(`r must be a positive integer, got ${r}`);
    return this.#walk(this.#successor(position), r);
  }

  /** Index of the first token at or after `position`, wrapping to 0 past the last token. */
  #successor(position: number): number {
    let lo = 0;
    let hi = this.#tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#tokens[mid]! < position) lo = mid + 1;
      else hi = mid;
    }
    const i = lo === this.#tokens.length ? 0 : lo;
    assert(i >= 0 && i < this.#tokens.length, 'successor is a token index');
    assert(this.#tokens[i]! >= position || lo === this.#tokens.length, 'successor is clockwise of the position');
    assert(i === 0 || this.#tokens[i - 1]! < position, 'successor is the first token at or after the position');
    return i;
  }

  /** Walks clockwise from token `start` and picks the owners (zones first, then fill). */
  #walk(start: number, r: number): number[] {
    const want = Math.min(r, this.#nodeIds.length);
    const zonesWanted = Math.min(want, this.#zoneCount);
    const fillsWanted = want - zonesWanted;
    const seenNode = new Uint8Array(this.#nodeIds.length);
    const seenZone = new Uint8Array(this.#zoneCount);
    const picks: number[] = [];
    const fills: number[] = [];
    const total = this.#tokens.length;
    for (let step = 0; step < total && (picks.length < zonesWanted || fills.length < fillsWanted); step++) {
      const node = this.#tokenNode[(start + step) % total]!;
      if (seenNode[node]) continue;
      seenNode[node] = 1;
      const zone = this.#nodeZone[node]!;
      if (!seenZone[zone] && picks.length < zonesWanted) {
        seenZone[zone] = 1;
        picks.push(this.#nodeIds[node]!);
      } else if (fills.length < fillsWanted) {
        fills.push(this.#nodeIds[node]!);
      }
    }
    // Every node has at least one token, so one lap sees every zone and node.
    assert(picks.length === zonesWanted && fills.length === fillsWanted, 'the walk found enough owners');
    const owners = picks.concat(fills);
    assert(new Set(owners).size === owners.length, 'owners are distinct');
    return owners;
  }
}
