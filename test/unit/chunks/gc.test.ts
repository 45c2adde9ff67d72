/**
 * Goal: garbage collection never deletes a referenced chunk, deletes an unreferenced one only once
 * it is older than the grace period, and never deletes a chunk a write re-put (deduplicated)
 * during the grace period — including when the put races the sweep of the same id.
 * Method: a real DiskChunkStore in a temp dir; file ages are set with utimes; one maintenance
 * pass is run directly (no timers) on a one-node placement with an injected reference list.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import type { ChunkPlacement } from '../../../src/chunks/cluster-chunk-store.ts';
import { type DiskChunkStore, openDiskChunkStore } from '../../../src/chunks/disk-chunk-store.ts';
import { markReferenced } from '../../../src/chunks/gc.ts';
import { ChunkMaintenance } from '../../../src/chunks/maintenance.ts';

const test = anyTest as TestFn<{ dir: string; store: DiskChunkStore }>;

test.beforeEach(async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-gc-'));
  t.context = { dir, store: await openDiskChunkStore({ dir, fsync: false }) };
});
test.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true });
});

const GRACE_MS = 60_000;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const silent = { info() {}, warn() {}, error() {} };
const alone: ChunkPlacement = { owners: () => [1], nodes: () => [1], replicationFactor: 1, writeQuorum: 1 };
const noRemote = {
  put: async () => {
    throw new Error('no peers');
  },
  get: async () => undefined,
  has: async () => false,
};

function maintenance(store: DiskChunkStore, refs: () => string[]): ChunkMaintenance {
  return new ChunkMaintenance(
    { selfId: 1, gcGraceMs: GRACE_MS, intervalMs: 1_000, chunksPerSecond: Number.POSITIVE_INFINITY, bytesPerSecond: Number.POSITIVE_INFINITY, scrubBytesPerSecond: Number.POSITIVE_INFINITY },
    {
      local: store,
      remote: noRemote,
      placement: () => alone,
      chunkRefs: async function* () {
        yield* refs();
      },
      barrier: async () => {},
      logger: silent,
    },
  );
}

async function putAged(store: DiskChunkStore, dir: string, ageMs: number): Promise<{ id: string; data: Buffer }> {
  const data = randomBytes(1000);
  const id = sha(data);
  await store.put(id, data);
  const then = new Date(Date.now() - ageMs);
  await utimes(join(dir, id.slice(0, 2), id), then, then);
  return { id, data };
}

test('a referenced chunk is kept at any age; an unreferenced one is deleted only after the grace period', async (t) => {
  const { store, dir } = t.context;
  const referencedOld = await putAged(store, dir, 10 * GRACE_MS);
  const unreferencedOld = await putAged(store, dir, 2 * GRACE_MS);
  const unreferencedYoung = await putAged(store, dir, GRACE_MS / 2);
  const m = maintenance(store, () => [referencedOld.id, referencedOld.id]);
  await m.runPass();
  t.true(await store.has(referencedOld.id), 'referenced chunk kept');
  t.false(await store.has(unreferencedOld.id), 'old unreferenced chunk deleted');
  t.true(await store.has(unreferencedYoung.id), 'young unreferenced chunk kept');
  const s = m.stats();
  t.is(s.ts3gw_gc_referenced_chunks, 1);
  t.is(s.ts3gw_gc_deleted_chunks_total, 1);
  t.is(s.ts3gw_gc_deleted_bytes_total, 1000);
  t.is(s.ts3gw_gc_kept_young_chunks_total, 1);
  t.is(s.ts3gw_maintenance_passes_total, 1);
  t.is(s.phase, 'idle');
});

test('a deduplicated re-put of an old unreferenced chunk refreshes its mtime, so the sweep keeps it', async (t) => {
  const { store, dir } = t.context;
  const chunk = await putAged(store, dir, 2 * GRACE_MS);
  // A PUT in flight finds the chunk already stored (dedup) and relies on it until it commits.
  await store.put(chunk.id, chunk.data);
  const st = await store.stat(chunk.id);
  t.true(st !== undefined && st.mtimeMs > Date.now() - GRACE_MS, 'mtime refreshed by the deduplicated put');
  await maintenance(store, () => []).runPass();
  t.true(await store.has(chunk.id), 'chunk re-put during the grace period survives the sweep');
});

test('put and the sweep of the same id are atomic with respect to each other: after put resolves the chunk exists', async (t) => {
  const { store, dir } = t.context;
  for (let i = 0; i < 50; i++) {
    const chunk = await putAged(store, dir, 2 * GRACE_MS);
    const cutoff = Date.now() - GRACE_MS;
    // Both orders are exercised by alternating which call is issued first.
    const ops = i % 2 === 0 ? [store.deleteIfOlder(chunk.id, cutoff), store.put(chunk.id, chunk.data)] : [store.put(chunk.id, chunk.data), store.deleteIfOlder(chunk.id, cutoff)];
    const [first] = await Promise.all(ops);
    t.true(await store.has(chunk.id), `round ${i}: chunk present after put resolved`);
    if (i % 2 === 0) t.is(first, 1000, 'delete queued first deletes, then put rewrites');
    t.true((await store.get(chunk.id)).equals(chunk.data), `round ${i}: bytes intact`);
  }
});

test('the mark refuses to grow past its bound', async (t) => {
  const ids = Array.from({ length: 5 }, (_, i) => sha(Buffer.from([i])));
  const refs = async function* () {
    yield* ids;
  };
  t.is((await markReferenced(refs(), 5)).size, 5);
  await t.throwsAsync(markReferenced(refs(), 4), { code: 'CHUNK_ERR_TOO_MANY_REFS' });
});
