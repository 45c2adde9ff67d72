/**
 * Goal: S3 ACLs and Object Ownership as AWS defines them (issue #16): Get/PutBucketAcl,
 * Get/PutObjectAcl with canned ACLs, grant headers and XML bodies; canned ACLs on CreateBucket,
 * PutObject, CopyObject (not copied from the source) and CreateMultipartUpload (applied at
 * completion); ownership controls and their errors; anonymous requests allowed exactly where
 * AllUsers is granted; a second key as another owner; ACLs kept across a restart.
 * Method: one real server process; alice and bob are ordinary access keys made through the admin
 * API (the root key passes every check, so it only sets up), each with its own AWS SDK v3 client;
 * anonymous requests are raw unsigned HTTP. Every refused request is followed by a read showing
 * it changed nothing.
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketOwnershipControlsCommand,
  GetBucketAclCommand,
  GetBucketOwnershipControlsCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  type Grant,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutBucketOwnershipControlsCommand,
  PutObjectAclCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { removeDir, s3Client, s3ErrorOf, startServer, type TestServer } from '../helpers/server.ts';
import { expectS3Error, RawS3 } from '../helpers/signer.ts';

interface Key {
  id: string;
  s3: S3Client;
}
interface Ctx {
  server: TestServer;
  root: S3Client;
  alice: Key;
  bob: Key;
  anon: RawS3;
}
const test = anyTest as TestFn<Ctx>;

const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
const AUTHENTICATED_USERS = 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers';
let seq = 0;
const name = (p: string) => `${p}-${process.pid}-${++seq}`;

async function newKey(server: TestServer, description: string): Promise<Key> {
  const raw = new RawS3(server.url);
  try {
    const res = await raw.signed('POST', '/_ts3gw/admin/keys', { query: `description=${description}` });
    if (res.status !== 201) throw new Error(`create key: ${res.status} ${res.text}`);
    const key = JSON.parse(res.text) as { accessKeyId: string; secretAccessKey: string };
    return { id: key.accessKeyId, s3: s3Client(server, { credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey } }) };
  } finally {
    await raw.close();
  }
}

async function start(dataDir?: string): Promise<TestServer> {
  return startServer(dataDir ? { dataDir } : {});
}

test.before(async (t) => {
  const server = await start();
  try {
    t.context = { server, root: s3Client(server), alice: await newKey(server, 'alice'), bob: await newKey(server, 'bob'), anon: new RawS3(server.url) };
  } catch (err) {
    await server.stop();
    await removeDir(server.dataDir);
    throw err;
  }
});

test.after.always(async (t) => {
  await t.context.anon?.close();
  await t.context.server?.stop();
  if (t.context.server) await removeDir(t.context.server.dataDir);
});

/** A bucket of alice's whose ownership allows ACLs (ObjectWriter unless told). */
async function aclBucket(s3: S3Client, ownership: 'ObjectWriter' | 'BucketOwnerPreferred' = 'ObjectWriter'): Promise<string> {
  const bucket = name('acl');
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectOwnership: ownership }));
  return bucket;
}

/** Grants as comparable strings: "CanonicalUser:<id>:READ" or "Group:<uri>:READ", sorted. */
function grantsOf(grants: Grant[] | undefined): string[] {
  return (grants ?? [])
    .map((g) => (g.Grantee?.Type === 'Group' ? `Group:${g.Grantee.URI}:${g.Permission}` : `${g.Grantee?.Type}:${g.Grantee?.ID}:${g.Permission}`))
    .sort();
}

test.serial('new buckets are BucketOwnerEnforced: ACLs other than the owner\'s full control are refused, reads show the owner\'s full control', async (t) => {
  const { alice, anon } = t.context;
  const bucket = name('enforced');
  await alice.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const controls = await alice.s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }));
  t.is(controls.OwnershipControls?.Rules?.[0]?.ObjectOwnership, 'BucketOwnerEnforced');
  const acl = await alice.s3.send(new GetBucketAclCommand({ Bucket: bucket }));
  t.is(acl.Owner?.ID, alice.id);
  t.deepEqual(grantsOf(acl.Grants), [`CanonicalUser:${alice.id}:FULL_CONTROL`]);

  t.deepEqual(await s3ErrorOf(alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x', ACL: 'public-read' }))), { name: 'AccessControlListNotSupported', status: 400 });
  t.deepEqual(await s3ErrorOf(alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read' }))), { name: 'AccessControlListNotSupported', status: 400 });
  t.is((await anon.send('GET', `/${bucket}/k`)).status, 403, 'the refused PUT stored nothing public');
  // What tools send by habit still works: private and bucket-owner-full-control.
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x', ACL: 'private' }));
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k2', Body: 'x', ACL: 'bucket-owner-full-control' }));
  await alice.s3.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'k', ACL: 'bucket-owner-full-control' }));
  t.deepEqual(grantsOf((await alice.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'k' }))).Grants), [`CanonicalUser:${alice.id}:FULL_CONTROL`]);
  t.deepEqual(await s3ErrorOf(alice.s3.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'k', ACL: 'public-read' }))), { name: 'AccessControlListNotSupported', status: 400 });

  // CreateBucket with a public ACL and no ownership header: S3's InvalidBucketAclWithObjectOwnership.
  const refused = name('refused');
  t.deepEqual(await s3ErrorOf(alice.s3.send(new CreateBucketCommand({ Bucket: refused, ACL: 'public-read' }))), { name: 'InvalidBucketAclWithObjectOwnership', status: 400 });
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetBucketAclCommand({ Bucket: refused }))), { name: 'NoSuchBucket', status: 404 });
});

test.serial('ownership controls: put, get, delete, and enforcement refused while the bucket ACL grants others', async (t) => {
  const { alice, anon } = t.context;
  const bucket = await aclBucket(alice.s3);
  t.is((await alice.s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }))).OwnershipControls?.Rules?.[0]?.ObjectOwnership, 'ObjectWriter');
  await alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read' }));
  const enforce = { Bucket: bucket, OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' as const }] } };
  t.deepEqual(await s3ErrorOf(alice.s3.send(new PutBucketOwnershipControlsCommand(enforce))), { name: 'InvalidBucketAclWithObjectOwnership', status: 400 });
  t.is((await alice.s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }))).OwnershipControls?.Rules?.[0]?.ObjectOwnership, 'ObjectWriter');
  t.is((await anon.send('GET', `/${bucket}`)).status, 200, 'the bucket is still publicly listable');

  await alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'private' }));
  await alice.s3.send(new PutBucketOwnershipControlsCommand(enforce));
  t.is((await alice.s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }))).OwnershipControls?.Rules?.[0]?.ObjectOwnership, 'BucketOwnerEnforced');
  await alice.s3.send(new DeleteBucketOwnershipControlsCommand({ Bucket: bucket }));
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetBucketOwnershipControlsCommand({ Bucket: bucket }))), { name: 'OwnershipControlsNotFoundError', status: 404 });
  // Without controls the bucket behaves as ObjectWriter: ACLs work.
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'pub', Body: 'p', ACL: 'public-read' }));
  t.is((await anon.send('GET', `/${bucket}/pub`)).text, 'p');

  const raw = new RawS3(t.context.server.url);
  try {
    const bad = '<OwnershipControls><Rule><ObjectOwnership>Everyone</ObjectOwnership></Rule></OwnershipControls>';
    expectS3Error(t, await raw.signed('PUT', `/${bucket}`, { query: 'ownershipControls', body: bad }), 400, 'MalformedXML');
    // Only the bucket owner (or an operator key) may change them.
    t.deepEqual(await s3ErrorOf(t.context.bob.s3.send(new PutBucketOwnershipControlsCommand(enforce))), { name: 'AccessDenied', status: 403 });
  } finally {
    await raw.close();
  }
});

test.serial('canned ACLs on PutObject expand to AWS\'s grants; bucket-owner-* name the bucket owner', async (t) => {
  const { alice, bob } = t.context;
  const bucket = await aclBucket(alice.s3);
  // bob may write into alice's bucket (WRITE to him), so bucket-owner-* name someone else.
  await alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, GrantWrite: `id="${bob.id}"`, GrantFullControl: `id="${alice.id}"` }));
  const expected: Record<string, string[]> = {
    private: [],
    'public-read': [`Group:${ALL_USERS}:READ`],
    'public-read-write': [`Group:${ALL_USERS}:READ`, `Group:${ALL_USERS}:WRITE`],
    'authenticated-read': [`Group:${AUTHENTICATED_USERS}:READ`],
    'bucket-owner-read': [`CanonicalUser:${alice.id}:READ`],
    'bucket-owner-full-control': [`CanonicalUser:${alice.id}:FULL_CONTROL`],
  };
  for (const [acl, extra] of Object.entries(expected)) {
    const key = `canned-${acl}`;
    await bob.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: acl, ACL: acl as 'private' }));
    const got = await bob.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: key }));
    t.is(got.Owner?.ID, bob.id, `${acl}: the writer owns the object (ObjectWriter)`);
    t.deepEqual(grantsOf(got.Grants), [...extra, `CanonicalUser:${bob.id}:FULL_CONTROL`].sort(), acl);
  }
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'canned-private' }))), { name: 'AccessDenied', status: 403 }, 'the bucket owner reads others\' objects only if granted');
  t.is(await (await alice.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'canned-bucket-owner-read' }))).Body?.transformToString(), 'bucket-owner-read');

  // BucketOwnerPreferred: bucket-owner-full-control hands the object to the bucket owner.
  const preferred = await aclBucket(alice.s3, 'BucketOwnerPreferred');
  await alice.s3.send(new PutBucketAclCommand({ Bucket: preferred, GrantWrite: `id="${bob.id}"`, GrantFullControl: `id="${alice.id}"` }));
  await bob.s3.send(new PutObjectCommand({ Bucket: preferred, Key: 'k', Body: 'x', ACL: 'bucket-owner-full-control' }));
  t.is((await alice.s3.send(new GetObjectAclCommand({ Bucket: preferred, Key: 'k' }))).Owner?.ID, alice.id);
  await bob.s3.send(new PutObjectCommand({ Bucket: preferred, Key: 'k2', Body: 'x' }));
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetObjectAclCommand({ Bucket: preferred, Key: 'k2' }))), { name: 'AccessDenied', status: 403 });

  const raw = new RawS3(t.context.server.url);
  try {
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/bad`, { body: 'x', headers: { 'x-amz-acl': 'world-writable' } }), 400, 'InvalidArgument');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/bad`, { body: 'x', headers: { 'x-amz-acl': 'public-read', 'x-amz-grant-read': `id="${bob.id}"` } }), 400, 'InvalidRequest');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/bad`, { body: 'x', headers: { 'x-amz-grant-read': 'emailAddress="bob@example.com"' } }), 400, 'UnresolvableGrantByEmailAddress');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/bad`, { body: 'x', headers: { 'x-amz-grant-read': 'uri="http://example.com/everyone"' } }), 400, 'InvalidArgument');
    expectS3Error(t, await raw.signed('GET', `/${bucket}/bad`), 404, 'NoSuchKey', 'no refused PUT stored the object');
  } finally {
    await raw.close();
  }
});

test.serial('PutObjectAcl: grant headers and an XML body round-trip; both at once, bad XML, email grantees and another owner are refused and change nothing', async (t) => {
  const { alice, bob, anon } = t.context;
  const bucket = await aclBucket(alice.s3);
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'data' }));
  await alice.s3.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'k', GrantRead: `id="${bob.id}", uri="${ALL_USERS}"`, GrantReadACP: `id="${bob.id}"` }));
  t.deepEqual(grantsOf((await alice.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'k' }))).Grants), [`CanonicalUser:${bob.id}:READ`, `CanonicalUser:${bob.id}:READ_ACP`, `Group:${ALL_USERS}:READ`]);
  t.is((await anon.send('GET', `/${bucket}/k`)).text, 'data');

  const policy = {
    Owner: { ID: alice.id },
    Grants: [
      { Grantee: { Type: 'CanonicalUser' as const, ID: alice.id }, Permission: 'FULL_CONTROL' as const },
      { Grantee: { Type: 'CanonicalUser' as const, ID: bob.id }, Permission: 'WRITE_ACP' as const },
      { Grantee: { Type: 'Group' as const, URI: AUTHENTICATED_USERS }, Permission: 'READ' as const },
    ],
  };
  await alice.s3.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'k', AccessControlPolicy: policy }));
  const after = await alice.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'k' }));
  t.is(after.Owner?.ID, alice.id);
  t.deepEqual(grantsOf(after.Grants), grantsOf(policy.Grants));
  t.is((await anon.send('GET', `/${bucket}/k`)).status, 403, 'AllUsers READ is gone');
  t.is(await (await bob.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body?.transformToString(), 'data', 'AuthenticatedUsers READ lets any key read');
  // bob holds WRITE_ACP but not READ_ACP now.
  t.deepEqual(await s3ErrorOf(bob.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'k' }))), { name: 'AccessDenied', status: 403 });

  // The XML as AWS writes it (xsi:type, DisplayName).
  const raw = new RawS3(t.context.server.url);
  try {
    const xml = (await raw.signed('GET', `/${bucket}/k`, { query: 'acl' })).text;
    t.regex(xml, /<AccessControlPolicy xmlns="http:\/\/s3\.amazonaws\.com\/doc\/2006-03-01\/"><Owner><ID>[^<]+<\/ID><DisplayName>[^<]+<\/DisplayName><\/Owner><AccessControlList><Grant>/);
    t.regex(xml, /<Grantee xmlns:xsi="http:\/\/www\.w3\.org\/2001\/XMLSchema-instance" xsi:type="Group"><URI>http:\/\/acs\.amazonaws\.com\/groups\/global\/AuthenticatedUsers<\/URI><\/Grantee><Permission>READ<\/Permission>/);

    const body = (grantee: string, permission = 'READ', owner = alice.id) =>
      `<AccessControlPolicy><Owner><ID>${owner}</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">${grantee}</Grantee><Permission>${permission}</Permission></Grant></AccessControlList></AccessControlPolicy>`;
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/k`, { query: 'acl', body: body(`<ID>${bob.id}</ID>`), headers: { 'x-amz-acl': 'private' } }), 400, 'UnexpectedContent');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/k`, { query: 'acl', body: body(`<ID>${bob.id}</ID>`, 'EVERYTHING') }), 400, 'MalformedACLError');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/k`, { query: 'acl', body: body('<EmailAddress>bob@example.com</EmailAddress>') }), 400, 'UnresolvableGrantByEmailAddress');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/k`, { query: 'acl', body: body(`<ID>${bob.id}</ID>`, 'READ', bob.id) }), 403, 'AccessDenied');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/k`, { query: 'acl', body: '<AccessControlPolicy><Owner>' }), 400, 'MalformedXML');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/k`, { query: 'acl' }), 400, 'MalformedACLError');
    expectS3Error(t, await raw.signed('PUT', `/${bucket}/missing`, { query: 'acl', headers: { 'x-amz-acl': 'public-read' } }), 404, 'NoSuchKey');
  } finally {
    await raw.close();
  }
  t.deepEqual(grantsOf((await alice.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'k' }))).Grants), grantsOf(policy.Grants), 'no refused request changed the ACL');
  // bob, holding WRITE_ACP, may replace the ACL; the owner stays alice.
  await bob.s3.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'k', ACL: 'public-read' }));
  const replaced = await alice.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'k' }));
  t.is(replaced.Owner?.ID, alice.id);
  t.deepEqual(grantsOf(replaced.Grants), [`CanonicalUser:${alice.id}:FULL_CONTROL`, `Group:${ALL_USERS}:READ`]);
});

test.serial('anonymous requests: GET/HEAD only where AllUsers may READ, listing by the bucket ACL, writes by public-read-write; everything else 403', async (t) => {
  const { alice, anon } = t.context;
  const bucket = await aclBucket(alice.s3);
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'public', Body: 'hello', ACL: 'public-read' }));
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'private', Body: 'secret' }));

  const get = await anon.send('GET', `/${bucket}/public`);
  t.is(get.status, 200);
  t.is(get.text, 'hello');
  t.is((await anon.send('HEAD', `/${bucket}/public`)).status, 200);
  expectS3Error(t, await anon.send('GET', `/${bucket}/private`), 403, 'AccessDenied');
  expectS3Error(t, await anon.send('GET', `/${bucket}/missing`), 403, 'AccessDenied', 'a missing key is not revealed to whoever may not list');
  expectS3Error(t, await anon.send('GET', `/${bucket}`), 403, 'AccessDenied', 'listing needs READ on the bucket');
  expectS3Error(t, await anon.send('GET', '/'), 403, 'AccessDenied', 'ListBuckets');
  expectS3Error(t, await anon.send('PUT', `/${name('anon')}`), 403, 'AccessDenied', 'CreateBucket');
  expectS3Error(t, await anon.send('PUT', `/${bucket}/new`, {}, 'x'), 403, 'AccessDenied', 'PUT without WRITE');
  expectS3Error(t, await anon.send('DELETE', `/${bucket}/public`), 403, 'AccessDenied', 'DELETE without WRITE');
  expectS3Error(t, await anon.send('GET', `/${bucket}/public?acl`), 403, 'AccessDenied', 'READ does not grant READ_ACP');
  expectS3Error(t, await anon.send('GET', `/${bucket}?tagging`), 403, 'AccessDenied', 'owner-only operations');

  await alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read' }));
  const listing = await anon.send('GET', `/${bucket}?list-type=2`);
  t.is(listing.status, 200);
  t.regex(listing.text, /<Key>public<\/Key>/);
  t.regex(listing.text, /<Key>private<\/Key>/);
  expectS3Error(t, await anon.send('GET', `/${bucket}/missing`), 404, 'NoSuchKey', 'whoever may list learns a key is missing');
  expectS3Error(t, await anon.send('GET', `/${bucket}/private`), 403, 'AccessDenied', 'listing grants no object READ');
  expectS3Error(t, await anon.send('PUT', `/${bucket}/new`, {}, 'x'), 403, 'AccessDenied');

  await alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read-write' }));
  t.is((await anon.send('PUT', `/${bucket}/dropbox`, { 'content-type': 'text/plain' }, 'from anyone')).status, 200);
  const dropped = await alice.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dropbox' }));
  t.is(await dropped.Body?.transformToString(), 'from anyone');
  t.is((await alice.s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: 'dropbox' }))).Owner?.ID, alice.id, 'an anonymous write belongs to the bucket owner');
  t.is((await anon.send('DELETE', `/${bucket}/dropbox`)).status, 204);
  expectS3Error(t, await anon.send('PUT', `/${bucket}/signed-stream`, { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': '1' }, 'x'), 403, 'AccessDenied');
  expectS3Error(t, await anon.send('GET', `/${name('nobucket')}/k`), 404, 'NoSuchBucket');

  // Replacing an object resets its ACL; a copy does not take its source's ACL.
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'public', Body: 'replaced' }));
  expectS3Error(t, await anon.send('GET', `/${bucket}/public`), 403, 'AccessDenied', 'an overwrite is private again');
  await alice.s3.send(new PutObjectAclCommand({ Bucket: bucket, Key: 'public', ACL: 'public-read' }));
  await alice.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy', CopySource: `${bucket}/public` }));
  expectS3Error(t, await anon.send('GET', `/${bucket}/copy`), 403, 'AccessDenied', 'the copy is private');
  await alice.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy-public', CopySource: `${bucket}/public`, ACL: 'public-read' }));
  t.is((await anon.send('GET', `/${bucket}/copy-public`)).text, 'replaced');

  // A multipart upload's ACL is the completed object's.
  const upload = await alice.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'mp', ACL: 'public-read' }));
  const part = await alice.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'mp', UploadId: upload.UploadId, PartNumber: 1, Body: 'multi' }));
  expectS3Error(t, await anon.send('GET', `/${bucket}/mp`), 404, 'NoSuchKey', 'not there before completion');
  await alice.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'mp', UploadId: upload.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
  t.is((await anon.send('GET', `/${bucket}/mp`)).text, 'multi');
});

test.serial('a second key is another owner: it sees only its buckets, cannot use alice\'s without grants, and gets BucketAlreadyExists for her names', async (t) => {
  const { alice, bob, root } = t.context;
  const bucket = await aclBucket(alice.s3);
  const bobs = name('bobs');
  await bob.s3.send(new CreateBucketCommand({ Bucket: bobs }));
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));

  const listedByBob = (await bob.s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name) ?? [];
  t.true(listedByBob.includes(bobs));
  t.false(listedByBob.includes(bucket));
  const listedByRoot = (await root.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name) ?? [];
  t.true(listedByRoot.includes(bobs) && listedByRoot.includes(bucket), 'the root key lists every bucket');

  for (const [what, request] of [
    ['ListObjectsV2', bob.s3.send(new ListObjectsV2Command({ Bucket: bucket }))],
    ['GetObject', bob.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))],
    ['PutObject', bob.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'bob', Body: 'x' }))],
    ['GetBucketAcl', bob.s3.send(new GetBucketAclCommand({ Bucket: bucket }))],
    ['PutBucketAcl', bob.s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read-write' }))],
  ] as const) {
    t.deepEqual(await s3ErrorOf(request), { name: 'AccessDenied', status: 403 }, what);
  }
  t.deepEqual(await s3ErrorOf(bob.s3.send(new CreateBucketCommand({ Bucket: bucket }))), { name: 'BucketAlreadyExists', status: 409 });
  await alice.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  t.is(await (await root.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body?.transformToString(), 'x', 'alice\'s re-create kept her objects; root reads anything');

  // A READ grant to bob lets him list, and nothing more.
  await alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, GrantRead: `id="${bob.id}"`, GrantFullControl: `id="${alice.id}"` }));
  t.is((await bob.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount, 1);
  t.deepEqual(await s3ErrorOf(bob.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))), { name: 'AccessDenied', status: 403 });
  t.deepEqual(await s3ErrorOf(bob.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'bob', Body: 'x' }))), { name: 'AccessDenied', status: 403 });
});

test.serial('ACLs survive a restart', async (t) => {
  const { alice } = t.context;
  const bucket = await aclBucket(alice.s3);
  await alice.s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: 'public-read' }));
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'kept', ACL: 'public-read' }));
  await t.context.server.stop();
  // The after hook removes the data directory; this test stops the server it starts.
  const server = await start(t.context.server.dataDir);
  const anon = new RawS3(server.url);
  try {
    t.is((await anon.send('GET', `/${bucket}/k`)).text, 'kept');
    t.is((await anon.send('GET', `/${bucket}`)).status, 200);
    const root = s3Client(server);
    t.deepEqual(grantsOf((await root.send(new GetBucketAclCommand({ Bucket: bucket }))).Grants), [`CanonicalUser:${alice.id}:FULL_CONTROL`, `Group:${ALL_USERS}:READ`]);
  } finally {
    await anon.close();
    await server.stop();
  }
});
