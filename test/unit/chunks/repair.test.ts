/**
 * Goal: repair fetches a missing owned chunk from a peer with a good copy (skipping corrupt and
 * failing peers); rebalance drops a copy this node no longer owns only once every owner has a
 * good copy (pushing ours to an owner that lacks one) and keeps it while an owner is unreachable;
 * scrub replaces a corrupt local copy.
 * Method: a real DiskChunkStore for this node (id 1) and in-memory fake peers behind the
 * RemoteChunks interface; placement is a fixed table.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import type { ChunkPlacement } from '../../../src/chunks/cluster-chunk-store.ts';
import { type DiskChunkStore, openDiskChunkStore } from '../../../src/chunks/disk-chunk-store.ts';
import { newMaintenanceStats, type MaintenanceRemote } from '../../../src/chunks/maintenance-types.ts';
import { RateLimiter } from '../../../src/chunks/rate-limit.ts';
import { rebalanceHeld, type RepairContext, repairOwned } from '../../../src/chunks/repair.ts';
import { scrubOne } from '../../../src/chunks/scrub.ts';

const test = anyTest as TestFn<{ dir: string; store: DiskChunkStore }>;
test.beforeEach(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-repair-'));
  t.context = { dir, store: await openDiskChunkStore({ dir, fsync: false }) };
});
test.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const silent = { info() {}, warn() {}, error() {} };

/** Peers 2..4 as maps; `down` peers throw; `corrupt` copies are served with a flipped byte. */
class FakePeers implements MaintenanceRemote {
  readonly held = new Map<number, Map<string, Buffer>>([2, 3, 4].map((n) => [n, new Map()]));
  readonly down = new Set<number>();
  readonly puts: string[] = [];
  #node(n: number): Map<string, Buffer> {
    if (this.down.has(n)) throw new Error(`node ${n} unreachable`);
    return this.held.get(n)!;
  }
  async put(n: number, id: string, data: Uint8Array): Promise<void> {
    this.#node(n).set(id, Buffer.from(data));
    this.puts.push(`${n}:${id}`);
  }
  async get(n: number, id: string): Promise<Buffer | undefined> {
    return this.#node(n).get(id);
  }
  async has(n: number, id: string): Promise<boolean> {
    const data = this.#node(n).get(id);
    return data !== undefined && sha(data) === id;
  }
}

function placement(owners: number[]): ChunkPlacement {
  return { owners: () => owners, nodes: () => [1, 2, 3, 4], replicationFactor: 3, writeQuorum: 2 };
}

function context(store: DiskChunkStore, peers: FakePeers): RepairContext {
  return { selfId: 1, local: store, remote: peers, stats: newMaintenanceStats(), logger: silent, bytes: new RateLimiter(Number.POSITIVE_INFINITY) };
}

test('repair fetches a missing owned chunk from the first peer with a good copy', async (t) => {
  const { store } = t.context;
  const peers = new FakePeers();
  const data = randomBytes(5000);
  const id = sha(data);
  const bad = Buffer.from(data);
  bad[0] = bad[0]! ^ 1;
  peers.down.add(2);
  peers.held.get(3)!.set(id, bad);
  peers.held.get(4)!.set(id, data);
  const ctx = context(store, peers);
  t.true(await repairOwned(ctx, placement([1, 2, 3]), id));
  t.true((await store.get(id)).equals(data));
  t.is(ctx.stats.ts3gw_repair_fetched_chunks_total, 1);
  t.false(await repairOwned(ctx, placement([1, 2, 3]), id), 'nothing to do once present');
  // A chunk nobody has is counted as unavailable, not invented.
  t.false(await repairOwned(ctx, placement([1, 2, 3]), sha(randomBytes(10))));
  t.is(ctx.stats.ts3gw_repair_unavailable_chunks_total, 1);
});

test('rebalance drops a copy only after every owner has a good one, pushing where missing', async (t) => {
  const { store } = t.context;
  const peers = new FakePeers();
  const data = randomBytes(5000);
  const id = sha(data);
  await store.put(id, data);
  peers.held.get(2)!.set(id, data);
  peers.held.get(3)!.set(id, data);
  // Owner 4 is new and lacks the chunk: it gets our copy, then ours goes.
  const ctx = context(store, peers);
  t.true(await rebalanceHeld(ctx, placement([2, 3, 4]), id));
  t.deepEqual(peers.puts, [`4:${id}`]);
  t.false(await store.has(id));
  t.is(ctx.stats.ts3gw_rebalance_dropped_chunks_total, 1);
});

test('rebalance keeps the copy while an owner is unreachable or holds a corrupt copy it cannot replace', async (t) => {
  const { store } = t.context;
  const peers = new FakePeers();
  const data = randomBytes(5000);
  const id = sha(data);
  await store.put(id, data);
  peers.held.get(2)!.set(id, data);
  peers.held.get(3)!.set(id, data);
  peers.down.add(4);
  const ctx = context(store, peers);
  t.false(await rebalanceHeld(ctx, placement([2, 3, 4]), id));
  t.true(await store.has(id), 'kept: owner 4 could not confirm');
  t.is(ctx.stats.ts3gw_rebalance_kept_unconfirmed_chunks_total, 1);
  peers.down.delete(4);
  const bad = Buffer.from(data);
  bad[1] = bad[1]! ^ 1;
  peers.held.get(4)!.set(id, bad);
  t.true(await rebalanceHeld(ctx, placement([2, 3, 4]), id), 'the corrupt copy is overwritten by a push, then ours goes');
  t.true(peers.held.get(4)!.get(id)!.equals(data));
});

test('scrub deletes a corrupt local copy and fetches a good one', async (t) => {
  const { store, dir } = t.context;
  const peers = new FakePeers();
  const data = randomBytes(5000);
  const id = sha(data);
  await store.put(id, data);
  const bad = Buffer.from(data);
  bad[10] = bad[10]! ^ 1;
  await writeFile(join(dir, id.slice(0, 2), id), bad);
  peers.held.get(3)!.set(id, data);
  const ctx = context(store, peers);
  t.true(await scrubOne(ctx, new RateLimiter(Number.POSITIVE_INFINITY), () => placement([1, 2, 3]), id));
  t.true((await store.get(id)).equals(data));
  t.is(ctx.stats.ts3gw_scrub_corrupt_chunks_total, 1);
  t.is(ctx.stats.ts3gw_scrub_repaired_chunks_total, 1);
  t.false(await scrubOne(ctx, new RateLimiter(Number.POSITIVE_INFINITY), () => placement([1, 2, 3]), id), 'a good copy is left alone');
});
