/**
 * Goal: chunkRefs() yields every chunk id referenced by an object record or a stored multipart
 * part, and nothing else: inline objects, deleted objects, aborted uploads and completion records
 * contribute nothing; a completed upload's chunks are referenced through its object.
 * Method: a real classic-level store in a temp dir, commands built by hand.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { MetaOp, ObjectRecord, PartRecord } from '../../../src/meta/types.ts';

const id = (c: string) => c.repeat(64);
const obj = (data: ObjectRecord['data']): ObjectRecord => ({ sizeBytes: 1, etag: 'e', lastModifiedMs: 1, writeId: 'w', owner: 'o', contentType: 'x', headers: {}, userMeta: {}, data });
const part = (n: number, chunk: string): PartRecord => ({ partNumber: n, sizeBytes: 5 * 1024 * 1024, etag: `e${n}`, lastModifiedMs: 1, writeId: `w${n}`, data: { kind: 'chunks', chunks: [{ id: chunk, sizeBytes: 5 * 1024 * 1024 }] } });
const upload = (uploadId: string) => ({ uploadId, initiatedMs: 1, owner: 'o', contentType: 'x', headers: {}, userMeta: {} });

test('chunkRefs covers object records and stored parts, from one view', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-refs-'));
  const s = await openLevelMetaStore({ location: dir, syncWrites: false });
  let seq = 0;
  const apply = async (op: MetaOp) => {
    const [r] = await s.applyBatch([{ index: s.appliedIndex() + 1, command: { v: 1, requestId: `r${++seq}`, stampMs: 1, op } }]);
    t.true(r!.ok, JSON.stringify(r));
  };
  const refs = async () => {
    const out: string[] = [];
    for await (const c of s.chunkRefs()) out.push(c);
    return out.sort();
  };
  try {
    await apply({ type: 'CreateBucket', bucket: { name: 'b', createdMs: 1, region: 'us-east-1', owner: 'o' } });
    await apply({ type: 'PutObject', bucket: 'b', key: 'chunked', object: obj({ kind: 'chunks', chunks: [{ id: id('a'), sizeBytes: 1 }, { id: id('b'), sizeBytes: 1 }] }) });
    await apply({ type: 'PutObject', bucket: 'b', key: 'inline', object: obj({ kind: 'inline', base64: 'eA==' }) });
    await apply({ type: 'PutObject', bucket: 'b', key: 'gone', object: obj({ kind: 'chunks', chunks: [{ id: id('c'), sizeBytes: 1 }] }) });
    await apply({ type: 'DeleteObject', bucket: 'b', key: 'gone' });
    await apply({ type: 'CreateMultipartUpload', bucket: 'b', key: 'mp', upload: upload('u1') });
    await apply({ type: 'PutPart', bucket: 'b', key: 'mp', uploadId: 'u1', part: part(1, id('d')) });
    await apply({ type: 'CreateMultipartUpload', bucket: 'b', key: 'mp2', upload: upload('u2') });
    await apply({ type: 'PutPart', bucket: 'b', key: 'mp2', uploadId: 'u2', part: part(1, id('e')) });
    await apply({ type: 'AbortMultipartUpload', bucket: 'b', key: 'mp2', uploadId: 'u2' });
    t.deepEqual(await refs(), [id('a'), id('b'), id('d')]);
    // Completion moves the part's chunks into the object in one batch; they stay referenced once.
    await apply({
      type: 'CompleteMultipartUpload',
      bucket: 'b',
      key: 'mp',
      uploadId: 'u1',
      parts: [{ partNumber: 1, etag: 'e1', writeId: 'w1' }],
      partSizeBytesMin: 5 * 1024 * 1024,
      object: obj({ kind: 'chunks', chunks: [{ id: id('d'), sizeBytes: 5 * 1024 * 1024 }] }),
    });
    t.deepEqual(await refs(), [id('a'), id('b'), id('d')]);
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});
