/**
 * Goal: the disk chunk store keeps chunks durable, verified and content-addressed.
 * Method: a real temp directory; corruption is made by writing into a stored chunk file.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openDiskChunkStore } from '../../../src/chunks/disk-chunk-store.ts';

const id = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-chunks-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('put then get returns the bytes; has/list/delete agree', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: true });
    const data = Buffer.from('chunk bytes');
    await store.put(id(data), data);
    await store.put(id(data), data); // idempotent
    t.true((await store.get(id(data))).equals(data));
    t.true(await store.has(id(data)));
    const listed: string[] = [];
    for await (const c of store.list()) listed.push(c);
    t.deepEqual(listed, [id(data)]);
    await store.delete(id(data));
    await store.delete(id(data));
    t.false(await store.has(id(data)));
    await t.throwsAsync(store.get(id(data)), { code: 'CHUNK_ERR_NOT_FOUND' });
  });
});

test('bytes that do not hash to the id are refused on put', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: false });
    await t.throwsAsync(store.put(id(Buffer.from('a')), Buffer.from('b')), { code: 'CHUNK_ERR_HASH_MISMATCH' });
    await t.throwsAsync(store.put('not-an-id', Buffer.from('a')), { instanceOf: TypeError });
  });
});

test('a corrupted chunk file is reported, never served', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: false });
    const data = Buffer.alloc(1000, 1);
    const cid = id(data);
    await store.put(cid, data);
    const corrupt = Buffer.from(data);
    corrupt[500] = 2;
    await writeFile(join(dir, cid.slice(0, 2), cid), corrupt);
    await t.throwsAsync(store.get(cid), { code: 'CHUNK_ERR_CORRUPT' });
  });
});

test('temp files left by a crash are removed at open', async (t) => {
  await withDir(async (dir) => {
    await mkdir(join(dir, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'tmp', 'half-written'), 'x');
    await openDiskChunkStore({ dir, fsync: false });
    t.deepEqual(await readdir(join(dir, 'tmp')), []);
  });
});
