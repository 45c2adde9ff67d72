/**
 * Goal: the Raft write-ahead log survives a crash at any byte. Method: write records, cut the
 * file at every possible length (a torn write) or flip bytes, and reopen: a torn tail is cut off
 * and the records before it come back intact; damage followed by valid records is refused.
 */
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { DurableLogStorage } from '../../../src/consensus/durable-log-storage.ts';
import { decodeRecords, encodeRecord, WriteAheadLog } from '../../../src/consensus/wal.ts';
import { EntryType } from '../../../src/raft/index.ts';

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-wal-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a torn tail at any byte is cut off and every complete record before it survives', async (t) => {
  const records = [1, 2, 3, 4].map((i) => encodeRecord(2, Buffer.alloc(i * 7, i)));
  const whole = Buffer.concat(records);
  const ends = records.reduce<number[]>((acc, r) => [...acc, (acc.at(-1) ?? 0) + r.length], []);
  for (let cut = 0; cut <= whole.length; cut++) {
    const { records: got, validBytes } = decodeRecords(whole.subarray(0, cut));
    const complete = ends.filter((e) => e <= cut).length;
    t.is(got.length, complete, `cut at ${cut}`);
    t.is(validBytes, ends[complete - 1] ?? 0, `cut at ${cut}`);
  }
});

test('damage before valid records is corruption, not a torn tail: refuse to start', (t) => {
  const data = Buffer.concat([encodeRecord(2, Buffer.alloc(40, 1)), encodeRecord(2, Buffer.alloc(40, 2)), encodeRecord(2, Buffer.alloc(40, 3))]);
  data[20] = data[20]! ^ 0xff;
  t.throws(() => decodeRecords(data), { code: 'RAFT_ERR_LOG_CORRUPT' });
});

test('reopening after a torn write truncates the file and appends continue cleanly', async (t) => {
  await withDir(async (dir) => {
    const path = join(dir, 'wal');
    const { wal } = await WriteAheadLog.open(path, { fsync: true });
    await wal.append([encodeRecord(1, Buffer.from('one')), encodeRecord(1, Buffer.from('two'))], true);
    await wal.close();
    const full = await readFile(path);
    await truncate(path, full.length - 2);
    const reopened = await WriteAheadLog.open(path, { fsync: true });
    t.deepEqual(reopened.replay.records.map((r) => r.payload.toString()), ['one']);
    t.true(reopened.replay.truncatedBytes > 0);
    await reopened.wal.append([encodeRecord(1, Buffer.from('three'))], true);
    await reopened.wal.close();
    const again = await WriteAheadLog.open(path, { fsync: true });
    t.deepEqual(again.replay.records.map((r) => r.payload.toString()), ['one', 'three']);
    await again.wal.close();
  });
});

test('durable log: entries, HardState and compaction survive reopen at any crash point', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 8 }), fc.nat(), async (batches, cutSeed) => {
      await withDir(async (dir) => {
        const log = await DurableLogStorage.open(dir, { fsync: false });
        await log.bootstrap({ voters: [1, 2, 3], learners: [] });
        let index = 1;
        const lengths: number[] = [];
        for (const [b, n] of batches.entries()) {
          const entries = Array.from({ length: n }, () => ({ term: 2, index: ++index, type: EntryType.Normal, data: Buffer.from(`e${index}`) }));
          await log.persist({ entries, hardState: { term: 2, vote: 1, commit: index } }, true);
          if (b === 2) await log.compact(index - 1, { voters: [1, 2, 3], learners: [] });
          lengths.push(index);
        }
        await log.close();
        const path = join(dir, 'raft.wal');
        const file = await readFile(path);
        const cut = cutSeed % (file.length + 1);
        await writeFile(path, file.subarray(0, cut));
        const reopened = await DurableLogStorage.open(dir, { fsync: false });
        // Whatever survived is a consistent prefix: every stored entry reads back with its data.
        for (let i = reopened.firstIndex(); i <= reopened.lastIndex(); i++) {
          const [e] = reopened.entries(i, i + 1, Number.MAX_SAFE_INTEGER);
          t.is(Buffer.from(e!.data).toString(), `e${i}`);
        }
        t.true(reopened.lastIndex() <= index);
        await reopened.close();
      });
    }),
    { numRuns: 60 },
  );
});

test('an append without sync is held and written in front of the next synced append, in order', async (t) => {
  for (const fsync of [true, false]) {
    await withDir(async (dir) => {
      const path = join(dir, 'wal');
      const { wal } = await WriteAheadLog.open(path, { fsync });
      await wal.append([encodeRecord(1, Buffer.from('a'))], true);
      await wal.append([encodeRecord(1, Buffer.from('b')), encodeRecord(1, Buffer.from('c'))], false);
      // A crash now loses only what was appended without sync.
      t.deepEqual(decodeRecords(await readFile(path)).records.map((r) => r.payload.toString()), ['a']);
      t.is(wal.sizeBytes, (await readFile(path)).length + 2 * encodeRecord(1, Buffer.from('b')).length, 'size counts held records');
      await wal.append([encodeRecord(1, Buffer.from('d'))], true);
      t.deepEqual(decodeRecords(await readFile(path)).records.map((r) => r.payload.toString()), ['a', 'b', 'c', 'd']);
      await wal.append([encodeRecord(1, Buffer.from('e'))], false);
      await wal.close();
      const reopened = await WriteAheadLog.open(path, { fsync });
      t.deepEqual(reopened.replay.records.map((r) => r.payload.toString()), ['a', 'b', 'c', 'd', 'e'], 'close writes held records');
      await reopened.wal.append([encodeRecord(1, Buffer.from('f'))], false);
      await reopened.wal.rewrite([encodeRecord(1, Buffer.from('new'))]);
      await reopened.wal.append([encodeRecord(1, Buffer.from('g'))], true);
      await reopened.wal.close();
      const again = await WriteAheadLog.open(path, { fsync });
      t.deepEqual(again.replay.records.map((r) => r.payload.toString()), ['new', 'g'], 'a rewrite replaces held records too');
      await again.wal.close();
    });
  }
});
