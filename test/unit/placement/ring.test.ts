/**
 * Goal: the ring's contract at its edges: input validation, r capping, argument errors, equal
 * tokens, the range decomposition, and a pinned layout.
 * Method: hand-picked cases. The golden values pin the data layout: if a dependency upgrade or a
 * refactor changes them, chunks already stored would be looked for on the wrong nodes, so a
 * change here must come with a rebalance plan, never with a quick re-pin.
 */
import test from 'ava';
import murmur from 'murmurhash3js-revisited';
import {
  chunkPosition,
  isChunkId,
  ownerRanges,
  RING_SIZE,
  Ring,
  rangeLength,
  validateMembership,
  VNODES_PER_WEIGHT,
  vnodeToken,
} from '../../../src/placement/index.ts';
import { OracleRing } from './oracle.ts';

const hex = (prefix: string) => prefix.padEnd(64, '0');

test('murmur3 x86_32 matches the reference vectors (the token hash must never drift)', (t) => {
  const bytes = (s: string) => Array.from(new TextEncoder().encode(s));
  t.is(murmur.x86.hash32(bytes('hello'), 0), 0x248bfa47);
  t.is(murmur.x86.hash32(bytes('The quick brown fox jumps over the lazy dog'), 0), 0x2e4ff723);
  t.is(vnodeToken(1, 0), 3404329265);
  t.is(vnodeToken(2, 511), 4225188958);
  t.is(vnodeToken(0xffff_ffff, 7), 1169262407);
});

test('golden placement for a fixed zoned membership', (t) => {
  const ring = new Ring({
    version: 1,
    nodes: [
      { id: 1, weight: 1, zone: 'a' },
      { id: 2, weight: 1, zone: 'a' },
      { id: 3, weight: 2, zone: 'b' },
      { id: 4, weight: 1 },
      { id: 5, weight: 1, zone: 'b' },
    ],
  });
  const golden: [string, number[], number[]][] = [
    ['0'.repeat(64), [3, 4, 1], [3, 4, 1, 2, 5]],
    ['f'.repeat(64), [3, 4, 1], [3, 4, 1, 2, 5]],
    [hex('8'), [2, 3, 4], [2, 3, 4, 5, 1]],
    [hex('deadbeef'), [2, 3, 4], [2, 3, 4, 5, 1]],
    ['0123456789abcdef'.repeat(4), [3, 2, 4], [3, 2, 4, 5, 1]],
  ];
  for (const [id, r3, r5] of golden) {
    t.deepEqual(ring.owners(id, 3), r3, `${id.slice(0, 8)} R=3`);
    t.deepEqual(ring.owners(id, 5), r5, `${id.slice(0, 8)} R=5`);
  }
});

test('chunk position is the first 32 bits of the id; malformed ids are refused', (t) => {
  t.is(chunkPosition(hex('deadbeef')), 0xdeadbeef);
  t.is(chunkPosition('f'.repeat(64)), RING_SIZE - 1);
  t.true(isChunkId('a'.repeat(64)));
  for (const bad of ['', 'a'.repeat(63), 'a'.repeat(65), 'A'.repeat(64), `${'a'.repeat(63)}g`, `../${'a'.repeat(61)}`]) {
    t.false(isChunkId(bad), JSON.stringify(bad));
    t.throws(() => chunkPosition(bad), { instanceOf: TypeError }, JSON.stringify(bad));
  }
});

test('r is capped at the node count and must be a positive integer', (t) => {
  const ring = new Ring({ version: 3, nodes: [{ id: 7, weight: 1 }, { id: 9, weight: 1 }] });
  t.is(ring.version, 3);
  t.deepEqual(ring.nodes(), [7, 9]);
  t.is(ring.nodeCount, 2);
  t.is(ring.tokenCount, 2 * VNODES_PER_WEIGHT);
  t.is(ring.owners(hex('1'), 5).length, 2);
  t.is(ring.owners(hex('1'), 1).length, 1);
  for (const r of [0, -1, 1.5, Number.NaN]) t.throws(() => ring.owners(hex('1'), r), { instanceOf: TypeError }, `r=${r}`);
  t.throws(() => ring.ownersAt(RING_SIZE, 1), { instanceOf: TypeError });
});

test('a single node owns everything', (t) => {
  const ring = new Ring({ version: 1, nodes: [{ id: 42, weight: 1 }] });
  t.deepEqual(ring.owners(hex('0'), 3), [42]);
  t.deepEqual(ownerRanges(ring, 3), [{ start: ring.tokenAt(ring.tokenCount - 1), end: ring.tokenAt(ring.tokenCount - 1), owners: [42] }]);
});

test('invalid memberships are refused with every problem listed', (t) => {
  t.deepEqual(validateMembership({ version: 1, nodes: [{ id: 1, weight: 1 }] }), []);
  t.true(validateMembership({ version: 1, nodes: [] }).length === 1);
  const problems = validateMembership({
    version: -1,
    nodes: [
      { id: 1, weight: 0 },
      { id: 1, weight: 1 },
      { id: -2, weight: 1.5 },
      { id: 2 ** 32, weight: 1, zone: '' },
    ],
  });
  t.is(problems.length, 7, problems.join('\n'));
  t.throws(() => new Ring({ version: 1, nodes: [{ id: 1, weight: 1 }, { id: 1, weight: 1 }] }), { instanceOf: TypeError, message: /appears twice/ });
  t.throws(() => new Ring({ version: 1, nodes: [{ id: 1, weight: 10_000 }] }), { instanceOf: TypeError, message: /weight/ });
});

test('equal tokens of two nodes are ordered by node id, identically to the oracle', (t) => {
  // Found by search: node 24 vnode 296 and node 155 vnode 157 share a token.
  const token = vnodeToken(24, 296);
  t.is(vnodeToken(155, 157), token);
  const nodes = [
    { id: 155, weight: 1 },
    { id: 24, weight: 1 },
  ];
  const ring = new Ring({ version: 1, nodes });
  const oracle = new OracleRing(nodes, VNODES_PER_WEIGHT);
  for (const p of [token - 1, token, token + 1]) {
    const id = hex(p.toString(16).padStart(8, '0'));
    t.deepEqual(ring.owners(id, 1), oracle.owners(id, 1), `position ${p}`);
    t.deepEqual(ring.owners(id, 2), oracle.owners(id, 2), `position ${p}`);
  }
  t.deepEqual(ring.ownersAt(token, 2), [24, 155]);
  const covered = ownerRanges(ring, 1).reduce((sum, r) => sum + rangeLength(r.start, r.end), 0);
  t.is(covered, RING_SIZE);
});

test('ownerRanges() tiles the circle in order and agrees with owners() inside each range', (t) => {
  const ring = new Ring({
    version: 1,
    nodes: [1, 2, 3, 4, 5].map((id) => ({ id, weight: 1, zone: id % 2 === 0 ? 'even' : 'odd' })),
  });
  const ranges = ownerRanges(ring, 3);
  let covered = 0;
  for (const [i, r] of ranges.entries()) {
    covered += rangeLength(r.start, r.end);
    const next = ranges[(i + 1) % ranges.length]!;
    t.is(r.end, next.start, 'ranges are contiguous');
    t.notDeepEqual(r.owners, next.owners, 'neighbours differ (else they would be merged)');
    t.deepEqual(ring.ownersAt(r.end, 3), r.owners);
    t.deepEqual(ring.ownersAt((r.start + 1) % RING_SIZE, 3), r.owners);
  }
  t.is(covered, RING_SIZE);
});
