/**
 * Goal: a replicated chunk put resolves at W durable copies, and tells its caller that the bytes
 * are free for reuse only once every owner's copy settled (a slow third copy still reads them).
 * Method: a ClusterChunkStore over a real local DiskChunkStore and a fake remote whose puts the
 * test settles by hand.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { hashChunk } from '../../../src/chunks/chunk-store.ts';
import { ClusterChunkStore, type RemoteChunks } from '../../../src/chunks/cluster-chunk-store.ts';
import { openDiskChunkStore } from '../../../src/chunks/disk-chunk-store.ts';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('put resolves at W copies; onBytesReleased waits for the last copy, failed or not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-cluster-chunks-'));
  try {
    const local = await openDiskChunkStore({ dir, fsync: false });
    const pending = new Map<number, ReturnType<typeof deferred>>([
      [2, deferred()],
      [3, deferred()],
    ]);
    const remote: RemoteChunks = {
      put: (nodeId) => pending.get(nodeId)!.promise,
      get: async () => undefined,
    };
    const store = new ClusterChunkStore(
      { selfId: 1, logger: { warn: () => undefined } },
      { local, remote, placement: () => ({ owners: () => [1, 2, 3], nodes: () => [1, 2, 3], replicationFactor: 3, writeQuorum: 2 }) },
    );
    const data = Buffer.from('replicated chunk');
    const id = hashChunk(data);
    let released = false;
    const put = store.put(id, data, { onBytesReleased: () => (released = true) });
    pending.get(2)!.resolve();
    await put; // local + node 2 = W
    t.false(released, 'node 3 still reads the bytes');
    pending.get(3)!.reject(new Error('node 3 went away'));
    await new Promise((r) => setImmediate(r));
    t.true(released, 'every copy settled');
    t.true(await local.has(id));
    await local.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('read() serves a good local copy from the local store, and a missing one from a peer (verified) like get', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-cluster-chunks-'));
  try {
    const local = await openDiskChunkStore({ dir, fsync: false });
    const here = Buffer.from('held locally');
    const there = Buffer.from('held by node 2 only');
    await local.put(hashChunk(here), here);
    const asked: number[] = [];
    const remote: RemoteChunks = {
      put: async () => undefined,
      get: async (nodeId, id) => {
        asked.push(nodeId);
        return id === hashChunk(Buffer.from(there)) && nodeId === 2 ? Buffer.from(there) : undefined;
      },
    };
    const store = new ClusterChunkStore(
      { selfId: 1, logger: { warn: () => undefined } },
      { local, remote, placement: () => ({ owners: () => [2, 3], nodes: () => [1, 2, 3], replicationFactor: 2, writeQuorum: 1 }) },
    );
    const a = await store.read(hashChunk(Buffer.from(here)));
    t.true(a.bytes.equals(here));
    t.deepEqual(asked, [], 'no peer asked for a good local copy');
    a.release();
    const b = await store.read(hashChunk(Buffer.from(there)));
    t.true(b.bytes.equals(there));
    t.deepEqual(asked, [2]);
    b.release();
    await t.throwsAsync(store.read(hashChunk(Buffer.from('nowhere'))), { code: 'CHUNK_ERR_NOT_FOUND' });
    await local.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a read that finds no copy re-reads membership once: a node whose ring still lacks its peers finds the copy', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-cluster-chunks-'));
  try {
    const local = await openDiskChunkStore({ dir, fsync: false });
    const data = Buffer.from('a chunk only node 2 holds');
    const id = hashChunk(data);
    const remote: RemoteChunks = { put: async () => undefined, get: async (nodeId) => (nodeId === 2 ? Buffer.from(data) : undefined) };
    const alone = { owners: () => [1], nodes: () => [1], replicationFactor: 1, writeQuorum: 1 };
    const full = { owners: () => [2, 1], nodes: () => [1, 2], replicationFactor: 2, writeQuorum: 2 };
    let placement = alone;
    let refreshes = 0;
    const refreshing = new ClusterChunkStore(
      { selfId: 1, logger: { warn: () => undefined } },
      {
        local,
        remote,
        placement: () => placement,
        refreshPlacement: async () => {
          refreshes++;
          placement = full;
        },
      },
    );
    t.true((await Promise.all([refreshing.get(id), refreshing.get(id)])).every((b) => b.equals(data)), 'both reads found node 2 after the refresh');
    t.is(refreshes, 1, 'concurrent misses share one refresh');
    placement = alone;
    const stale = new ClusterChunkStore({ selfId: 1, logger: { warn: () => undefined } }, { local, remote, placement: () => alone });
    await t.throwsAsync(stale.get(id), { message: /has no readable copy/ }, 'without the refresh the ring of one asks nobody');
    await local.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
