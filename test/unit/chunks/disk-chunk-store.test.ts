/**
 * Goal: the disk chunk store keeps chunks durable, verified and content-addressed.
 * Method: a real temp directory; corruption is made by writing into a stored chunk file.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { hashChunk } from '../../../src/chunks/chunk-store.ts';
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

/** Yields `data` in pieces of `piece` bytes (what a socket hands a streaming put). */
async function* pieces(data: Buffer, piece: number): AsyncGenerator<Buffer> {
  for (let o = 0; o < data.length; o += piece) yield data.subarray(o, o + piece);
}

test('putStream stores verified bytes across write batches; openRead streams them back', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: true });
    const data = Buffer.alloc(3 * 1024 * 1024 + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    await store.putStream(id(data), data.length, pieces(data, 65_536));
    t.true((await store.get(id(data))).equals(data));
    // Again: deduplicated, the body is drained, nothing changes.
    await store.putStream(id(data), data.length, pieces(data, 1000));
    const read = await store.openRead(id(data));
    t.is(read.sizeBytes, data.length);
    const parts: Buffer[] = [];
    for await (const p of read.body) parts.push(p);
    t.true(Buffer.concat(parts).equals(data));
    t.true(parts.length > 1, 'the body comes in pieces');
    t.is(await store.verify(id(data)), 'ok');
    t.is(await store.verify(id(Buffer.from('absent'))), 'missing');
    t.deepEqual(await readdir(join(dir, 'tmp')), [], 'no temp file left');
  });
});

test('openRead reuses a released read buffer, never one still unreleased', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: false });
    const a = Buffer.alloc(1024 * 1024 + 3, 1);
    const b = Buffer.alloc(700 * 1024, 2);
    await store.put(id(a), a);
    await store.put(id(b), b);
    const readAll = async (read: { body: AsyncIterable<Buffer> }) => {
      const parts: Buffer[] = [];
      for await (const p of read.body) parts.push(p);
      return parts;
    };
    const first = await store.openRead(id(a));
    const firstParts = await readAll(first);
    // Unreleased: the next read gets other memory, so the first one's pieces stay intact.
    const second = await store.openRead(id(b));
    const secondParts = await readAll(second);
    t.not(secondParts[0]!.buffer, firstParts[0]!.buffer);
    t.true(Buffer.concat(firstParts).equals(a), 'an unreleased read keeps its bytes');
    first.release();
    t.throws(() => first.release(), { message: /released once/ });
    const third = await store.openRead(id(b));
    const thirdParts = await readAll(third);
    t.is(thirdParts[0]!.buffer, firstParts[0]!.buffer, 'the released buffer is reused');
    t.true(Buffer.concat(thirdParts).equals(b), 'a reused buffer yields the new chunk exactly');
    t.true(Buffer.concat(secondParts).equals(b));
  });
});

test('putStream refuses wrong bytes and wrong lengths and leaves nothing behind', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: false });
    const data = Buffer.alloc(2 * 1024 * 1024 + 5, 3);
    const other = Buffer.alloc(data.length, 4);
    await t.throwsAsync(store.putStream(id(data), data.length, pieces(other, 65_536)), { code: 'CHUNK_ERR_HASH_MISMATCH' });
    await t.throwsAsync(store.putStream(id(data), data.length - 1, pieces(data, 65_536)), { code: 'CHUNK_ERR_SIZE_MISMATCH' });
    await t.throwsAsync(store.putStream(id(data), data.length + 1, pieces(data, 65_536)), { code: 'CHUNK_ERR_SIZE_MISMATCH' });
    async function* failing(): AsyncGenerator<Buffer> {
      yield data.subarray(0, 1024 * 1024 + 7);
      yield data.subarray(1024 * 1024 + 7, 2 * 1024 * 1024);
      throw new Error('peer went away');
    }
    await t.throwsAsync(store.putStream(id(data), data.length, failing()), { message: 'peer went away' });
    t.false(await store.has(id(data)));
    t.deepEqual(await readdir(join(dir, 'tmp')), [], 'no temp file left');
  });
});

test('openRead of a corrupt copy fails before its last piece; verify reports it', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: false });
    const data = Buffer.alloc(600 * 1024, 9);
    const cid = id(data);
    await store.put(cid, data);
    const corrupt = Buffer.from(data);
    corrupt[599 * 1024] = 1;
    await writeFile(join(dir, cid.slice(0, 2), cid), corrupt);
    const read = await store.openRead(cid);
    let received = 0;
    await t.throwsAsync(
      (async () => {
        for await (const p of read.body) received += p.length;
      })(),
      { code: 'CHUNK_ERR_CORRUPT' },
    );
    t.true(received < data.length, 'the whole corrupt copy was never handed out');
    t.is(await store.verify(cid), 'corrupt');
    await t.throwsAsync(store.openRead(id(Buffer.from('x'))), { code: 'CHUNK_ERR_NOT_FOUND' });
  });
});

test('a buffer hashed by hashChunk is trusted once by put; any other buffer is hashed and checked', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: false });
    const data = Buffer.from('hashed once by the chunker');
    const good = hashChunk(data);
    t.is(good, id(data));
    let released = 0;
    await store.put(good, data, { onBytesReleased: () => released++ });
    t.is(released, 1, 'the bytes are released once the put settled');
    t.true((await store.get(good)).equals(data));
    // The registration was used up: the same buffer changed afterwards is hashed again.
    data.write('X', 0);
    const other = Buffer.from('another chunk');
    await t.throwsAsync(store.put(id(other), data), { code: 'CHUNK_ERR_HASH_MISMATCH' });
    // A registration only vouches for the id it was made for.
    const wrong = Buffer.from('bytes whose id is not the one asked for');
    hashChunk(wrong);
    await t.throwsAsync(store.put(id(other), wrong, { onBytesReleased: () => released++ }), { code: 'CHUNK_ERR_HASH_MISMATCH' });
    t.is(released, 2, 'released on failure too');
    t.false(await store.has(id(other)));
    await store.close();
  });
});

test('read() verifies like get and recycles its buffer: released, it carries the next read; corrupt and missing chunks fail', async (t) => {
  await withDir(async (dir) => {
    const store = await openDiskChunkStore({ dir, fsync: false });
    const a = Buffer.alloc(100_000, 1);
    const b = Buffer.alloc(70_000, 2);
    await store.put(id(a), a);
    await store.put(id(b), b);
    const first = await store.read(id(a));
    t.true(first.bytes.equals(a));
    const second = await store.read(id(b));
    t.true(second.bytes.equals(b));
    t.not(second.bytes.buffer, first.bytes.buffer, 'an unreleased buffer is not handed out again');
    first.release();
    first.release();
    const third = await store.read(id(b));
    t.is(third.bytes.buffer, first.bytes.buffer, 'the released buffer carries the next read');
    t.true(third.bytes.equals(b));
    await t.throwsAsync(store.read(id(Buffer.from('absent'))), { code: 'CHUNK_ERR_NOT_FOUND' });
    const rotten = Buffer.from(a);
    rotten[5] = 9;
    await writeFile(join(dir, id(a).slice(0, 2), id(a)), rotten);
    await t.throwsAsync(store.read(id(a)), { code: 'CHUNK_ERR_CORRUPT' });
    await store.close();
  });
});
