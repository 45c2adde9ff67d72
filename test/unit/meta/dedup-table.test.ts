/**
 * Goal: request-id deduplication is exact within its window, survives a restart and a snapshot,
 * and leaves byte-identical records on replicas that batched the same log differently (group
 * records are fixed by index, not by batch). Method: real classic-level stores in temp dirs; the
 * whole database is compared through exportSnapshot; the pre-DedupTable layout is written by hand
 * to check its conversion at open.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ClassicLevel } from 'classic-level';
import { DEDUP_GROUP_ENTRIES, DEDUP_WINDOW_ENTRIES } from '../../../src/meta/dedup-table.ts';
import { type IndexedCommand, type LevelMetaStore, openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { ApplyResult, MetaCommand, MetaOp } from '../../../src/meta/types.ts';

const bucket = { name: 'bkt', createdMs: 1, region: 'us-east-1', owner: 'alice' };
const cmd = (requestId: string, op: MetaOp): MetaCommand => ({ v: 1, requestId, stampMs: 1, op });
const put = (requestId: string, key: string): MetaCommand =>
  cmd(requestId, {
    type: 'PutObject',
    bucket: 'bkt',
    key,
    object: { sizeBytes: 1, etag: requestId, lastModifiedMs: 1, writeId: requestId, owner: 'o', contentType: 'x', headers: {}, userMeta: {}, data: { kind: 'inline', base64: 'eA==' } },
  });
const code = (r: ApplyResult) => (r.ok ? 'ok' : r.code);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-dedup-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function dump(s: LevelMetaStore): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of s.exportSnapshot()) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** A log mixing puts, retries (near and far), empty positions and a request id with a lone surrogate. */
function log(length: number): IndexedCommand[] {
  const out: IndexedCommand[] = [{ index: 1, command: cmd('create', { type: 'CreateBucket', bucket }) }];
  for (let index = 2; index <= length; index++) {
    if (index % 7 === 0) out.push({ index, command: undefined });
    else if (index % 11 === 0) out.push({ index, command: put(`r${index - 10}`, 'retried') });
    else if (index % 13 === 0) out.push({ index, command: put(`odd\ud800${index % 3}`, `k${index}`) });
    else out.push({ index, command: put(`r${index}`, `k${index}`) });
  }
  return out;
}

async function applyIn(s: LevelMetaStore, entries: IndexedCommand[], batchSize: number): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < entries.length; i += batchSize) {
    for (const r of await s.applyBatch(entries.slice(i, i + batchSize))) outcomes.push(code(r));
  }
  return outcomes;
}

test('replicas that batch the same log differently hold identical bytes and give identical answers', async (t) => {
  const entries = log(DEDUP_GROUP_ENTRIES * 9 + 5);
  const results: { outcomes: string[]; bytes: Buffer }[] = [];
  for (const batchSize of [1, 7, DEDUP_GROUP_ENTRIES, 1000]) {
    await withDir(async (location) => {
      const s = await openLevelMetaStore({ location, syncWrites: false });
      const outcomes = await applyIn(s, entries, batchSize);
      results.push({ outcomes, bytes: await dump(s) });
      await s.close();
    });
  }
  for (const r of results.slice(1)) {
    t.deepEqual(r.outcomes, results[0]!.outcomes);
    t.true(r.bytes.equals(results[0]!.bytes), 'database bytes equal across batchings');
  }
});

test('a retry gets the first answer after a restart and from a store rebuilt from a snapshot', async (t) => {
  await withDir(async (dir) => {
    const a = await openLevelMetaStore({ location: join(dir, 'a'), syncWrites: false });
    await a.applyBatch([
      { index: 1, command: cmd('create', { type: 'CreateBucket', bucket }) },
      { index: 2, command: put('p1', 'k') },
      { index: 3, command: put('p2', 'k') },
    ]);
    const first = await a.applyBatch([{ index: 4, command: put('p2', 'k') }]);
    const replaced = first[0]!.ok && first[0]!.value?.kind === 'PutObject' ? first[0]!.value.replaced : undefined;
    t.is(replaced?.etag, 'p1', 'the retry got the first answer (it replaced p1), not a new execution');
    await a.close();
    const reopened = await openLevelMetaStore({ location: join(dir, 'a'), syncWrites: false });
    const again = await reopened.applyBatch([{ index: 5, command: put('p2', 'k') }]);
    t.deepEqual(again, first, 'same answer after a restart');
    const b = await openLevelMetaStore({ location: join(dir, 'b'), syncWrites: false });
    await b.installSnapshot(reopened.exportSnapshot());
    const fromSnapshot = await b.applyBatch([{ index: 6, command: put('p2', 'k') }]);
    t.deepEqual(fromSnapshot, first, 'same answer on a store installed from a snapshot');
    t.is((await b.getObject('bkt', 'k'))?.etag, 'p2');
    await reopened.close();
    await b.close();
  });
});

test('expired groups are deleted by applied index, and a restart mid-window keeps the window exact', async (t) => {
  await withDir(async (location) => {
    let s = await openLevelMetaStore({ location, syncWrites: false });
    await s.applyBatch([
      { index: 1, command: cmd('create', { type: 'CreateBucket', bucket }) },
      { index: 2, command: put('old', 'k') },
    ]);
    let index = 2;
    const padTo = async (target: number) => {
      while (index < target) {
        const n = Math.min(4096, target - index);
        await s.applyBatch(Array.from({ length: n }, (_, i) => ({ index: index + 1 + i, command: undefined })));
        index += n;
      }
    };
    await padTo(DEDUP_WINDOW_ENTRIES / 2);
    await s.close();
    s = await openLevelMetaStore({ location, syncWrites: false });
    await padTo(DEDUP_WINDOW_ENTRIES + 1);
    // Index 2 + WINDOW is the last one at which 'old' is remembered: the put is not repeated.
    t.is((await s.applyBatch([{ index: ++index, command: put('old', 'k') }]))[0]!.ok ? 'kept' : 'bad', 'kept');
    t.is((await s.getObject('bkt', 'k'))?.etag, 'old');
    await padTo(DEDUP_WINDOW_ENTRIES + 2 * DEDUP_GROUP_ENTRIES);
    const groups = async () => {
      let n = 0;
      for await (const chunk of s.exportSnapshot()) {
        const b = Buffer.from(chunk);
        for (let at = 0; at < b.length; ) {
          const k = b.readUInt32BE(at);
          if (b[at + 4] === 'D'.charCodeAt(0)) n++;
          at += 8 + k + b.readUInt32BE(at + 4 + k);
        }
      }
      return n;
    };
    t.is(await groups(), 0, 'the only group (indexes 0–63) expired');
    const r = (await s.applyBatch([{ index: ++index, command: put('old', 'k') }]))[0]!;
    t.true(r.ok && r.value?.kind === 'PutObject' && r.value.replaced !== undefined, 'forgotten: executed again');
    t.is(await groups(), 1);
    await s.close();
  });
});

test('a store written with per-request dedup records is converted at open, answers included', async (t) => {
  await withDir(async (location) => {
    const db = new ClassicLevel<Buffer, string>(location, { keyEncoding: 'buffer', valueEncoding: 'utf8' });
    await db.open();
    const legacy: [number, string, ApplyResult][] = [
      [1, 'create', { ok: true }],
      [3, 'again', { ok: false, code: 'META_ERR_NO_SUCH_BUCKET', message: 'm', meta: { bucket: 'x' } }],
    ];
    await db.batch([
      { type: 'put', key: Buffer.from('B\0bkt', 'utf8'), value: JSON.stringify(bucket) },
      { type: 'put', key: Buffer.from('M\0appliedIndex', 'utf8'), value: '3' },
      ...legacy.flatMap(([index, id, result]) => [
        { type: 'put' as const, key: Buffer.from(`R\0${id}`, 'utf8'), value: JSON.stringify({ index, result }) },
        { type: 'put' as const, key: Buffer.from(`Q\0${index.toString(16).padStart(16, '0')}\0${id}`, 'utf8'), value: '' },
      ]),
    ]);
    await db.close();
    const s = await openLevelMetaStore({ location, syncWrites: false });
    t.is(s.appliedIndex(), 3);
    const r = await s.applyBatch([
      { index: 4, command: cmd('again', { type: 'CreateBucket', bucket }) },
      { index: 5, command: cmd('create', { type: 'CreateBucket', bucket }) },
    ]);
    t.deepEqual(r, [legacy[1]![2], { ok: true }]);
    const tags = new Set<string>();
    for await (const chunk of s.exportSnapshot()) {
      const b = Buffer.from(chunk);
      for (let at = 0; at < b.length; ) {
        const k = b.readUInt32BE(at);
        tags.add(String.fromCharCode(b[at + 4]!));
        at += 8 + k + b.readUInt32BE(at + 4 + k);
      }
    }
    t.deepEqual([...tags].sort(), ['B', 'D', 'M']);
    await s.close();
  });
});
