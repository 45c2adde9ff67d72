/**
 * Goal: a membership change disturbs as little as possible. The ring guarantees, for every chunk
 * and every r (tokens depend only on (node id, vnode index), so other nodes' tokens never move):
 *
 *   join of X      X ∉ after  ⇒ after = before (same owners, same order)
 *                  X ∈ after  ⇒ gained = [X], and lost = [one old owner] unless the change raised
 *                               min(r, N) (then lost = []); without zones, after is before with X
 *                               inserted at its clockwise place and truncated to min(r, N+1).
 *   leave of X     the same, read backwards (diff after→before): only chunks X owned change; each
 *                  loses X and gains at most one node.
 *   weight of X    gained ⊆ [X] (heavier) or lost ⊆ [X] (lighter); every other node keeps exactly
 *                  the chunks it had.
 *
 * Method: fast-check generates memberships with and without zones, the changed node (id, weight,
 * zone) and chunk ids, and checks these per chunk through RingDiff.movesFor; keyspace() and
 * sample() are checked against each other.
 */
import test from 'ava';
import fc from 'fast-check';
import { diffRings, type RingMembership, Ring } from '../../../src/placement/index.ts';

const RUNS = 20;
const chunkIdArb = fc.stringMatching(/^[0-9a-f]{64}$/);
const chunksArb = fc.array(chunkIdArb, { minLength: 8, maxLength: 24 });

/** A membership plus one extra node X not in it. */
const joinArb = (withZones: boolean) =>
  fc
    .uniqueArray(
      fc.record({
        id: fc.integer({ min: 0, max: 0xffff_ffff }),
        weight: fc.integer({ min: 1, max: 2 }),
        zone: withZones ? fc.option(fc.constantFrom('a', 'b', 'c'), { nil: undefined }) : fc.constant(undefined),
      }),
      { minLength: 2, maxLength: 9, selector: (n) => n.id },
    )
    .map((all) => {
      const nodes = all.map((n) => (n.zone === undefined ? { id: n.id, weight: n.weight } : n));
      const x = nodes.pop()!;
      return { before: { version: 1, nodes } as RingMembership, x };
    });

const same = (a: number[], b: number[]) => JSON.stringify(a) === JSON.stringify(b);

for (const withZones of [false, true]) {
  const label = withZones ? 'with zones' : 'without zones';

  test(`join ${label}: a chunk changes owners only by gaining the new node, losing at most one`, (t) => {
    fc.assert(
      fc.property(joinArb(withZones), chunksArb, fc.integer({ min: 1, max: 5 }), ({ before, x }, ids, r) => {
        const old = new Ring(before);
        const grown = new Ring({ version: 2, nodes: [...before.nodes, x] });
        const d = diffRings(old, grown);
        for (const id of ids) {
          const m = d.movesFor(id, r);
          if (!m.after.includes(x.id)) {
            if (!same(m.after, m.before)) return false;
            continue;
          }
          if (!same(m.gained, [x.id])) return false;
          if (m.lost.length !== (m.after.length === m.before.length ? 1 : 0)) return false;
          // Without zones the order is the plain clockwise walk: X is inserted, the rest shift.
          if (!withZones && !same(m.after.filter((o) => o !== x.id), m.before.slice(0, m.after.length - 1))) return false;
        }
        return true;
      }),
      { numRuns: RUNS },
    );
    t.pass();
  });

  test(`leave ${label}: only chunks the leaving node owned change, each gaining at most one node`, (t) => {
    fc.assert(
      fc.property(joinArb(withZones), chunksArb, fc.integer({ min: 1, max: 5 }), ({ before, x }, ids, r) => {
        const full = new Ring({ version: 1, nodes: [...before.nodes, x] });
        const shrunk = new Ring({ version: 2, nodes: before.nodes });
        const d = diffRings(full, shrunk);
        for (const id of ids) {
          const m = d.movesFor(id, r);
          if (!m.before.includes(x.id)) {
            if (!same(m.after, m.before)) return false;
            continue;
          }
          if (!same(m.lost, [x.id])) return false;
          if (m.gained.length !== (m.after.length === m.before.length ? 1 : 0)) return false;
          if (m.gained.includes(x.id)) return false;
        }
        return true;
      }),
      { numRuns: RUNS },
    );
    t.pass();
  });

  test(`weight change ${label}: only the reweighted node gains or loses copies`, (t) => {
    fc.assert(
      fc.property(joinArb(withZones), chunksArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 2, max: 3 }), ({ before, x }, ids, r, heavier) => {
        const light = new Ring({ version: 1, nodes: [...before.nodes, { ...x, weight: 1 }] });
        const heavy = new Ring({ version: 2, nodes: [...before.nodes, { ...x, weight: heavier }] });
        const up = diffRings(light, heavy);
        const down = diffRings(heavy, light);
        for (const id of ids) {
          const u = up.movesFor(id, r);
          if (!(u.gained.length === 0 || same(u.gained, [x.id])) || u.lost.length !== u.gained.length) return false;
          const w = down.movesFor(id, r);
          if (!(w.lost.length === 0 || same(w.lost, [x.id])) || w.lost.length !== w.gained.length) return false;
        }
        return true;
      }),
      { numRuns: RUNS },
    );
    t.pass();
  });
}

test('keyspace(): only the joining node gains, and nothing moves between untouched nodes', (t) => {
  fc.assert(
    fc.property(joinArb(true), fc.integer({ min: 1, max: 4 }), ({ before, x }, r) => {
      const d = diffRings(new Ring(before), new Ring({ version: 2, nodes: [...before.nodes, x] }));
      const exact = d.keyspace(r);
      for (const [id, f] of exact.gainedByNode) if (id !== x.id && f !== 0) return false;
      if ((exact.lostByNode.get(x.id) ?? 0) !== 0) return false;
      // Every gained copy lands on X: X's gain is the fraction of chunks that changed.
      if (Math.abs((exact.gainedByNode.get(x.id) ?? 0) - exact.changedFraction) > 1e-12) return false;
      if (Math.abs(exact.copiesGainedPerChunk - exact.changedFraction) > 1e-12) return false;
      return true;
    }),
    { numRuns: 12 },
  );
  t.pass();
});

test('keyspace() of identical rings moves nothing', (t) => {
  const m = { version: 1, nodes: [1, 2, 3, 4].map((id) => ({ id, weight: 1 })) };
  const s = diffRings(new Ring(m), new Ring({ ...m, version: 2 })).keyspace(3);
  t.is(s.changedFraction, 0);
  t.is(s.movedFraction, 0);
  t.is(s.copiesLostPerChunk, 0);
});
