/**
 * Goal: the ring computes exactly the documented placement rule, for any membership.
 * Method: fast-check generates memberships (1–9 nodes, arbitrary u32 ids, weights 1–2, optional
 * zones from a small alphabet so zones repeat) and chunk ids, and each property compares the real
 * Ring against the naive OracleRing (oracle.ts) or checks an invariant directly. Run counts are
 * kept small because each run builds rings of up to 9k vnodes; fast-check shrinks and prints the
 * seed on failure.
 */
import test from 'ava';
import fc from 'fast-check';
import { VNODES_PER_WEIGHT } from '../../../src/placement/limits.ts';
import { type RingMembership, Ring } from '../../../src/placement/index.ts';
import { OracleRing } from './oracle.ts';

const RUNS = 25;
const CHUNKS_PER_RUN = 24;

const chunkIdArb = fc.stringMatching(/^[0-9a-f]{64}$/);

/** Memberships: unique u32 ids; zones from {a,b,c} or none (mixed is allowed). */
const membershipArb = (maxNodes: number, withZones: boolean): fc.Arbitrary<RingMembership> =>
  fc
    .uniqueArray(
      fc.record({
        id: fc.integer({ min: 0, max: 0xffff_ffff }),
        weight: fc.integer({ min: 1, max: 2 }),
        zone: withZones ? fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }) : fc.constant(undefined),
      }),
      { minLength: 1, maxLength: maxNodes, selector: (n) => n.id },
    )
    .map((nodes) => ({
      version: 1,
      nodes: nodes.map((n) => (n.zone === undefined ? { id: n.id, weight: n.weight } : n)),
    }));

const zoneKey = (m: RingMembership, id: number): string => {
  const z = m.nodes.find((n) => n.id === id)!.zone;
  return z === undefined ? `node:${id}` : `zone:${z}`;
};

test('owners() has min(r, N) distinct members, the same on a ring built from any node order', (t) => {
  fc.assert(
    fc.property(membershipArb(9, true), fc.array(chunkIdArb, { minLength: 1, maxLength: CHUNKS_PER_RUN }), fc.integer({ min: 1, max: 6 }), (m, ids, r) => {
      const ring = new Ring(m);
      const shuffled = new Ring({ version: m.version, nodes: [...m.nodes].reverse() });
      const members = new Set(m.nodes.map((n) => n.id));
      for (const id of ids) {
        const owners = ring.owners(id, r);
        if (owners.length !== Math.min(r, m.nodes.length)) return false;
        if (new Set(owners).size !== owners.length) return false;
        if (!owners.every((o) => members.has(o))) return false;
        if (JSON.stringify(shuffled.owners(id, r)) !== JSON.stringify(owners)) return false;
        if (JSON.stringify(ring.owners(id, r)) !== JSON.stringify(owners)) return false;
      }
      return true;
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

test('owners() spans min(R, zone count) distinct zones, and those come first', (t) => {
  fc.assert(
    fc.property(membershipArb(9, true), fc.array(chunkIdArb, { minLength: 1, maxLength: CHUNKS_PER_RUN }), fc.integer({ min: 1, max: 6 }), (m, ids, r) => {
      const ring = new Ring(m);
      const zoneCount = new Set(m.nodes.map((n) => zoneKey(m, n.id))).size;
      for (const id of ids) {
        const owners = ring.owners(id, r);
        const spread = Math.min(owners.length, zoneCount);
        const leading = new Set(owners.slice(0, spread).map((o) => zoneKey(m, o)));
        if (leading.size !== spread) return false;
        if (new Set(owners.map((o) => zoneKey(m, o))).size !== spread) return false;
      }
      return true;
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

test('owners() agrees with the naive oracle (sorted vnodes, linear scan, full lap)', (t) => {
  fc.assert(
    fc.property(membershipArb(7, true), fc.array(chunkIdArb, { minLength: 1, maxLength: CHUNKS_PER_RUN }), fc.integer({ min: 1, max: 5 }), (m, ids, r) => {
      const ring = new Ring(m);
      const oracle = new OracleRing(m.nodes, VNODES_PER_WEIGHT);
      for (const id of ids) {
        const real = ring.owners(id, r);
        const naive = oracle.owners(id, r);
        if (JSON.stringify(real) !== JSON.stringify(naive)) {
          t.log({ id, r, real, naive });
          return false;
        }
      }
      return true;
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

test('owners() agrees with the oracle at every token boundary (position = token, token + 1)', (t) => {
  // Chunk positions equal to a token belong to that token; one past it belongs to the next.
  // Random ids almost never land on a token, so probe the boundaries explicitly.
  fc.assert(
    fc.property(membershipArb(5, true), fc.integer({ min: 1, max: 4 }), fc.nat(), (m, r, pick) => {
      const ring = new Ring(m);
      const oracle = new OracleRing(m.nodes, VNODES_PER_WEIGHT);
      for (let k = 0; k < 16; k++) {
        const token = ring.tokenAt((pick + k * 7919) % ring.tokenCount);
        for (const p of [token, (token + 1) % 2 ** 32, (token + 2 ** 32 - 1) % 2 ** 32]) {
          const id = p.toString(16).padStart(8, '0') + 'f'.repeat(56);
          if (JSON.stringify(ring.owners(id, r)) !== JSON.stringify(oracle.owners(id, r))) return false;
        }
      }
      return true;
    }),
    { numRuns: RUNS },
  );
  t.pass();
});
