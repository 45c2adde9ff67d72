/**
 * Goal: the metadata state machine applies commands deterministically and atomically with its
 * applied index. Method: a real classic-level store in a temp dir; each test names the rule.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DEDUP_WINDOW_ENTRIES, openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { MetaCommand, MetaOp, ObjectRecord } from '../../../src/meta/types.ts';

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

async function withStore(fn: (location: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-apply-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('bucket rules: owned-by-you vs exists, not-empty, missing bucket', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    const r = await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'CreateBucket', bucket }) },
      { index: 3, command: cmd('c', { type: 'CreateBucket', bucket: { ...bucket, owner: 'bob' } }) },
      { index: 4, command: cmd('d', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1') }) },
      { index: 5, command: cmd('e', { type: 'DeleteBucket', bucket: 'bkt' }) },
      { index: 6, command: cmd('f', { type: 'PutObject', bucket: 'nope', key: 'k', object: object('e1') }) },
      { index: 7, command: cmd('g', { type: 'DeleteObject', bucket: 'bkt', key: 'k' }) },
      { index: 8, command: cmd('h', { type: 'DeleteBucket', bucket: 'bkt' }) },
    ]);
    t.deepEqual(
      r.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'META_ERR_BUCKET_OWNED_BY_YOU', 'META_ERR_BUCKET_EXISTS', 'ok', 'META_ERR_BUCKET_NOT_EMPTY', 'META_ERR_NO_SUCH_BUCKET', 'ok', 'ok'],
    );
    t.is(s.appliedIndex(), 8);
    t.is(await s.getBucket('bkt'), undefined);
    await s.close();
  });
});

test('conditional writes are decided at apply time against the state the log order gives', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    const r = await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1'), condition: { ifNoneMatchAny: true } }) },
      { index: 3, command: cmd('c', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e2'), condition: { ifNoneMatchAny: true } }) },
      { index: 4, command: cmd('d', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e3'), condition: { ifMatchEtag: 'e2' } }) },
      { index: 5, command: cmd('e', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e4'), condition: { ifMatchEtag: 'e1' } }) },
      { index: 6, command: cmd('f', { type: 'PutObject', bucket: 'bkt', key: 'missing', object: object('e5'), condition: { ifMatchEtag: 'e1' } }) },
    ]);
    t.deepEqual(
      r.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'ok', 'META_ERR_PRECONDITION_FAILED', 'META_ERR_PRECONDITION_FAILED', 'ok', 'META_ERR_CONDITIONAL_CONFLICT'],
    );
    t.is((await s.getObject('bkt', 'k'))?.etag, 'e4');
    await s.close();
  });
});

test('a retried request id is answered from memory, not applied twice', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    await s.applyBatch([{ index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) }]);
    const first = await s.applyBatch([{ index: 2, command: cmd('put-1', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1'), condition: { ifNoneMatchAny: true } }) }]);
    const retry = await s.applyBatch([{ index: 3, command: cmd('put-1', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1'), condition: { ifNoneMatchAny: true } }) }]);
    t.deepEqual(retry, first, 'the retry gets the original answer, not PreconditionFailed');
    t.is(s.appliedIndex(), 3);
    await s.close();
  });
});

test('the applied index survives a restart with the effects, and replayed indexes are skipped', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: true });
    await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1') }) },
    ]);
    await s.close();
    const again = await openLevelMetaStore({ location, syncWrites: true });
    t.is(again.appliedIndex(), 2);
    const r = await again.applyBatch([
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1') }) },
      { index: 3, command: cmd('c', { type: 'DeleteObject', bucket: 'bkt', key: 'k' }) },
    ]);
    t.false(r[0]!.ok, 'index 2 was already applied');
    t.true(r[1]!.ok);
    t.is(again.appliedIndex(), 3);
    t.is(await again.getObject('bkt', 'k'), undefined);
    await again.close();
  });
});

test('a gap in indexes is a broken invariant and crashes (assert)', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    await t.throwsAsync(s.applyBatch([{ index: 2, command: cmd('a', { type: 'CreateBucket', bucket }) }]), { code: 'ERR_ASSERTION' });
    await s.close();
  });
});

test('a second process cannot open the same store (META_ERR_LOCKED)', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    // classic-level locks per process too, so a second open in this process shows the same error.
    await t.throwsAsync(openLevelMetaStore({ location, syncWrites: false }), { code: 'META_ERR_LOCKED' });
    await s.close();
  });
});

test('a copy is ordered only while its source version exists, so GC can never lose its chunks', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    const source = object('src');
    const copy = (requestId: string, writeId: string) =>
      cmd(requestId, { type: 'PutObject', bucket: 'bkt', key: 'dst', object: object('src'), copySource: { bucket: 'bkt', key: 'src', writeId } });
    const r = await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'bkt', key: 'src', object: source }) },
      { index: 3, command: copy('c', source.writeId) },
      { index: 4, command: copy('d', 'an-older-version') },
      { index: 5, command: cmd('e', { type: 'DeleteObject', bucket: 'bkt', key: 'src' }) },
      { index: 6, command: copy('f', source.writeId) },
    ]);
    t.deepEqual(
      r.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'ok', 'ok', 'META_ERR_COPY_SOURCE_CHANGED', 'ok', 'META_ERR_COPY_SOURCE_CHANGED'],
    );
    await s.close();
  });
});

test('a malformed command is answered META_ERR_BAD_COMMAND, its partial effects undone; the batch around it applies', async (t) => {
  await withStore(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    // Shapes the type system forbids but the log could still carry (a buggy or hostile proposer).
    const bad = (requestId: string, op: unknown): MetaCommand => cmd(requestId, op as MetaOp);
    const r = await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1') }) },
      // Deletes 'k' in the overlay, then throws on the number: the delete must be undone.
      { index: 3, command: bad('c', { type: 'DeleteObjects', bucket: 'bkt', keys: ['k', 42] }) },
      { index: 4, command: bad('d', { type: 'CreateBucket' }) },
      { index: 5, command: cmd('e', { type: 'PutObject', bucket: 'bkt', key: 'k2', object: object('e2') }) },
    ]);
    t.deepEqual(
      r.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'ok', 'META_ERR_BAD_COMMAND', 'META_ERR_BAD_COMMAND', 'ok'],
    );
    t.is(s.appliedIndex(), 5);
    t.is((await s.getObject('bkt', 'k'))?.etag, 'e1');
    t.is((await s.getObject('bkt', 'k2'))?.etag, 'e2');
    // The outcome is remembered like any other: a retry of 'c' gets the same answer.
    const again = await s.applyBatch([{ index: 6, command: bad('c', { type: 'DeleteObjects', bucket: 'bkt', keys: ['k', 42] }) }]);
    t.is(again[0]?.ok ? 'ok' : again[0]?.code, 'META_ERR_BAD_COMMAND');
    t.is((await s.getObject('bkt', 'k'))?.etag, 'e1');
    await s.close();
  });
});

test('a request id is remembered for DEDUP_WINDOW_ENTRIES indexes exactly, whatever the batch boundaries (replicas agree)', async (t) => {
  const outcomes: string[][] = [];
  for (const batchSize of [1000, 777]) {
    await withStore(async (location) => {
      const s = await openLevelMetaStore({ location, syncWrites: false });
      const outcome = (r: { ok: boolean; code?: string }[]) => (r[0]!.ok ? 'ok' : r[0]!.code!);
      const seen: string[] = [];
      await s.applyBatch([{ index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) }]);
      let index = 1;
      const padTo = async (target: number) => {
        while (index < target) {
          const n = Math.min(batchSize, target - index);
          await s.applyBatch(Array.from({ length: n }, (_, i) => ({ index: index + 1 + i, command: undefined })));
          index += n;
        }
      };
      // Index 1 + WINDOW: still remembered (answered from memory: ok, not BucketOwnedByYou).
      await padTo(DEDUP_WINDOW_ENTRIES);
      seen.push(outcome(await s.applyBatch([{ index: ++index, command: cmd('a', { type: 'CreateBucket', bucket }) }])));
      // Index 2 + WINDOW: forgotten, so it executes again and meets the existing bucket.
      seen.push(outcome(await s.applyBatch([{ index: ++index, command: cmd('a', { type: 'CreateBucket', bucket }) }])));
      outcomes.push(seen);
      await s.close();
    });
  }
  t.deepEqual(outcomes[0], ['ok', 'META_ERR_BUCKET_OWNED_BY_YOU']);
  t.deepEqual(outcomes[1], outcomes[0]);
});
