/**
 * Goal: access-key commands change only what they name, in log order: a status change applied
 * after a permission change keeps the permission (it is its own command, not a stale record put
 * back), and deleting a bucket drops every key's scope on it, so a later bucket of that name (of
 * another owner, say) is not governed by the old key; a key scoped only to that bucket stays
 * scoped (to nothing), never turns unscoped. Method: a real classic-level store in a temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { openLevelMetaStore } from '../../../src/meta/level-meta-store.ts';
import type { AccessKeyRecord, MetaCommand, MetaOp } from '../../../src/meta/types.ts';

const cmd = (requestId: string, op: MetaOp): MetaCommand => ({ v: 1, requestId, stampMs: 1, op });
const key = (accessKeyId: string): AccessKeyRecord => ({ accessKeyId, sealedSecret: 'sealed', createdMs: 1, status: 'active', admin: false });
const bucket = (name: string, owner: string) => ({ name, createdMs: 1, region: 'us-east-1', owner, ownership: 'BucketOwnerEnforced' as const });

test('a status change keeps a permission given after the status was read; DeleteBucket drops scopes on that bucket only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-key-commands-'));
  try {
    const s = await openLevelMetaStore({ location: dir, syncWrites: false });
    try {
      const r = await s.applyBatch([
        { index: 1, command: cmd('a', { type: 'PutAccessKey', key: key('KEY1') }) },
        { index: 2, command: cmd('b', { type: 'PutAccessKey', key: key('KEY2') }) },
        { index: 3, command: cmd('c', { type: 'CreateBucket', bucket: bucket('shared', 'alice') }) },
        { index: 4, command: cmd('d', { type: 'CreateBucket', bucket: bucket('other', 'alice') }) },
        // The admin API read K1 (no scope) before this permission, and disables it after.
        { index: 5, command: cmd('e', { type: 'SetKeyBucketPermission', accessKeyId: 'KEY1', bucket: 'shared', permission: 'write' }) },
        { index: 6, command: cmd('f', { type: 'SetAccessKeyStatus', accessKeyId: 'KEY1', status: 'disabled' }) },
        { index: 7, command: cmd('g', { type: 'SetKeyBucketPermission', accessKeyId: 'KEY2', bucket: 'shared', permission: 'owner' }) },
        { index: 8, command: cmd('h', { type: 'SetKeyBucketPermission', accessKeyId: 'KEY2', bucket: 'other', permission: 'read' }) },
        { index: 9, command: cmd('i', { type: 'SetAccessKeyStatus', accessKeyId: 'nope', status: 'disabled' }) },
      ]);
      t.deepEqual(r.map((x) => (x.ok ? 'ok' : x.code)), ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'META_ERR_BAD_COMMAND']);
      const byId = async () => new Map((await s.listAccessKeys()).map((k) => [k.accessKeyId, k]));
      let keys = await byId();
      t.is(keys.get('KEY1')?.status, 'disabled');
      t.deepEqual(keys.get('KEY1')?.buckets, { shared: 'write' }, 'the permission given meanwhile is kept');

      const d = await s.applyBatch([
        { index: 10, command: cmd('j', { type: 'DeleteBucket', bucket: 'shared' }) },
        { index: 11, command: cmd('k', { type: 'CreateBucket', bucket: bucket('shared', 'mallory') }) },
      ]);
      t.deepEqual(d.map((x) => x.ok), [true, true]);
      keys = await byId();
      t.deepEqual(keys.get('KEY1')?.buckets, {}, 'still scoped, to nothing: not an unscoped key');
      t.deepEqual(keys.get('KEY2')?.buckets, { other: 'read' }, 'scopes on other buckets stay');
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
