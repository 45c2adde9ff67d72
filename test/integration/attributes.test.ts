/**
 * Goal: GetObjectAttributes answers ETag, Checksum, ObjectParts (paged), StorageClass and
 * ObjectSize for single-part and multipart objects, as AWS does.
 * Method: one real server process, @aws-sdk/client-s3 at default settings.
 */
import { randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAttributesCommand,
  PutObjectCommand,
  type S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { removeDir, s3Client, startServer, type TestServer } from '../helpers/server.ts';

const test = anyTest as TestFn<{ server: TestServer; s3: S3Client; bucket: string }>;
const MiB = 1024 * 1024;

test.before(async (t) => {
  const server = await startServer();
  const s3 = s3Client(server);
  const bucket = `attr-${process.pid}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  t.context = { server, s3, bucket };
});

test.after.always(async (t) => {
  if (!t.context.server) return;
  await t.context.server.stop();
  await removeDir(t.context.server.dataDir);
});

test('single-part object: ETag (unquoted), checksum, size, storage class; no parts', async (t) => {
  const { s3, bucket } = t.context;
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'single', Body: 'hello attributes', ChecksumAlgorithm: 'CRC32' }));
  const attrs = await s3.send(
    new GetObjectAttributesCommand({ Bucket: bucket, Key: 'single', ObjectAttributes: ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'] }),
  );
  t.is(attrs.ETag, put.ETag!.replaceAll('"', ''));
  t.is(attrs.Checksum?.ChecksumCRC32, put.ChecksumCRC32);
  t.is(attrs.ObjectSize, 'hello attributes'.length);
  t.is(attrs.StorageClass, 'STANDARD');
  t.is(attrs.ObjectParts, undefined);
  t.truthy(attrs.LastModified);
  const only = await s3.send(new GetObjectAttributesCommand({ Bucket: bucket, Key: 'single', ObjectAttributes: ['ObjectSize'] }));
  t.is(only.ETag, undefined);
  t.is(only.ObjectSize, 16);
});

test('multipart object: parts listed with sizes and checksums, paged by part-number-marker', async (t) => {
  const { s3, bucket } = t.context;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'multi', ChecksumAlgorithm: 'CRC32' }));
  const sizes = [5 * MiB, 5 * MiB, 100];
  const parts = [];
  for (const [i, size] of sizes.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'multi', UploadId, PartNumber: i + 1, Body: randomBytes(size), ChecksumAlgorithm: 'CRC32' }));
    parts.push({ ETag: r.ETag, PartNumber: i + 1, ChecksumCRC32: r.ChecksumCRC32 });
  }
  const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'multi', UploadId, MultipartUpload: { Parts: parts } }));
  const attrs = await s3.send(new GetObjectAttributesCommand({ Bucket: bucket, Key: 'multi', ObjectAttributes: ['ETag', 'ObjectParts', 'Checksum', 'ObjectSize'], MaxParts: 2 }));
  t.is(attrs.ETag, done.ETag!.replaceAll('"', ''));
  t.is(attrs.ObjectSize, 10 * MiB + 100);
  t.is(attrs.Checksum?.ChecksumType, 'COMPOSITE');
  t.is(attrs.ObjectParts?.TotalPartsCount, 3);
  t.true(attrs.ObjectParts?.IsTruncated);
  t.deepEqual(attrs.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size, p.ChecksumCRC32]), [
    [1, 5 * MiB, parts[0]!.ChecksumCRC32],
    [2, 5 * MiB, parts[1]!.ChecksumCRC32],
  ]);
  const next = await s3.send(
    new GetObjectAttributesCommand({ Bucket: bucket, Key: 'multi', ObjectAttributes: ['ObjectParts'], PartNumberMarker: attrs.ObjectParts?.NextPartNumberMarker }),
  );
  t.deepEqual(next.ObjectParts?.Parts?.map((p) => [p.PartNumber, p.Size]), [[3, 100]]);
  t.false(next.ObjectParts?.IsTruncated);
});

test('errors: missing key NoSuchKey, unknown attribute InvalidArgument', async (t) => {
  const { s3, bucket } = t.context;
  const err = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      if (e instanceof S3ServiceException) return e.name;
      throw e;
    }
    return 'no error';
  };
  t.is(await err(s3.send(new GetObjectAttributesCommand({ Bucket: bucket, Key: 'nope', ObjectAttributes: ['ETag'] }))), 'NoSuchKey');
  // biome-ignore lint/suspicious/noExplicitAny: sending a name the SDK's type does not know, on purpose
  t.is(await err(s3.send(new GetObjectAttributesCommand({ Bucket: bucket, Key: 'nope', ObjectAttributes: ['Bogus' as any] }))), 'InvalidArgument');
});
