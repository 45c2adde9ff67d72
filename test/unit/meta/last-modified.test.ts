/**
 * Goal: Last-Modified never goes back for a key, whatever the proposers' clocks say. Method: a
 * real classic-level store; an overwrite (PutObject, then CompleteMultipartUpload) stamped
 * earlier than the object it replaces is stored 1 ms after it; a later stamp is kept as given;
 * after a delete the key starts afresh.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { MetaCommand, MetaOp, ObjectRecord } from '../../../src/meta/types.ts';

const object = (etag: string, lastModifiedMs: number): ObjectRecord => ({
  sizeBytes: 1,
  etag,
  lastModifiedMs,
  writeId: etag,
  owner: 'o',
  contentType: 'x',
  headers: {},
  userMeta: {},
  data: { kind: 'inline', base64: 'eA==' },
});
const cmd = (requestId: string, op: MetaOp): MetaCommand => ({ v: 1, requestId, stampMs: 1, op });

test('an overwrite stamped before the object it replaces is dated just after it', async (t) => {
  const location = await mkdtemp(join(tmpdir(), 'ts3gw-lm-'));
  try {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket: { name: 'b', createdMs: 1, region: 'us-east-1', owner: 'o' } }) },
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'b', key: 'k', object: object('e1', 50_000) }) },
      // A node 40 s behind overwrites it.
      { index: 3, command: cmd('c', { type: 'PutObject', bucket: 'b', key: 'k', object: object('e2', 10_000) }) },
    ]);
    t.is((await s.getObject('b', 'k'))?.lastModifiedMs, 50_001);
    t.is((await s.getObject('b', 'k'))?.etag, 'e2');
    await s.applyBatch([{ index: 4, command: cmd('d', { type: 'PutObject', bucket: 'b', key: 'k', object: object('e3', 90_000) }) }]);
    t.is((await s.getObject('b', 'k'))?.lastModifiedMs, 90_000, 'a later stamp is kept');
    await s.applyBatch([
      { index: 5, command: cmd('e', { type: 'DeleteObject', bucket: 'b', key: 'k' }) },
      { index: 6, command: cmd('f', { type: 'PutObject', bucket: 'b', key: 'k', object: object('e4', 20_000) }) },
    ]);
    t.is((await s.getObject('b', 'k'))?.lastModifiedMs, 20_000, 'a deleted key starts afresh');
    await s.close();
  } finally {
    await rm(location, { recursive: true, force: true });
  }
});
