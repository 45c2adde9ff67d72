/**
 * Goal: ACL and Object Ownership commands keep S3's rule in log order — a bucket whose ownership
 * is BucketOwnerEnforced never holds a grant to anyone but its owner, whichever of the two
 * changes comes first — and ACL state survives a restart of the store and a snapshot round trip;
 * replacing an object replaces its ACL. Method: a real classic-level store in a temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { AclGrant, MetaCommand, MetaOp, ObjectRecord } from '../../../src/meta/types.ts';

const object = (etag: string, acl?: AclGrant[]): ObjectRecord => ({
  sizeBytes: 1,
  etag,
  lastModifiedMs: 1,
  writeId: etag,
  owner: 'alice',
  contentType: 'x',
  headers: {},
  userMeta: {},
  data: { kind: 'inline', base64: 'eA==' },
  ...(acl ? { acl } : {}),
});
const ownerFull: AclGrant = { grantee: { type: 'CanonicalUser', id: 'alice' }, permission: 'FULL_CONTROL' };
const publicRead: AclGrant = { grantee: { type: 'Group', group: 'AllUsers' }, permission: 'READ' };
const cmd = (requestId: string, op: MetaOp): MetaCommand => ({ v: 1, requestId, stampMs: 1, op });

async function withDirs(fn: (a: string, b: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-acl-apply-'));
  try {
    await fn(join(dir, 'a'), join(dir, 'b'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('BucketOwnerEnforced refuses foreign grants, and cannot be set while the ACL has one', async (t) => {
  await withDirs(async (location) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    const bucket = { name: 'bkt', createdMs: 1, region: 'us-east-1', owner: 'alice', ownership: 'BucketOwnerEnforced' as const };
    const r = await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'PutBucketAcl', bucket: 'bkt', acl: [ownerFull, publicRead] }) },
      { index: 3, command: cmd('c', { type: 'PutBucketAcl', bucket: 'bkt', acl: [ownerFull] }) },
      { index: 4, command: cmd('d', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1') }) },
      { index: 5, command: cmd('e', { type: 'PutObjectAcl', bucket: 'bkt', key: 'k', acl: [ownerFull, publicRead] }) },
      { index: 6, command: cmd('f', { type: 'PutBucketOwnershipControls', bucket: 'bkt', ownership: 'ObjectWriter' }) },
      { index: 7, command: cmd('g', { type: 'PutBucketAcl', bucket: 'bkt', acl: [ownerFull, publicRead] }) },
      { index: 8, command: cmd('h', { type: 'PutBucketOwnershipControls', bucket: 'bkt', ownership: 'BucketOwnerEnforced' }) },
      { index: 9, command: cmd('i', { type: 'PutObjectAcl', bucket: 'bkt', key: 'missing', acl: [ownerFull] }) },
      { index: 10, command: cmd('j', { type: 'PutObjectAcl', bucket: 'nope', key: 'k', acl: [ownerFull] }) },
      { index: 11, command: cmd('k', { type: 'PutBucketOwnershipControls', bucket: 'bkt', ownership: null }) },
    ]);
    t.deepEqual(
      r.map((x) => (x.ok ? 'ok' : x.code)),
      [
        'ok',
        'META_ERR_ACL_NOT_SUPPORTED',
        'ok',
        'ok',
        'META_ERR_ACL_NOT_SUPPORTED',
        'ok',
        'ok',
        'META_ERR_ACL_BLOCKS_OWNERSHIP',
        'META_ERR_NO_SUCH_KEY',
        'META_ERR_NO_SUCH_BUCKET',
        'ok',
      ],
    );
    const stored = await s.getBucket('bkt');
    t.deepEqual(stored?.acl, [ownerFull, publicRead]);
    t.is(stored?.ownership, undefined, 'deleted controls leave no field');
    t.is((await s.getObject('bkt', 'k'))?.acl, undefined, 'the refused object ACL changed nothing');
    await s.close();
  });
});

test('an object ACL stays through tagging, is replaced with the object, and survives restart and snapshot', async (t) => {
  await withDirs(async (location, other) => {
    const s = await openLevelMetaStore({ location, syncWrites: false });
    const bucket = { name: 'bkt', createdMs: 1, region: 'us-east-1', owner: 'alice' };
    await s.applyBatch([
      { index: 1, command: cmd('a', { type: 'CreateBucket', bucket }) },
      { index: 2, command: cmd('b', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e1') }) },
      { index: 3, command: cmd('c', { type: 'PutObjectAcl', bucket: 'bkt', key: 'k', acl: [ownerFull, publicRead] }) },
      { index: 4, command: cmd('d', { type: 'PutObjectTagging', bucket: 'bkt', key: 'k', tags: [{ key: 'a', value: 'b' }] }) },
      { index: 5, command: cmd('e', { type: 'PutObject', bucket: 'bkt', key: 'k2', object: object('e2', [publicRead]) }) },
      { index: 6, command: cmd('f', { type: 'PutBucketAcl', bucket: 'bkt', acl: [ownerFull, publicRead] }) },
    ]);
    const tagged = await s.getObject('bkt', 'k');
    t.deepEqual(tagged?.acl, [ownerFull, publicRead]);
    t.is(tagged?.etag, 'e1');
    await s.applyBatch([{ index: 7, command: cmd('g', { type: 'PutObject', bucket: 'bkt', key: 'k', object: object('e3') }) }]);
    t.is((await s.getObject('bkt', 'k'))?.acl, undefined, 'an overwrite resets the ACL');
    await s.close();

    const reopened = await openLevelMetaStore({ location, syncWrites: false });
    t.deepEqual((await reopened.getObject('bkt', 'k2'))?.acl, [publicRead]);
    const copy = await openLevelMetaStore({ location: other, syncWrites: false });
    await copy.installSnapshot(reopened.exportSnapshot());
    t.deepEqual((await copy.getBucket('bkt'))?.acl, [ownerFull, publicRead]);
    t.deepEqual((await copy.getObject('bkt', 'k2'))?.acl, [publicRead]);
    await reopened.close();
    await copy.close();
  });
});
