/**
 * Goal: the wire forms of S3 ACLs parse and render as AWS defines them — grant headers (quoted or
 * not, several grantees, refusals), canned expansions, AccessControlPolicy bodies — and the
 * permission check gives FULL_CONTROL its meaning, groups theirs, and the owner full control.
 * Method: pure functions of src/s3/authz/acl.ts and newObjectAccess of access.ts.
 */
import test from 'ava';
import { aclAllows, aclFromHeaders, cannedAcl, parseAccessControlPolicy, renderAccessControlPolicy } from '../../../src/s3/authz/acl.ts';
import { newObjectAccess } from '../../../src/s3/authz/access.ts';
import type { BucketRecord } from '../../../src/objects/types.ts';
import { renderXml } from '../../../src/s3/xml.ts';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
};

test('grant headers: id and uri grantees, quoted or bare, several per header, one permission each', (t) => {
  const got = aclFromHeaders({
    'x-amz-grant-read': 'id="alice", uri="http://acs.amazonaws.com/groups/global/AllUsers"',
    'x-amz-grant-write-acp': 'id=bob',
  });
  t.deepEqual(got, {
    kind: 'grants',
    grants: [
      { grantee: { type: 'CanonicalUser', id: 'alice' }, permission: 'READ' },
      { grantee: { type: 'Group', group: 'AllUsers' }, permission: 'READ' },
      { grantee: { type: 'CanonicalUser', id: 'bob' }, permission: 'WRITE_ACP' },
    ],
  });
  t.deepEqual(aclFromHeaders({}), { kind: 'none' });
  t.deepEqual(aclFromHeaders({ 'x-amz-acl': 'public-read' }), { kind: 'canned', name: 'public-read' });
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-acl': 'public-read', 'x-amz-grant-read': 'id="a"' })), 'InvalidRequest');
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-acl': 'everyone' })), 'InvalidArgument');
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-acl': 'aws-exec-read' })), 'NotImplemented');
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-grant-read': 'emailAddress="a@b.c"' })), 'UnresolvableGrantByEmailAddress');
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-grant-read': 'uri="http://acs.amazonaws.com/groups/global/Nobody"' })), 'InvalidArgument');
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-grant-read': 'id="has space"' })), 'InvalidArgument');
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-grant-read': 'nonsense' })), 'InvalidArgument');
  t.is(codeOf(() => aclFromHeaders({ 'x-amz-grant-read': '' })), 'InvalidArgument');
});

test('canned ACLs expand to the owner\'s full control plus AWS\'s grants', (t) => {
  const perms = (name: Parameters<typeof cannedAcl>[0], owner = 'o', bucketOwner = 'b') =>
    cannedAcl(name, owner, bucketOwner).map((g) => `${g.grantee.type === 'Group' ? g.grantee.group : g.grantee.id}:${g.permission}`);
  t.deepEqual(perms('private'), ['o:FULL_CONTROL']);
  t.deepEqual(perms('public-read-write'), ['o:FULL_CONTROL', 'AllUsers:READ', 'AllUsers:WRITE']);
  t.deepEqual(perms('log-delivery-write'), ['o:FULL_CONTROL', 'LogDelivery:WRITE', 'LogDelivery:READ_ACP']);
  t.deepEqual(perms('bucket-owner-full-control'), ['o:FULL_CONTROL', 'b:FULL_CONTROL']);
  t.deepEqual(perms('bucket-owner-read', 'b', 'b'), ['b:FULL_CONTROL'], 'no second grant to the same owner');
});

test('AccessControlPolicy bodies: grantee types from their elements, owner checked, bad permissions refused; rendering carries xsi:type', (t) => {
  const doc = {
    Owner: { ID: 'alice' },
    AccessControlList: { Grant: [{ Grantee: { ID: 'bob' }, Permission: 'READ' }, { Grantee: { URI: 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers' }, Permission: 'WRITE' }] },
  };
  t.deepEqual(parseAccessControlPolicy(doc, 'alice'), [
    { grantee: { type: 'CanonicalUser', id: 'bob' }, permission: 'READ' },
    { grantee: { type: 'Group', group: 'AuthenticatedUsers' }, permission: 'WRITE' },
  ]);
  t.deepEqual(parseAccessControlPolicy({ Owner: { ID: 'alice' }, AccessControlList: '' }, 'alice'), [], 'an empty list');
  t.is(codeOf(() => parseAccessControlPolicy(doc, 'bob')), 'AccessDenied');
  t.is(codeOf(() => parseAccessControlPolicy({ AccessControlList: doc.AccessControlList }, 'alice')), 'MalformedACLError');
  t.is(codeOf(() => parseAccessControlPolicy({ Owner: { ID: 'alice' }, AccessControlList: { Grant: { Grantee: { ID: 'bob' }, Permission: 'ALL' } } }, 'alice')), 'MalformedACLError');
  t.is(codeOf(() => parseAccessControlPolicy({ Owner: { ID: 'alice' }, AccessControlList: { Grant: { Grantee: { ID: 'bob', URI: 'x' }, Permission: 'READ' } } }, 'alice')), 'MalformedACLError');
  const xml = renderXml('AccessControlPolicy', renderAccessControlPolicy('alice', parseAccessControlPolicy(doc, 'alice')));
  t.true(xml.includes('<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>bob</ID><DisplayName>bob</DisplayName></Grantee><Permission>READ</Permission>'));
  t.true(xml.includes('xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI></Grantee><Permission>WRITE</Permission>'));
});

test('aclAllows: FULL_CONTROL covers every permission, groups by who asks, the owner always', (t) => {
  const acl = cannedAcl('authenticated-read', 'o', 'o').concat([{ grantee: { type: 'CanonicalUser', id: 'w' }, permission: 'FULL_CONTROL' }]);
  const anon = { kind: 'anonymous' } as const;
  const user = (id: string) => ({ kind: 'user', id }) as const;
  t.true(aclAllows('o', [], user('o'), 'WRITE_ACP'), 'the owner, whatever the grants');
  t.true(aclAllows('o', acl, user('x'), 'READ'), 'AuthenticatedUsers: any key');
  t.false(aclAllows('o', acl, anon, 'READ'), 'but not anonymous');
  t.false(aclAllows('o', acl, user('x'), 'WRITE'));
  t.true(aclAllows('o', acl, user('w'), 'WRITE_ACP'), 'FULL_CONTROL covers WRITE_ACP');
  t.true(aclAllows('o', cannedAcl('public-read', 'o', 'o'), anon, 'READ'));
  t.false(aclAllows('o', undefined, anon, 'READ'), 'absent: private');
});

test('new objects: who owns them and which ACL they get, by Object Ownership', (t) => {
  const bucket = (ownership?: BucketRecord['ownership']): BucketRecord => ({ name: 'b', createdMs: 1, region: 'r', owner: 'bo', ...(ownership ? { ownership } : {}) });
  const writer = { kind: 'user', id: 'w' } as const;
  t.deepEqual(newObjectAccess(bucket('BucketOwnerEnforced'), writer, { kind: 'none' }), { owner: 'bo' });
  t.deepEqual(newObjectAccess(bucket('BucketOwnerEnforced'), writer, { kind: 'canned', name: 'bucket-owner-full-control' }), { owner: 'bo' });
  t.is(codeOf(() => newObjectAccess(bucket('BucketOwnerEnforced'), writer, { kind: 'canned', name: 'public-read' })), 'AccessControlListNotSupported');
  t.is(newObjectAccess(bucket('BucketOwnerPreferred'), writer, { kind: 'canned', name: 'bucket-owner-full-control' }).owner, 'bo');
  t.is(newObjectAccess(bucket('BucketOwnerPreferred'), writer, { kind: 'none' }).owner, 'w');
  t.deepEqual(newObjectAccess(bucket(), writer, { kind: 'canned', name: 'private' }), { owner: 'w' }, 'no controls: ObjectWriter');
  t.is(newObjectAccess(bucket('ObjectWriter'), { kind: 'anonymous' }, { kind: 'none' }).owner, 'bo', 'anonymous writes belong to the bucket owner');
});
