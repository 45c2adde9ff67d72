/**
 * Goal: object and bucket tagging behave as AWS's: Put/Get/DeleteObjectTagging, x-amz-tagging on
 * PUT, CopyObject's x-amz-tagging-directive, tags of a multipart upload, x-amz-tagging-count,
 * bucket tagging with NoSuchTagSet, and AWS's limits answered with InvalidTag.
 * Method: one real server process, @aws-sdk/client-s3 at default settings.
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteBucketTaggingCommand,
  DeleteObjectTaggingCommand,
  GetBucketTaggingCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutBucketTaggingCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { createTestBucket, removeDir, s3Client, s3ErrorOf, startServer, type TestServer } from '../helpers/server.ts';

const test = anyTest as TestFn<{ server: TestServer; s3: S3Client }>;

test.before(async (t) => {
  const server = await startServer();
  t.context = { server, s3: s3Client(server) };
});

test.after.always(async (t) => {
  if (!t.context.server) return;
  await t.context.server.stop();
  await removeDir(t.context.server.dataDir);
});

test('object tagging: put, get, count on HEAD, replace, delete; the object is unchanged', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'tag');
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'data', Tagging: 'a=1&b=two%20words' }));
  t.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'k' }))).TagSet, [
    { Key: 'a', Value: '1' },
    { Key: 'b', Value: 'two words' },
  ]);
  t.is((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))).TagCount, 2);
  await s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 'k', Tagging: { TagSet: [{ Key: 'only', Value: 'one' }] } }));
  t.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'k' }))).TagSet, [{ Key: 'only', Value: 'one' }]);
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
  t.is(got.TagCount, 1);
  t.is(got.ETag, put.ETag);
  t.is(await got.Body!.transformToString(), 'data');
  await s3.send(new DeleteObjectTaggingCommand({ Bucket: bucket, Key: 'k' }));
  t.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'k' }))).TagSet ?? [], []);
  t.is((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))).TagCount, undefined);
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'missing' }))), { name: 'NoSuchKey', status: 404 });
  t.deepEqual(
    await s3ErrorOf(s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 'missing', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } }))),
    { name: 'NoSuchKey', status: 404 },
  );
});

test('tag limits: more than 10, long key/value, duplicate key, aws: prefix → InvalidTag', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'tag');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
  const tagging = (TagSet: { Key: string; Value: string }[]) => s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: 'k', Tagging: { TagSet } }));
  const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
  t.deepEqual(await s3ErrorOf(tagging(eleven)), { name: 'InvalidTag', status: 400 });
  t.deepEqual(await s3ErrorOf(tagging([{ Key: 'k'.repeat(129), Value: 'v' }])), { name: 'InvalidTag', status: 400 });
  t.deepEqual(await s3ErrorOf(tagging([{ Key: 'k', Value: 'v'.repeat(257) }])), { name: 'InvalidTag', status: 400 });
  t.deepEqual(await s3ErrorOf(tagging([{ Key: 'k', Value: '1' }, { Key: 'k', Value: '2' }])), { name: 'InvalidTag', status: 400 });
  t.deepEqual(await s3ErrorOf(tagging([{ Key: 'aws:reserved', Value: '1' }])), { name: 'InvalidTag', status: 400 });
  await tagging(Array.from({ length: 10 }, (_, i) => ({ Key: `${'k'.repeat(120)}${i}`, Value: 'v'.repeat(256) })));
  t.is((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'k' }))).TagSet?.length, 10);
  t.deepEqual(await s3ErrorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k2', Body: 'x', Tagging: eleven.map((e) => `${e.Key}=v`).join('&') }))), {
    name: 'InvalidTag',
    status: 400,
  });
});

test('CopyObject copies tags by default and replaces them with x-amz-tagging-directive REPLACE', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'tag');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: 'x', Tagging: 'a=1' }));
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy', CopySource: `${bucket}/src` }));
  t.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'copy' }))).TagSet, [{ Key: 'a', Value: '1' }]);
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy2', CopySource: `${bucket}/src`, TaggingDirective: 'REPLACE', Tagging: 'b=2' }));
  t.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'copy2' }))).TagSet, [{ Key: 'b', Value: '2' }]);
  await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy3', CopySource: `${bucket}/src`, TaggingDirective: 'REPLACE' }));
  t.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'copy3' }))).TagSet ?? [], []);
});

test('tags given to CreateMultipartUpload land on the completed object', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'tag');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k', Tagging: 'mp=yes' }));
  const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 1, Body: 'part' }));
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: [{ ETag: r.ETag, PartNumber: 1 }] } }));
  t.deepEqual((await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'k' }))).TagSet, [{ Key: 'mp', Value: 'yes' }]);
});

test('bucket tagging: NoSuchTagSet until put; put, get, delete', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'tag');
  t.deepEqual(await s3ErrorOf(s3.send(new GetBucketTaggingCommand({ Bucket: bucket }))), { name: 'NoSuchTagSet', status: 404 });
  await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: 'team', Value: 'storage' }, { Key: 'env', Value: 'test' }] } }));
  t.deepEqual((await s3.send(new GetBucketTaggingCommand({ Bucket: bucket }))).TagSet, [
    { Key: 'team', Value: 'storage' },
    { Key: 'env', Value: 'test' },
  ]);
  await s3.send(new DeleteBucketTaggingCommand({ Bucket: bucket }));
  t.deepEqual(await s3ErrorOf(s3.send(new GetBucketTaggingCommand({ Bucket: bucket }))), { name: 'NoSuchTagSet', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new GetBucketTaggingCommand({ Bucket: 'no-such-bucket-tag' }))), { name: 'NoSuchBucket', status: 404 });
  t.deepEqual(
    await s3ErrorOf(s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: 'a', Value: '1' }, { Key: 'a', Value: '2' }] } }))),
    { name: 'InvalidTag', status: 400 },
  );
});
