/**
 * Goal: the chunk store census counts exactly the chunks a store holds and their bytes, and
 * publishes a walk's totals only once it completed.
 * Method: a real DiskChunkStore in a temp directory; chunks put and deleted; walks run directly.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openDiskChunkStore } from '../../../src/chunks/disk-chunk-store.ts';
import { ChunkStoreCensus } from '../../../src/node/chunk-store-census.ts';

test('a walk counts the chunks and bytes of the store; stats show the last completed walk', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-census-'));
  const store = await openDiskChunkStore({ dir, fsync: false });
  try {
    const census = new ChunkStoreCensus(store, { warn() {} });
    t.deepEqual(census.stats(), { ts3gw_chunk_store_chunks: 0, ts3gw_chunk_store_bytes: 0, ts3gw_chunk_store_census_age_seconds: -1 });
    const sizes = [1000, 70_000, 5];
    const ids: string[] = [];
    for (const size of sizes) {
      const data = randomBytes(size);
      const id = createHash('sha256').update(data).digest('hex');
      await store.put(id, data);
      ids.push(id);
    }
    t.deepEqual(await census.walk(), { chunks: 3, bytes: 71_005 });
    t.like(census.stats(), { ts3gw_chunk_store_chunks: 3, ts3gw_chunk_store_bytes: 71_005 });
    t.true(census.stats().ts3gw_chunk_store_census_age_seconds >= 0);
    await store.delete(ids[1]!);
    t.deepEqual(await census.walk(), { chunks: 2, bytes: 1005 });
    t.like(census.stats(), { ts3gw_chunk_store_chunks: 2, ts3gw_chunk_store_bytes: 1005 });
    census.stop();
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
