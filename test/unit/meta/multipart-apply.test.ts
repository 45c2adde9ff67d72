/**
 * Goal: the multipart commands apply deterministically and atomically: parts need a live upload,
 * completion checks the stored parts (order, ETags, sizes, the part writes the proposer saw) and
 * in ONE batch writes the object and removes the upload with all its parts, a retried identical
 * completion gets the first answer, abort removes everything, and in-progress uploads keep a
 * bucket from being deleted. Method: a real classic-level store in a temp dir, commands built by
 * hand, each test names the rule it checks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { type LevelMetaStore, openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { MetaCommand, MetaOp, ObjectRecord, PartRecord, UploadRecord } from '../../../src/meta/types.ts';

const bucket = { name: 'bkt', createdMs: 1, region: 'us-east-1', owner: 'alice' };
const upload = (uploadId: string): UploadRecord => ({ uploadId, initiatedMs: 1, owner: 'alice', contentType: 'x', headers: {}, userMeta: {} });
const part = (partNumber: number, etag: string, sizeBytes: number, writeId = `${etag}-w`): PartRecord => ({
  partNumber,
  sizeBytes,
  etag,
  lastModifiedMs: 2,
  writeId,
  data: { kind: 'chunks', chunks: [{ id: etag.padEnd(64, '0'), sizeBytes }] },
});
const object = (etag: string, sizeBytes: number): ObjectRecord => ({
  sizeBytes,
  etag,
  lastModifiedMs: 3,
  writeId: 'obj',
  owner: 'alice',
  contentType: 'x',
  headers: {},
  userMeta: {},
  data: { kind: 'chunks', chunks: [] },
});

let seq = 0;
const cmd = (op: MetaOp): MetaCommand => ({ v: 1, requestId: `r${++seq}`, stampMs: 1, op });

async function withStore(fn: (s: LevelMetaStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-mpu-apply-'));
  const s = await openLevelMetaStore({ location: dir, syncWrites: false });
  try {
    await fn(s);
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Applies ops one batch each; returns 'ok' or the code of each. */
async function apply(s: LevelMetaStore, ...ops: MetaOp[]): Promise<string[]> {
  const out: string[] = [];
  for (const op of ops) {
    const [r] = await s.applyBatch([{ index: s.appliedIndex() + 1, command: cmd(op) }]);
    out.push(r!.ok ? 'ok' : r!.code);
  }
  return out;
}

const complete = (uploadId: string, parts: { partNumber: number; etag: string; writeId?: string }[], min = 5, obj = object('final-2', 10)): MetaOp => ({
  type: 'CompleteMultipartUpload',
  bucket: 'bkt',
  key: 'k',
  uploadId,
  parts,
  partSizeBytesMin: min,
  object: obj,
});

test('parts need a live upload; re-uploading a part replaces it', async (t) => {
  await withStore(async (s) => {
    t.deepEqual(
      await apply(
        s,
        { type: 'CreateBucket', bucket },
        { type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(1, 'a', 5) },
        { type: 'CreateMultipartUpload', bucket: 'bkt', key: 'k', upload: upload('u1') },
        { type: 'CreateMultipartUpload', bucket: 'bkt', key: 'k', upload: upload('u1') },
        { type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(1, 'a', 5) },
        { type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(1, 'b', 6) },
        { type: 'CreateMultipartUpload', bucket: 'nope', key: 'k', upload: upload('u2') },
      ),
      ['ok', 'META_ERR_NO_SUCH_UPLOAD', 'ok', 'META_ERR_BAD_COMMAND', 'ok', 'ok', 'META_ERR_NO_SUCH_BUCKET'],
    );
    t.deepEqual((await s.listParts('bkt', 'k', 'u1', 0, 10)).map((p) => [p.partNumber, p.etag]), [[1, 'b']]);
  });
});

test('completion checks order, ETags and sizes against the stored parts, then writes everything in one batch', async (t) => {
  await withStore(async (s) => {
    await apply(
      s,
      { type: 'CreateBucket', bucket },
      { type: 'CreateMultipartUpload', bucket: 'bkt', key: 'k', upload: upload('u1') },
      { type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(1, 'a', 5) },
      { type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(2, 'b', 4) },
      { type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(3, 'c', 1) },
    );
    t.deepEqual(
      await apply(
        s,
        complete('u1', [{ partNumber: 2, etag: 'b' }, { partNumber: 1, etag: 'a' }]),
        complete('u1', [{ partNumber: 1, etag: 'a' }, { partNumber: 1, etag: 'a' }]),
        complete('u1', [{ partNumber: 1, etag: 'x' }]),
        complete('u1', [{ partNumber: 4, etag: 'a' }]),
        complete('u1', [{ partNumber: 2, etag: 'b' }, { partNumber: 3, etag: 'c' }]),
        complete('u1', [{ partNumber: 1, etag: 'a', writeId: 'stale' }]),
        complete('nope', [{ partNumber: 1, etag: 'a' }]),
      ),
      [
        'META_ERR_INVALID_PART_ORDER',
        'META_ERR_INVALID_PART_ORDER',
        'META_ERR_INVALID_PART',
        'META_ERR_INVALID_PART',
        'META_ERR_ENTITY_TOO_SMALL',
        'META_ERR_UPLOAD_CHANGED',
        'META_ERR_NO_SUCH_UPLOAD',
      ],
    );
    t.truthy(await s.getUpload('bkt', 'k', 'u1'), 'failed completions change nothing');
    t.is(await s.getObject('bkt', 'k'), undefined);
    const ok = complete('u1', [{ partNumber: 1, etag: 'a', writeId: 'a-w' }, { partNumber: 3, etag: 'c' }], 5, object('final-2', 6));
    t.deepEqual(await apply(s, ok), ['ok']);
    t.is((await s.getObject('bkt', 'k'))?.etag, 'final-2');
    t.is(await s.getUpload('bkt', 'k', 'u1'), undefined);
    t.deepEqual(await s.listParts('bkt', 'k', 'u1', 0, 10), [], 'every part is gone, the unlisted part 2 too');
    t.is((await s.listUploads('bkt', { prefix: '', delimiter: '', keyMarker: '', uploadIdMarker: '', maxUploads: 10 })).uploads.length, 0);
    // A retried identical completion (new request id) answers the same; a different one finds no upload.
    const [again] = await s.applyBatch([{ index: s.appliedIndex() + 1, command: cmd(ok.type === 'CompleteMultipartUpload' ? { ...ok, object: object('other', 1) } : ok) }]);
    t.true(again!.ok);
    t.is(again!.ok && again!.value?.kind === 'CompleteMultipartUpload' ? again!.value.completion.etag : '', 'final-2');
    t.is((await s.getObject('bkt', 'k'))?.etag, 'final-2', 'the retry wrote nothing');
    t.deepEqual(await apply(s, complete('u1', [{ partNumber: 1, etag: 'a' }])), ['META_ERR_NO_SUCH_UPLOAD']);
  });
});

test('completion and abort inside one batch see each other (group commit)', async (t) => {
  await withStore(async (s) => {
    await apply(s, { type: 'CreateBucket', bucket }, { type: 'CreateMultipartUpload', bucket: 'bkt', key: 'k', upload: upload('u1') });
    const first = s.appliedIndex() + 1;
    const results = await s.applyBatch([
      { index: first, command: cmd({ type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(1, 'a', 1) }) },
      { index: first + 1, command: cmd(complete('u1', [{ partNumber: 1, etag: 'a' }], 5, object('one', 1))) },
      { index: first + 2, command: cmd({ type: 'AbortMultipartUpload', bucket: 'bkt', key: 'k', uploadId: 'u1' }) },
      { index: first + 3, command: cmd({ type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(2, 'b', 1) }) },
    ]);
    t.deepEqual(results.map((r) => (r.ok ? 'ok' : r.code)), ['ok', 'ok', 'META_ERR_NO_SUCH_UPLOAD', 'META_ERR_NO_SUCH_UPLOAD']);
    t.is((await s.getObject('bkt', 'k'))?.etag, 'one');
  });
});

test('abort removes the upload and its parts; in-progress uploads keep the bucket from being deleted', async (t) => {
  await withStore(async (s) => {
    t.deepEqual(
      await apply(
        s,
        { type: 'CreateBucket', bucket },
        { type: 'CreateMultipartUpload', bucket: 'bkt', key: 'k', upload: upload('u1') },
        { type: 'PutPart', bucket: 'bkt', key: 'k', uploadId: 'u1', part: part(1, 'a', 1) },
        { type: 'DeleteBucket', bucket: 'bkt' },
        { type: 'AbortMultipartUpload', bucket: 'bkt', key: 'k', uploadId: 'u1' },
        { type: 'AbortMultipartUpload', bucket: 'bkt', key: 'k', uploadId: 'u1' },
        { type: 'DeleteBucket', bucket: 'bkt' },
      ),
      ['ok', 'ok', 'ok', 'META_ERR_BUCKET_NOT_EMPTY', 'ok', 'META_ERR_NO_SUCH_UPLOAD', 'ok'],
    );
    t.deepEqual(await s.listParts('bkt', 'k', 'u1', 0, 10), []);
  });
});

test('tagging and bucket configuration commands replace their field only', async (t) => {
  await withStore(async (s) => {
    const obj = object('e', 1);
    t.deepEqual(
      await apply(
        s,
        { type: 'CreateBucket', bucket },
        { type: 'PutObject', bucket: 'bkt', key: 'k', object: obj },
        { type: 'PutObjectTagging', bucket: 'bkt', key: 'k', tags: [{ key: 'a', value: '1' }] },
        { type: 'PutObjectTagging', bucket: 'bkt', key: 'missing', tags: [] },
        { type: 'PutBucketTagging', bucket: 'bkt', tags: [{ key: 'b', value: '2' }] },
        { type: 'PutBucketCors', bucket: 'bkt', rules: [{ allowedOrigins: ['*'], allowedMethods: ['GET'], allowedHeaders: [], exposeHeaders: [] }] },
        { type: 'PutBucketTagging', bucket: 'nope', tags: null },
      ),
      ['ok', 'ok', 'ok', 'META_ERR_NO_SUCH_KEY', 'ok', 'ok', 'META_ERR_NO_SUCH_BUCKET'],
    );
    t.deepEqual(await s.getObject('bkt', 'k'), { ...obj, tags: [{ key: 'a', value: '1' }] });
    const b = await s.getBucket('bkt');
    t.deepEqual(b?.tags, [{ key: 'b', value: '2' }]);
    t.is(b?.cors?.length, 1);
    await apply(s, { type: 'PutBucketTagging', bucket: 'bkt', tags: null }, { type: 'PutObjectTagging', bucket: 'bkt', key: 'k', tags: [] });
    t.is((await s.getBucket('bkt'))?.tags, undefined);
    t.is((await s.getBucket('bkt'))?.cors?.length, 1);
    t.deepEqual(await s.getObject('bkt', 'k'), obj);
  });
});

test('ListMultipartUploads pages by key and upload id, with delimiter roll-up', async (t) => {
  await withStore(async (s) => {
    const keys: [string, string][] = [['a', 'u1'], ['a', 'u2'], ['b/1', 'u3'], ['b/2', 'u4'], ['c', 'u5']];
    await apply(s, { type: 'CreateBucket', bucket }, ...keys.map(([key, id]): MetaOp => ({ type: 'CreateMultipartUpload', bucket: 'bkt', key, upload: upload(id) })));
    const q = { prefix: '', delimiter: '', keyMarker: '', uploadIdMarker: '', maxUploads: 2 };
    const p1 = await s.listUploads('bkt', q);
    t.deepEqual(p1.uploads.map((u) => u.upload.uploadId), ['u1', 'u2']);
    t.true(p1.isTruncated);
    const p2 = await s.listUploads('bkt', { ...q, keyMarker: p1.nextKeyMarker!, uploadIdMarker: p1.nextUploadIdMarker! });
    t.deepEqual(p2.uploads.map((u) => u.upload.uploadId), ['u3', 'u4']);
    const d = await s.listUploads('bkt', { ...q, delimiter: '/', maxUploads: 10 });
    t.deepEqual(d.uploads.map((u) => u.key), ['a', 'a', 'c']);
    t.deepEqual(d.commonPrefixes, ['b/']);
    const afterPrefix = await s.listUploads('bkt', { ...q, delimiter: '/', keyMarker: 'b/', maxUploads: 10 });
    t.deepEqual(afterPrefix.uploads.map((u) => u.key), ['c']);
    t.deepEqual(afterPrefix.commonPrefixes, []);
  });
});

test('a completion record lives as long as its object: replacing or deleting the object removes it, and a late retry then finds no upload', async (t) => {
  await withStore(async (s) => {
    await apply(s, { type: 'CreateBucket', bucket });
    /** Completes upload `id` of `key` with one part; returns the completion op. */
    const completeOne = async (key: string, id: string): Promise<MetaOp> => {
      await apply(
        s,
        { type: 'CreateMultipartUpload', bucket: 'bkt', key, upload: upload(id) },
        { type: 'PutPart', bucket: 'bkt', key, uploadId: id, part: part(1, `${id}e`, 5) },
      );
      const op: MetaOp = { type: 'CompleteMultipartUpload', bucket: 'bkt', key, uploadId: id, parts: [{ partNumber: 1, etag: `${id}e` }], partSizeBytesMin: 5, object: object(`${id}-final`, 5) };
      t.deepEqual(await apply(s, op), ['ok']);
      t.is((await s.getObject('bkt', key))?.uploadId, id, 'the object knows its upload');
      t.truthy(await s.getCompletion('bkt', key, id));
      return op;
    };
    // Replaced by a PutObject.
    const first = await completeOne('k1', 'u1');
    t.deepEqual(await apply(s, { type: 'PutObject', bucket: 'bkt', key: 'k1', object: object('plain', 1) }), ['ok']);
    t.is(await s.getCompletion('bkt', 'k1', 'u1'), undefined);
    t.deepEqual(await apply(s, first), ['META_ERR_NO_SUCH_UPLOAD'], 'a late retry of a replaced completion');
    t.is((await s.getObject('bkt', 'k1'))?.uploadId, undefined);
    // Replaced by another completion: only the live one's record stays.
    await completeOne('k2', 'u2');
    await completeOne('k2', 'u3');
    t.is(await s.getCompletion('bkt', 'k2', 'u2'), undefined);
    t.truthy(await s.getCompletion('bkt', 'k2', 'u3'));
    // Deleted, one by one or in a batch.
    await completeOne('k3', 'u4');
    await completeOne('k4', 'u5');
    t.deepEqual(await apply(s, { type: 'DeleteObject', bucket: 'bkt', key: 'k3' }, { type: 'DeleteObjects', bucket: 'bkt', keys: ['k4', 'k2', 'absent'] }), ['ok', 'ok']);
    for (const [key, id] of [['k3', 'u4'], ['k4', 'u5'], ['k2', 'u3']] as const) t.is(await s.getCompletion('bkt', key, id), undefined, `${key} ${id}`);
    // Tagging rewrites the object and keeps the link.
    await completeOne('k5', 'u6');
    await apply(s, { type: 'PutObjectTagging', bucket: 'bkt', key: 'k5', tags: [{ key: 'a', value: 'b' }] });
    t.is((await s.getObject('bkt', 'k5'))?.uploadId, 'u6');
    t.truthy(await s.getCompletion('bkt', 'k5', 'u6'));
  });
});
