/**
 * Goal: the range and digest logic of anti-entropy is exact: a position belongs to the one range
 * holding it (wrapping ranges included), a digest depends only on the set of ids, a range's ids
 * live in the shard directories shardsOf names, and the ring's token partitions cover the circle
 * with the owners ring.ownersAt gives their positions. Then one maintenance pass against fake
 * co-owners: only the ranges whose digests differ are listed, and exactly the referenced chunks
 * missing here are fetched.
 * Method: fast-check properties against naive oracles (a linear scan, a per-position check), a
 * real Ring, and a real DiskChunkStore in a temp dir with in-memory peers behind the
 * MaintenanceRemote interface.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import type { ChunkPlacement } from '../../../src/chunks/cluster-chunk-store.ts';
import { openDiskChunkStore } from '../../../src/chunks/disk-chunk-store.ts';
import { groupByRange, inRange, inventoryDigest, type PositionRange, RangeIndex, shardsOf } from '../../../src/chunks/inventory.ts';
import { ChunkMaintenance } from '../../../src/chunks/maintenance.ts';
import type { MaintenanceRemote } from '../../../src/chunks/maintenance-types.ts';
import { chunkPosition, RING_SIZE, Ring, tokenRanges } from '../../../src/placement/index.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const u32 = fc.integer({ min: 0, max: RING_SIZE - 1 });

/** Disjoint ranges from sorted distinct cut points: (c0, c1], (c1, c2], …, (c_last, c0] wraps. */
function rangesFromCuts(cuts: number[]): PositionRange[] {
  const sorted = [...new Set(cuts)].sort((a, b) => a - b);
  return sorted.map((end, i) => ({ start: sorted[(i - 1 + sorted.length) % sorted.length]!, end }));
}

test('inRange: (start, end] on the circle, wrapping through zero', (t) => {
  t.true(inRange(5, { start: 4, end: 5 }));
  t.false(inRange(4, { start: 4, end: 5 }));
  t.true(inRange(RING_SIZE - 1, { start: 10, end: 3 }));
  t.true(inRange(0, { start: 10, end: 3 }));
  t.true(inRange(3, { start: 10, end: 3 }));
  t.false(inRange(10, { start: 10, end: 3 }));
  t.false(inRange(7, { start: 10, end: 3 }));
  t.true(inRange(7, { start: 9, end: 9 }), 'start === end is the whole circle');
});

test('RangeIndex finds the one range holding a position, like a linear scan (any subset of a partition)', (t) => {
  fc.assert(
    fc.property(fc.array(u32, { minLength: 1, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), fc.array(u32, { maxLength: 60 }), (cuts, keep, positions) => {
      const all = rangesFromCuts(cuts);
      // A subset, as a digest request for the ranges shared with one co-owner would be.
      const ranges = all.length === 1 ? all : all.filter((_, i) => keep[i]);
      const index = new RangeIndex(ranges);
      for (const p of [...positions, ...all.map((r) => r.end), ...all.map((r) => r.start)]) {
        const expected = ranges.findIndex((r) => inRange(p, r));
        if (index.find(p) !== expected) return false;
      }
      return true;
    }),
  );
  t.pass();
});

test('inventoryDigest depends on the set of ids only, and notices one id more or less', (t) => {
  const ids = Array.from({ length: 20 }, () => sha(randomBytes(8)));
  const shuffled = [...ids].reverse();
  t.is(inventoryDigest(ids), inventoryDigest(shuffled));
  t.not(inventoryDigest(ids), inventoryDigest(ids.slice(1)));
  t.not(inventoryDigest(ids), inventoryDigest([...ids.slice(1), sha(Buffer.from('other'))]), 'same count, other id');
  t.is(inventoryDigest([]), inventoryDigest([]));
  t.true(inventoryDigest(ids).startsWith('20:'));
  t.deepEqual(ids, [...shuffled].reverse(), 'input not modified');
});

test('groupByRange puts each id in the range holding its position', (t) => {
  const ranges = rangesFromCuts([0x1000_0000, 0x8000_0000, 0xf000_0000]);
  const ids = Array.from({ length: 300 }, () => sha(randomBytes(8)));
  const groups = groupByRange(ids, ranges);
  t.is(
    groups.reduce((n, g) => n + g.length, 0),
    ids.length,
    'a partition places every id',
  );
  for (const [i, g] of groups.entries()) for (const id of g) t.true(inRange(chunkPosition(id), ranges[i]!), `${id} in range ${i}`);
});

test('shardsOf names exactly the shards holding positions of the range', (t) => {
  fc.assert(
    fc.property(u32, u32, (start, end) => {
      const shards = new Set(shardsOf({ start, end }));
      // Oracle: shard p holds positions [p·2^24, (p+1)·2^24); it overlaps the range iff one of
      // its positions is in it. Checking the range's own bounds and each shard's edges suffices.
      for (let p = 0; p < 256; p++) {
        const lo = p * 2 ** 24;
        const hi = lo + 2 ** 24 - 1;
        const candidates = [lo, hi, start + 1, end].filter((x) => x >= lo && x <= hi && x < RING_SIZE);
        const overlaps = candidates.some((x) => inRange(x, { start, end }));
        if (overlaps !== shards.has(p.toString(16).padStart(2, '0'))) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('tokenRanges partition the circle; every position in a range has the range owners', (t) => {
  const ring = new Ring({ version: 1, nodes: [1, 2, 3, 4, 5].map((id) => ({ id, weight: 1 })) });
  const ranges = tokenRanges(ring, 3);
  t.is(ranges.length, ring.tokenCount);
  const index = new RangeIndex(ranges);
  fc.assert(
    fc.property(u32, (p) => {
      const i = index.find(p);
      return i >= 0 && JSON.stringify(ranges[i]!.owners) === JSON.stringify(ring.ownersAt(p, 3));
    }),
    { numRuns: 2000 },
  );
});

// ------------------------------------------------------------------ one pass against co-owners

/** Co-owners 2 and 3 as maps of chunk bytes, answering inventory requests like a node does. */
class InventoryPeers implements MaintenanceRemote {
  readonly held = new Map<number, Map<string, Buffer>>([2, 3].map((n) => [n, new Map()]));
  readonly listed: string[] = [];
  async put(n: number, id: string, data: Uint8Array): Promise<void> {
    this.held.get(n)!.set(id, Buffer.from(data));
  }
  async get(n: number, id: string): Promise<Buffer | undefined> {
    return this.held.get(n)!.get(id);
  }
  async has(n: number, id: string): Promise<boolean> {
    return this.held.get(n)!.has(id);
  }
  async inventoryDigests(n: number, ranges: ReadonlyArray<PositionRange>): Promise<string[]> {
    return groupByRange(this.held.get(n)!.keys(), ranges).map(inventoryDigest);
  }
  async inventoryList(n: number, range: PositionRange): Promise<string[]> {
    this.listed.push(`${n}:${range.start}`);
    return [...this.held.get(n)!.keys()].filter((id) => inRange(chunkPosition(id), range)).sort();
  }
}

test('a pass lists only the ranges whose digests differ and fetches only referenced chunks missing here', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-inventory-'));
  try {
    const store = await openDiskChunkStore({ dir, fsync: false });
    const peers = new InventoryPeers();
    // 16 ranges by the first hex digit, all owned by 1, 2, 3.
    const ranges = Array.from({ length: 16 }, (_, i) => ({ start: ((i * 2 ** 28 - 1) >>> 0) % RING_SIZE, end: (i + 1) * 2 ** 28 - 1, owners: [1, 2, 3] }));
    const placement: ChunkPlacement = { owners: () => [1, 2, 3], nodes: () => [1, 2, 3], replicationFactor: 3, writeQuorum: 2, ranges: () => ranges };
    const chunks = Array.from({ length: 40 }, () => randomBytes(100));
    const ids = chunks.map(sha);
    for (const [i, data] of chunks.entries()) {
      for (const n of [2, 3]) peers.held.get(n)!.set(ids[i]!, data);
      await store.put(ids[i]!, data);
    }
    // Node 1 lost two chunks; a third one only peer 2 holds is unreferenced (garbage there).
    const lost = [ids[0]!, ids[1]!];
    for (const id of lost) await store.delete(id);
    const garbage = randomBytes(100);
    peers.held.get(2)!.set(sha(garbage), garbage);
    const m = new ChunkMaintenance(
      { selfId: 1, gcGraceMs: 3_600_000, intervalMs: 1_000, chunksPerSecond: Number.POSITIVE_INFINITY, bytesPerSecond: Number.POSITIVE_INFINITY, scrubBytesPerSecond: Number.POSITIVE_INFINITY },
      {
        local: store,
        remote: peers,
        placement: () => placement,
        chunkRefs: async function* () {
          yield* ids;
        },
        barrier: async () => {},
        logger: { info() {}, warn() {}, error() {} },
      },
    );
    await m.runPass();
    for (const id of lost) t.true(await store.has(id), `lost chunk ${id} fetched back`);
    t.false(await store.has(sha(garbage)), 'garbage is not copied');
    const s = m.stats();
    const differing = new Set([...lost, sha(garbage)].map((id) => ranges.findIndex((r) => inRange(chunkPosition(id), r))));
    t.is(s.ts3gw_antientropy_ranges_compared_total, 2 * ranges.length, 'every owned range compared with both co-owners');
    t.is(s.ts3gw_antientropy_ranges_listed_total, peers.listed.length);
    t.true(s.ts3gw_antientropy_ranges_listed_total <= 2 * differing.size, `listed ${s.ts3gw_antientropy_ranges_listed_total} for ${differing.size} differing ranges`);
    t.is(s.ts3gw_antientropy_missing_found_total, 2);
    t.is(s.ts3gw_repair_fetched_chunks_total, 2);
    t.is(s.ts3gw_antientropy_unlisted_missing_total, 0);
    t.is(s.antiEntropyRangesDone, ranges.length);

    // In sync now (but for the garbage on peer 2): a second pass lists at most that one range.
    peers.listed.length = 0;
    await m.runPass();
    const after = m.stats();
    t.true(peers.listed.every((l) => l.startsWith('2:')) && peers.listed.length <= 1, `listed ${peers.listed.join(',')}`);
    t.is(after.ts3gw_repair_fetched_chunks_total, 2, 'nothing more fetched');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
