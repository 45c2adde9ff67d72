/**
 * Goal: with equal weights every node holds about the same amount of data (±15% of the mean at
 * 3–16 nodes, R = 3), and weight buys proportionally more data.
 *
 * Method: rings with ids 1..N; count R=3 placements of 60,000 seeded chunk ids per node, and also
 * compute each node's exact keyspace share (ownershipShares). Sampling adds ~1% relative noise
 * (a node's count has relative sd ≈ 1/sqrt(60000·3/N), 0.94% at N=16), far inside the margin.
 * VNODES_PER_WEIGHT (src/placement/limits.ts) was chosen by a sweep over 200 random id sets per N.
 *
 * Worst deviation from the mean, measured (60k sample / exact):
 *   N=3  0.00% / 0.00%  (R = N: every node holds every chunk)
 *   N=4  2.38% / 1.99%
 *   N=5  4.27% / 4.29%
 *   N=8  5.16% / 4.83%
 *   N=12 4.75% / 5.98%
 *   N=16 5.89% / 7.07%
 *
 * Weights: vnodes are proportional to weight, so the primary (R=1) share of a weight-2 node is
 * ~2× (measured 1.96–2.11× at N=4–12). With R > 1 a node holds at most one copy of a chunk, so
 * skipping its own later vnodes compresses the ratio (Ceph calls it the multi-pick anomaly):
 * measured at R=3, 1.29× (N=4, where 2× would exceed the 1/R cap), 1.57× (N=6), 1.72× (N=8),
 * 1.79× (N=12). Correcting that needs vnode counts that depend on other nodes' weights, which
 * would move data between untouched nodes on every change (diff.test.ts forbids that).
 */
import test from 'ava';
import { ownershipShares, Ring } from '../../../src/placement/index.ts';
import { SeededRandom } from '../../../src/util/random.ts';
import { chunkIds, equalMembership } from './oracle.ts';

const SAMPLE_CHUNKS = 60_000;
const R = 3;
const TOLERANCE = 0.15;
const ids = chunkIds(11, SAMPLE_CHUNKS);

for (const n of [3, 4, 5, 8, 12, 16]) {
  test(`equal weights, ${n} nodes: every node's R=3 share is within ±15% of the mean`, (t) => {
    const ring = new Ring(equalMembership(n));
    const counts = new Map<number, number>(ring.nodes().map((id) => [id, 0]));
    for (const id of ids) for (const o of ring.owners(id, R)) counts.set(o, counts.get(o)! + 1);
    const mean = (SAMPLE_CHUNKS * Math.min(R, n)) / n;
    let worstSample = 0;
    for (const [node, c] of counts) {
      worstSample = Math.max(worstSample, Math.abs(c / mean - 1));
      t.true(Math.abs(c / mean - 1) <= TOLERANCE, `node ${node}: ${c} placements vs mean ${mean}`);
    }
    let worstExact = 0;
    for (const [node, share] of ownershipShares(ring, R)) {
      worstExact = Math.max(worstExact, Math.abs(share * n - 1));
      t.true(Math.abs(share * n - 1) <= TOLERANCE, `node ${node}: exact share ${share} vs ${1 / n}`);
    }
    t.log(`N=${n}: worst deviation sample ${(worstSample * 100).toFixed(2)}%, exact ${(worstExact * 100).toFixed(2)}%`);
  });
}

test('equal weights, random node ids: exact R=3 shares stay within ±15% (8 and 16 nodes)', (t) => {
  const rnd = new SeededRandom(2024);
  for (const n of [8, 16]) {
    for (let set = 0; set < 2; set++) {
      const nodeIds = new Set<number>();
      while (nodeIds.size < n) nodeIds.add(rnd.nextUint32());
      const ring = new Ring({ version: 1, nodes: [...nodeIds].map((id) => ({ id, weight: 1 })) });
      for (const [node, share] of ownershipShares(ring, R)) {
        t.true(Math.abs(share * n - 1) <= TOLERANCE, `N=${n} set ${set} node ${node}: share ${share}`);
      }
    }
  }
});

for (const n of [4, 8, 12]) {
  test(`weight 2 among ${n} nodes: ~2× the primary share, more at R=3 but never past 1/R`, (t) => {
    const m = equalMembership(n);
    m.nodes[0]!.weight = 2;
    const ring = new Ring(m);
    const ratio = (r: number) => {
      const shares = ownershipShares(ring, r);
      const light = [...shares].filter(([id]) => id !== 1).map(([, s]) => s);
      return { heavy: shares.get(1)!, ratio: shares.get(1)! / (light.reduce((a, b) => a + b, 0) / light.length) };
    };
    const primary = ratio(1);
    t.true(primary.ratio >= 1.8 && primary.ratio <= 2.2, `R=1 ratio ${primary.ratio}`);
    const replicated = ratio(R);
    t.true(replicated.heavy <= 1 / R + 1e-12, 'a node holds at most one copy of each chunk');
    // Measured 1.29× at N=4 (capped), 1.72× at N=8, 1.79× at N=12: see the header.
    t.true(replicated.ratio >= (n >= 8 ? 1.6 : 1.2), `R=3 ratio ${replicated.ratio}`);
    t.log(`N=${n}: weight-2 share ratio R=1 ${primary.ratio.toFixed(3)}, R=3 ${replicated.ratio.toFixed(3)}`);
  });
}
