/**
 * Goal: a batch's results may be handed out before LevelDB has written the batch (the Raft log in
 * front of the store is the durable record), and nothing read meanwhile may miss the batch.
 * Method: a real classic-level store in a temp dir; reads are started from inside onApplied, i.e.
 * while the batch's write is in flight, and must see exactly what they see once it is done.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { ApplyResult, ListPage, MetaCommand, MetaOp, ObjectRecord } from '../../../src/meta/types.ts';

const object = (etag: string): ObjectRecord => ({
  sizeBytes: 1,
  etag,
  lastModifiedMs: 1,
  writeId: etag,
  owner: 'o',
  contentType: 'x',
  headers: {},
  userMeta: {},
  data: { kind: 'inline', base64: 'eA==' },
});
const bucket = { name: 'bkt', createdMs: 1, region: 'us-east-1', owner: 'alice' };
const cmd = (requestId: string, op: MetaOp): MetaCommand => ({ v: 1, requestId, stampMs: 1, op });
const everything = { prefix: '', delimiter: '', startAfter: '', maxKeys: 1000 };

async function withStore(fn: (location: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-early-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('results come before the write, and reads started meanwhile see the batch (point reads and listings)', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'bkt', key: 'old', object: object('e1') }) },
    ]);
    let seen: { results: ApplyResult[]; appliedIndex: number; reads: Promise<[ObjectRecord | undefined, ObjectRecord | undefined, ListPage]> } | undefined;
    const results = await s.applyBatch(
      [
        { index: 3, command: cmd('c', { type: 'PutObject', bucket: 'bkt', key: 'new', object: object('e2') }) },
        { index: 4, command: cmd('d', { type: 'DeleteObject', bucket: 'bkt', key: 'old' }) },
      ],
      (r) => {
        seen = {
          results: r,
          appliedIndex: s.appliedIndex(),
          reads: Promise.all([s.getObject('bkt', 'new'), s.getObject('bkt', 'old'), s.listObjects('bkt', everything)]),
        };
      },
    );
    t.truthy(seen, 'onApplied was called');
    t.deepEqual(seen!.results, results, 'the early results are the batch results');
    // Read barriers go by the applied index: it moves only once the batch is written.
    t.is(seen!.appliedIndex, 2, 'applied index unchanged while the write is in flight');
    const [fresh, deleted, page] = await seen!.reads;
    t.is(fresh?.etag, 'e2', 'a point read during the write sees the new object');
    t.is(deleted, undefined, 'a point read during the write sees the delete');
    t.deepEqual(
      page.objects.map((o) => o.key),
      ['new'],
      'a listing during the write sees the batch',
    );
    t.is(s.appliedIndex(), 4);
    t.is((await s.getObject('bkt', 'new'))?.etag, 'e2');
    await s.close();
  });
});

test('a store that syncs its own writes answers only once they are durable', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: true });
    let appliedAtAnswer = -1;
    await s.applyBatch([{ index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) }], () => {
      appliedAtAnswer = s.appliedIndex();
    });
    t.is(appliedAtAnswer, 1, 'with syncWrites the answer waits for the write');
    await s.close();
  });
});

test('a replayed batch (every entry applied already) still reports its results', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    await s.applyBatch([{ index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) }]);
    let answered: ApplyResult[] | undefined;
    await s.applyBatch([{ index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) }], (r) => {
      answered = r;
    });
    t.is(answered?.length, 1);
    t.is(s.appliedIndex(), 1);
    await s.close();
  });
});
