/**
 * Goal: adding or removing one node of N moves close to 1/N of the data (R = 3), and only to or
 * from that node.
 *
 * Method: rings of N equal-weight nodes (ids 1..N), N ∈ {3, 4, 5, 8, 12, 16}; join node N+1, or
 * remove node 1. The moved fraction is copies written to new owners ÷ copies held afterwards,
 * estimated over 20,000 seeded chunk ids and computed exactly over the keyspace.
 *
 * Tolerance: every gained copy of a join goes to the new node, so the moved fraction is the new
 * node's share, ideally 1/(N+1) (leave: the removed node's share, ideally 1/N). Shares deviate from
 * the mean by at most ~9.4% (balance sweep in src/placement/limits.ts). Sampling noise: the
 * fraction of changed chunks p = 3/(N+1) has relative standard deviation sqrt((1-p)/(p·20000)),
 * at most 1.6% (N=16), so 4 sd is 6.1%. Hence |moved/ideal − 1| ≤ 20% holds with margin, which
 * implies the requested [0.5/N, 1.6/N] (asserted too). The sample must be within 4 sd of exact.
 *
 * Measured (exact keyspace / 20k sample, moved fraction):
 *   N    join N→N+1 (ideal 1/(N+1))          leave N→N-1 (ideal 1/N)
 *   3    0.2450 / 0.2438  (0.2500)           0 (R = 3 = N: the two left hold every chunk already)
 *   4    0.2064 / 0.2082  (0.2000)           0.2506 / 0.2520  (0.2500)
 *   5    0.1698 / 0.1695  (0.1667)           0.1914 / 0.1927  (0.2000)
 *   8    0.1118 / 0.1122  (0.1111)           0.1229 / 0.1245  (0.1250)
 *   12   0.0760 / 0.0763  (0.0769)           0.0799 / 0.0812  (0.0833)
 *   16   0.0593 / 0.0602  (0.0588)           0.0611 / 0.0625  (0.0625)
 */
import test from 'ava';
import { diffRings, Ring } from '../../../src/placement/index.ts';
import { chunkIds, equalMembership } from './oracle.ts';

const SAMPLE_CHUNKS = 20_000;
const R = 3;
const ids = chunkIds(7, SAMPLE_CHUNKS);

for (const n of [3, 4, 5, 8, 12, 16]) {
  test(`join one node to ${n}: ~1/(N+1) of the data moves, all of it to the new node`, (t) => {
    const m = equalMembership(n);
    const x = n + 1;
    const d = diffRings(new Ring(m), new Ring({ version: 2, nodes: [...m.nodes, { id: x, weight: 1 }] }));
    const exact = d.keyspace(R);
    const sample = d.sample(ids, R);
    const ideal = 1 / (n + 1);
    t.log(`N=${n} join: moved exact ${exact.movedFraction.toFixed(4)} sample ${sample.movedFraction.toFixed(4)} ideal ${ideal.toFixed(4)}`);
    for (const s of [exact, sample]) {
      t.true(s.movedFraction >= 0.5 / n && s.movedFraction <= 1.6 / n, `moved ${s.movedFraction} in [0.5/N, 1.6/N]`);
      t.true(Math.abs(s.movedFraction / ideal - 1) <= 0.2, `moved ${s.movedFraction} within 20% of ${ideal}`);
      for (const [id, f] of s.gainedByNode) if (id !== x) t.is(f, 0, `node ${id} gains nothing`);
      t.is(s.lostByNode.get(x), 0, 'the new node loses nothing');
    }
    const p = exact.changedFraction;
    const sd = Math.sqrt((p * (1 - p)) / SAMPLE_CHUNKS);
    t.true(Math.abs(sample.changedFraction - p) <= 4 * sd, `sample ${sample.changedFraction} within 4 sd (${sd}) of exact ${p}`);
  });

  test(`remove one node of ${n}: ~1/N of the data moves, all of it from the removed node`, (t) => {
    const m = equalMembership(n);
    const gone = 1;
    const d = diffRings(new Ring(m), new Ring({ version: 2, nodes: m.nodes.filter((x) => x.id !== gone) }));
    const exact = d.keyspace(R);
    const sample = d.sample(ids, R);
    t.log(`N=${n} leave: moved exact ${exact.movedFraction.toFixed(4)} sample ${sample.movedFraction.toFixed(4)} ideal ${(1 / n).toFixed(4)}`);
    for (const s of [exact, sample]) {
      for (const [id, f] of s.lostByNode) if (id !== gone) t.is(f, 0, `node ${id} loses nothing`);
      t.is(s.gainedByNode.get(gone), 0, 'the removed node gains nothing');
      if (n <= R) {
        // R ≥ N: the remaining nodes already hold every chunk; only the removed copies go.
        t.is(s.movedFraction, 0);
        continue;
      }
      t.true(s.movedFraction >= 0.5 / n && s.movedFraction <= 1.6 / n, `moved ${s.movedFraction} in [0.5/N, 1.6/N]`);
      t.true(Math.abs(s.movedFraction * n - 1) <= 0.2, `moved ${s.movedFraction} within 20% of 1/${n}`);
    }
  });
}
