/**
 * Goal: bucket policies (issue #18): Put/Get/DeleteBucketPolicy keep the document verbatim and
 * refuse what is not a policy (MalformedPolicy) or not evaluated (Condition: 501); Allow grants
 * anonymous and other keys what ACLs do not (also under BucketOwnerEnforced, where ACLs are off);
 * an explicit Deny beats every Allow, from ACLs and policies alike, and binds the bucket owner
 * too, except over the policy itself. Method: one real server; alice and bob are ordinary keys
 * from the admin API with their own AWS SDK v3 clients; anonymous requests are unsigned HTTP.
 */
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketPolicyCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketAclCommand,
  GetBucketPolicyCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  type S3Client,
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
  alice: Key;
  bob: Key;
  anon: RawS3;
}
const test = anyTest as TestFn<Ctx>;
let seq = 0;
const name = (p: string) => `${p}-${process.pid}-${++seq}`;
const denied = { name: 'AccessDenied', status: 403 };

async function newKey(server: TestServer): Promise<Key> {
  const raw = new RawS3(server.url);
  try {
    const res = await raw.signed('POST', '/_ts3gw/admin/keys');
    if (res.status !== 201) throw new Error(`create key: ${res.status} ${res.text}`);
    const key = JSON.parse(res.text) as { accessKeyId: string; secretAccessKey: string };
    return { id: key.accessKeyId, s3: s3Client(server, { credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey } }) };
  } finally {
    await raw.close();
  }
}

test.before(async (t) => {
  const server = await startServer();
  try {
    t.context = { server, alice: await newKey(server), bob: await newKey(server), anon: new RawS3(server.url) };
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

const policyOf = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

async function bucketOf(s3: S3Client, ownership?: 'ObjectWriter'): Promise<string> {
  const bucket = name('pol');
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ...(ownership ? { ObjectOwnership: ownership } : {}) }));
  return bucket;
}

test('Put/Get/DeleteBucketPolicy keep the document; malformed, foreign and unevaluated policies are refused and change nothing', async (t) => {
  const { alice, bob } = t.context;
  const bucket = await bucketOf(alice.s3);
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))), { name: 'NoSuchBucketPolicy', status: 404 });
  const doc = policyOf({ Sid: 'read', Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*` });
  await alice.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: doc }));
  t.is((await alice.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).Policy, doc);

  const refused: Array<[string, string, string]> = [
    ['{not json', 'MalformedPolicy', 'invalid JSON'],
    [policyOf({ Effect: 'Maybe', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*` }), 'MalformedPolicy', 'bad Effect'],
    [policyOf({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::someone-elses/*' }), 'MalformedPolicy', 'another bucket'],
    [policyOf({ Effect: 'Allow', Principal: '*', Action: 'ec2:RunInstances', Resource: `arn:aws:s3:::${bucket}/*` }), 'MalformedPolicy', 'not an S3 action'],
    [policyOf({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/*`, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } }), 'NotImplemented', 'Condition'],
  ];
  for (const [text, code, what] of refused) {
    const err = await s3ErrorOf(alice.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: text })));
    t.is(err.name, code, what);
  }
  t.deepEqual(await s3ErrorOf(bob.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: doc.replace('Allow', 'Deny') }))), denied, 'only the owner');
  t.deepEqual(await s3ErrorOf(bob.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))), denied);
  t.is((await alice.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).Policy, doc, 'no refused PUT changed it');
  await alice.s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))), { name: 'NoSuchBucketPolicy', status: 404 });
});

test('Allow grants anonymous reads of a prefix and another key writes, in a BucketOwnerEnforced bucket where ACLs cannot', async (t) => {
  const { alice, bob, anon } = t.context;
  const bucket = await bucketOf(alice.s3);
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'public/a.txt', Body: 'open' }));
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'private/b.txt', Body: 'closed' }));
  expectS3Error(t, await anon.send('GET', `/${bucket}/public/a.txt`), 403, 'AccessDenied', 'before the policy');
  await alice.s3.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: policyOf(
        { Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/public/*` },
        { Effect: 'Allow', Principal: { AWS: [`arn:aws:iam::${bob.id}:root`] }, Action: ['s3:PutObject', 's3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/inbox/*`] },
      ),
    }),
  );
  t.is((await anon.send('GET', `/${bucket}/public/a.txt`)).text, 'open');
  expectS3Error(t, await anon.send('GET', `/${bucket}/private/b.txt`), 403, 'AccessDenied');
  expectS3Error(t, await anon.send('GET', `/${bucket}`), 403, 'AccessDenied', 'anonymous may not list');
  expectS3Error(t, await anon.send('PUT', `/${bucket}/public/new`, {}, 'x'), 403, 'AccessDenied');

  await bob.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'inbox/from-bob', Body: 'hi' }));
  t.is((await bob.s3.send(new ListObjectsV2Command({ Bucket: bucket }))).KeyCount, 3);
  t.deepEqual(await s3ErrorOf(bob.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'elsewhere', Body: 'x' }))), denied, 'only inbox/*');
  t.deepEqual(await s3ErrorOf(bob.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'private/b.txt' }))), denied);
  // Under BucketOwnerEnforced the bucket owner owns what bob wrote.
  t.is(await (await alice.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'inbox/from-bob' }))).Body?.transformToString(), 'hi');
});

test('an explicit Deny beats ACL and policy Allows, binds the owner too, and never locks the owner out of the policy', async (t) => {
  const { alice, bob, anon } = t.context;
  const bucket = await bucketOf(alice.s3, 'ObjectWriter');
  for (const key of ['secret/x', 'open/y']) await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key, ACL: 'public-read' }));
  t.is((await anon.send('GET', `/${bucket}/secret/x`)).text, 'secret/x', 'the ACL allows it');
  await alice.s3.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: policyOf(
        { Effect: 'Allow', Principal: '*', Action: 's3:Get*', Resource: `arn:aws:s3:::${bucket}/*` },
        { Effect: 'Deny', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/secret/*` },
        { Effect: 'Deny', Principal: { AWS: alice.id }, Action: 's3:DeleteObject', Resource: `arn:aws:s3:::${bucket}/*` },
      ),
    }),
  );
  expectS3Error(t, await anon.send('GET', `/${bucket}/secret/x`), 403, 'AccessDenied', 'Deny beats the public-read ACL and the Allow');
  t.is((await anon.send('GET', `/${bucket}/open/y`)).text, 'open/y');
  t.deepEqual(await s3ErrorOf(bob.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'secret/x' }))), denied);
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'secret/x' }))), denied, 'the owner too');
  t.deepEqual(await s3ErrorOf(alice.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'open/y' }))), denied);
  t.is((await anon.send('GET', `/${bucket}/open/y`)).text, 'open/y', 'the refused delete deleted nothing');
  // DeleteObjects is judged key by key: a Deny on secret/* refuses those keys only.
  await alice.s3.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: policyOf({ Effect: 'Deny', Principal: '*', Action: 's3:DeleteObject', Resource: `arn:aws:s3:::${bucket}/secret/*` }),
    }),
  );
  await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'open/z', Body: 'z', ACL: 'public-read' }));
  const multi = await alice.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: 'secret/x' }, { Key: 'open/z' }] } }));
  t.deepEqual(multi.Deleted?.map((d) => d.Key), ['open/z']);
  t.deepEqual(multi.Errors?.map((e) => [e.Key, e.Code]), [['secret/x', 'AccessDenied']]);
  t.is((await anon.send('GET', `/${bucket}/secret/x`)).text, 'secret/x', 'the refused key is still there (public-read, and GET is no longer denied)');
  // The owner can always read and remove the policy that binds it.
  t.truthy((await alice.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).Policy);
  await alice.s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
  await alice.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'open/y' }));
  t.is((await anon.send('GET', `/${bucket}/secret/x`)).text, 'secret/x', 'without the policy the ACL counts again');
});

test('an Allow of s3:* to "*" gives nobody but the owner the policy, and anonymous callers no owner operation or ACL change', async (t) => {
  const { server, alice, bob, anon } = t.context;
  const bucket = await bucketOf(alice.s3, 'ObjectWriter');
  const wide = policyOf({ Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: [`arn:aws:s3:::${bucket}`, `arn:aws:s3:::${bucket}/*`] });
  await alice.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: wide }));
  const hostile = policyOf({ Effect: 'Deny', Principal: '*', Action: 's3:*', Resource: `arn:aws:s3:::${bucket}/*` });
  const ownership = '<OwnershipControls xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>';
  expectS3Error(t, await anon.send('PUT', `/${bucket}?policy`, {}, hostile), 403, 'AccessDenied', 'anonymous PutBucketPolicy');
  expectS3Error(t, await anon.send('GET', `/${bucket}?policy`), 403, 'AccessDenied', 'anonymous GetBucketPolicy');
  expectS3Error(t, await anon.send('DELETE', `/${bucket}?policy`), 403, 'AccessDenied', 'anonymous DeleteBucketPolicy');
  expectS3Error(t, await anon.send('PUT', `/${bucket}?acl`, { 'x-amz-acl': 'public-read-write' }), 403, 'AccessDenied', 'anonymous PutBucketAcl');
  expectS3Error(t, await anon.send('PUT', `/${bucket}?ownershipControls`, {}, ownership), 403, 'AccessDenied', 'anonymous PutBucketOwnershipControls');
  expectS3Error(t, await anon.send('DELETE', `/${bucket}`), 403, 'AccessDenied', 'anonymous DeleteBucket');
  // Another key gets what the Allow says, except the policy itself.
  t.deepEqual(await s3ErrorOf(bob.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: hostile }))), denied, 'bob PutBucketPolicy');
  t.deepEqual(await s3ErrorOf(bob.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))), denied, 'bob GetBucketPolicy');
  t.deepEqual(await s3ErrorOf(bob.s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }))), denied, 'bob DeleteBucketPolicy');
  // A key scoped to write on the bucket stays within its scope.
  const scoped = await newKey(server);
  const admin = new RawS3(server.url);
  try {
    const allowed = await admin.signed('PUT', '/_ts3gw/admin/keys', { query: `bucket=${bucket}&id=${scoped.id}&permission=write` });
    t.is(allowed.status, 200, allowed.text);
  } finally {
    await admin.close();
  }
  t.deepEqual(await s3ErrorOf(scoped.s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: hostile }))), denied, 'scoped PutBucketPolicy');
  await scoped.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'from-scoped', Body: 'w' }));
  // Nothing changed: the owner still reads its own policy, the bucket and its ACL are as they were.
  t.is((await alice.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).Policy, wide);
  t.is((await anon.send('GET', `/${bucket}/from-scoped`)).text, 'w', 'the Allow still grants anonymous reads');
  t.is((await anon.send('GET', `/${bucket}?ownershipControls`)).status, 403);
  const acl = await alice.s3.send(new GetBucketAclCommand({ Bucket: bucket }));
  t.deepEqual(acl.Grants?.map((g) => g.Permission), ['FULL_CONTROL'], 'the bucket ACL is still private');
});

test('DeleteObjects decides each key as its own DeleteObject: an Allow covers exactly its keys, the others are AccessDenied entries and stay', async (t) => {
  const { alice, bob, anon } = t.context;
  const bucket = await bucketOf(alice.s3, 'ObjectWriter');
  const keys = ['x', 'long-key', 'tmp/a', 'tmp/b', 'keep/c'];
  for (const key of keys) await alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key, ACL: 'public-read' }));
  await alice.s3.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: policyOf({ Effect: 'Allow', Principal: { AWS: bob.id }, Action: 's3:DeleteObject', Resource: [`arn:aws:s3:::${bucket}/?`, `arn:aws:s3:::${bucket}/tmp/*`] }),
    }),
  );
  const batch = await bob.s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
  t.deepEqual(batch.Deleted?.map((d) => d.Key).sort(), ['tmp/a', 'tmp/b', 'x'], 'the one-character key and tmp/*');
  t.deepEqual(batch.Errors?.map((e) => [e.Key, e.Code]).sort(), [['keep/c', 'AccessDenied'], ['long-key', 'AccessDenied']]);
  for (const key of ['long-key', 'keep/c']) t.is((await anon.send('GET', `/${bucket}/${key}`)).text, key, `${key} is still there`);
  for (const key of ['x', 'tmp/a']) t.is((await alice.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: key }))).KeyCount, 0, `${key} is gone`);
  // Anonymous callers have no Allow and no ACL WRITE: every key is refused, nothing is deleted.
  const body = '<Delete><Object><Key>keep/c</Key></Object></Delete>';
  const md5 = createHash('md5').update(body).digest('base64');
  const res = await anon.send('POST', `/${bucket}?delete`, { 'content-md5': md5 }, body);
  t.is(res.status, 200, res.text);
  t.regex(res.text, /<Error><Key>keep\/c<\/Key><Code>AccessDenied<\/Code>/);
  t.is((await anon.send('GET', `/${bucket}/keep/c`)).text, 'keep/c');
});

test('a Deny of s3:PutObjectAcl refuses writes that name an ACL, and only those', async (t) => {
  const { alice, bob, anon } = t.context;
  const bucket = await bucketOf(alice.s3, 'ObjectWriter');
  await alice.s3.send(
    new PutBucketPolicyCommand({
      Bucket: bucket,
      Policy: policyOf(
        { Effect: 'Allow', Principal: { AWS: bob.id }, Action: 's3:PutObject', Resource: `arn:aws:s3:::${bucket}/*` },
        { Effect: 'Deny', Principal: '*', Action: 's3:PutObjectAcl', Resource: `arn:aws:s3:::${bucket}/*` },
      ),
    }),
  );
  t.deepEqual(await s3ErrorOf(bob.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'public', Body: 'x', ACL: 'public-read' }))), denied);
  t.deepEqual(await s3ErrorOf(alice.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'public', Body: 'x', ACL: 'public-read' }))), denied, 'the owner too');
  expectS3Error(t, await anon.send('GET', `/${bucket}/public`), 403, 'AccessDenied', 'nothing was written');
  t.deepEqual(await s3ErrorOf(alice.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'public' }))), { name: 'NoSuchKey', status: 404 });
  await bob.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain', Body: 'y' }));
  t.is(await (await bob.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'plain' }))).Body?.transformToString(), 'y');
});
