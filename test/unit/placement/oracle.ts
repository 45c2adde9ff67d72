/**
 * A deliberately naive placement oracle for the property tests: every vnode in one plain array,
 * sorted; a linear scan for the first token at or after the chunk's position; a full clockwise
 * lap listing distinct nodes; then zones by first appearance. It shares no code with
 * src/placement/ except the murmur package itself, so agreement means the fast ring (binary
 * search, early-stopping walk, typed arrays) computes the documented rule.
 */
import murmur from 'murmurhash3js-revisited';
import { SeededRandom } from '../../../src/util/random.ts';

export interface OracleNode {
  id: number;
  weight: number;
  zone?: string;
}

interface Vnode {
  token: number;
  id: number;
  v: number;
}

/** The documented token rule: murmur3 x86_32, seed 0, over (id u32 BE, vnode u32 BE). */
function token(id: number, v: number): number {
  const bytes = [(id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255, (v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  return murmur.x86.hash32(bytes, 0) as number;
}

/** The naive ring. */
export class OracleRing {
  readonly vnodes: Vnode[] = [];
  readonly nodes: OracleNode[];

  constructor(nodes: readonly OracleNode[], vnodesPerWeight: number) {
    this.nodes = [...nodes];
    for (const n of nodes) {
      for (let v = 0; v < n.weight * vnodesPerWeight; v++) this.vnodes.push({ token: token(n.id, v), id: n.id, v });
    }
    this.vnodes.sort((a, b) => a.token - b.token || a.id - b.id || a.v - b.v);
  }

  owners(chunkId: string, r: number): number[] {
    const position = Number.parseInt(chunkId.slice(0, 8), 16);
    let start = this.vnodes.findIndex((x) => x.token >= position);
    if (start === -1) start = 0;
    // One full lap, distinct nodes in clockwise order.
    const lap: number[] = [];
    for (let k = 0; k < this.vnodes.length; k++) {
      const id = this.vnodes[(start + k) % this.vnodes.length]!.id;
      if (!lap.includes(id)) lap.push(id);
    }
    const zoneOf = (id: number) => {
      const z = this.nodes.find((n) => n.id === id)!.zone;
      return z === undefined ? `unzoned-node-${id}` : `zone-${z}`;
    };
    const want = Math.min(r, this.nodes.length);
    const zones = new Set(this.nodes.map((n) => zoneOf(n.id)));
    const zonesWanted = Math.min(want, zones.size);
    const picks: number[] = [];
    const usedZones = new Set<string>();
    for (const id of lap) {
      if (picks.length < zonesWanted && !usedZones.has(zoneOf(id))) {
        usedZones.add(zoneOf(id));
        picks.push(id);
      }
    }
    const fills = lap.filter((id) => !picks.includes(id)).slice(0, want - zonesWanted);
    return [...picks, ...fills];
  }
}

/** `count` chunk ids (64 hex digits) from a seed, reproducibly. */
export function chunkIds(seed: number, count: number): string[] {
  const rnd = new SeededRandom(seed);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    let id = '';
    for (let w = 0; w < 8; w++) id += rnd.nextUint32().toString(16).padStart(8, '0');
    ids.push(id);
  }
  return ids;
}

/** A membership of `n` equal-weight nodes with ids 1..n. */
export function equalMembership(n: number, version = 1): { version: number; nodes: OracleNode[] } {
  return { version, nodes: Array.from({ length: n }, (_, i) => ({ id: i + 1, weight: 1 })) };
}
