/**
 * Goal: the core S3 operations work for the latest @aws-sdk/client-s3 at its default settings
 * (which sends CRC32 checksums in aws-chunked trailers), against a real server process.
 * Method: one server per file; each test uses its own bucket; assertions compare bytes and the
 * exact AWS error codes.
 */
import { createHash } from 'node:crypto';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { createTestBucket, removeDir, s3Client, s3ErrorOf, startServer, TEST_ACCESS_KEY, type TestServer } from '../helpers/server.ts';

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

const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

test('buckets: create, list, head, location, delete; duplicate create succeeds in us-east-1', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const listed = await s3.send(new ListBucketsCommand({}));
  t.true(listed.Buckets?.some((b) => b.Name === bucket));
  await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  const loc = await s3.send(new GetBucketLocationCommand({ Bucket: bucket }));
  t.falsy(loc.LocationConstraint, 'us-east-1 is reported as an empty location');
  // us-east-1: re-creating one's own bucket is 200 (see the test on regions below).
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  t.deepEqual(await s3ErrorOf(s3.send(new HeadBucketCommand({ Bucket: bucket }))), { name: 'NotFound', status: 404 });
});

test('bucket names are validated and a non-empty bucket cannot be deleted', async (t) => {
  const { s3 } = t.context;
  for (const name of ['ab', 'Upper-Case', 'a..b', '192.168.1.1', '-dash', 'xn--punycode']) {
    t.is((await s3ErrorOf(s3.send(new CreateBucketCommand({ Bucket: name })))).name, 'InvalidBucketName', name);
  }
  const bucket = await createTestBucket(s3, 'sdk-core');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
  t.deepEqual(await s3ErrorOf(s3.send(new DeleteBucketCommand({ Bucket: bucket }))), { name: 'BucketNotEmpty', status: 409 });
});

test('put/get round-trips bytes, metadata and system headers; ETag is the MD5', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const body = 'hello, world';
  const put = await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: 'dir/hello.txt',
      Body: body,
      ContentType: 'text/plain; charset=utf-8',
      ContentEncoding: 'identity',
      ContentDisposition: 'attachment; filename="h.txt"',
      ContentLanguage: 'en',
      CacheControl: 'max-age=60',
      Expires: new Date('2030-01-01T00:00:00Z'),
      Metadata: { color: 'blue', 'with-dash': 'yes' },
    }),
  );
  t.is(put.ETag, `"${md5(body)}"`);
  t.truthy(put.ChecksumCRC32, 'the SDK default CRC32 checksum is echoed');
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/hello.txt' }));
  t.is(await got.Body!.transformToString(), body);
  t.is(got.ETag, `"${md5(body)}"`);
  t.is(got.ContentType, 'text/plain; charset=utf-8');
  t.is(got.ContentEncoding, 'identity');
  t.is(got.ContentDisposition, 'attachment; filename="h.txt"');
  t.is(got.ContentLanguage, 'en');
  t.is(got.CacheControl, 'max-age=60');
  t.is(got.ExpiresString, 'Tue, 01 Jan 2030 00:00:00 GMT');
  t.deepEqual(got.Metadata, { color: 'blue', 'with-dash': 'yes' });
  t.is(got.ContentLength, body.length);
});

test('multi-chunk objects (12 MiB, chunk size 4 MiB) round-trip with ranges', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const body = Buffer.alloc(12 * 1024 * 1024 + 12345);
  for (let i = 0; i + 4 <= body.length; i += 4) body.writeUInt32LE(i, i);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'big', Body: body }));
  const whole = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big' }))).Body!.transformToByteArray());
  t.true(whole.equals(body));
  const cases: [string, number, number][] = [
    ['bytes=0-0', 0, 0],
    ['bytes=4194300-4194310', 4194300, 4194310],
    ['bytes=10000000-', 10000000, body.length - 1],
    ['bytes=-5', body.length - 5, body.length - 1],
    ['bytes=5-99999999999', 5, body.length - 1],
  ];
  for (const [range, start, end] of cases) {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big', Range: range }));
    const bytes = Buffer.from(await r.Body!.transformToByteArray());
    t.true(bytes.equals(body.subarray(start, end + 1)), range);
    t.is(r.ContentRange, `bytes ${start}-${end}/${body.length}`, range);
  }
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big', Range: `bytes=${body.length}-` }))), {
    name: 'InvalidRange',
    status: 416,
  });
});

test('response-* overrides and checksum mode on HEAD', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'abc', ChecksumAlgorithm: 'SHA256' }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k', ChecksumMode: 'ENABLED' }));
  t.is(head.ChecksumSHA256, createHash('sha256').update('abc').digest('base64'));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', ResponseContentType: 'x/y', ResponseContentDisposition: 'inline' }));
  t.is(got.ContentType, 'x/y');
  t.is(got.ContentDisposition, 'inline');
  await got.Body!.transformToString();
});

test('missing keys and buckets give NoSuchKey / NoSuchBucket', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'nope' }))), { name: 'NoSuchKey', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: 'no-such-bucket-here', Key: 'k' }))), { name: 'NoSuchBucket', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new PutObjectCommand({ Bucket: 'no-such-bucket-here', Key: 'k', Body: 'x' }))), {
    name: 'NoSuchBucket',
    status: 404,
  });
  // Deleting a missing key succeeds, as in S3.
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'nope' }));
  t.pass();
});

test('delete, and DeleteObjects with Quiet and per-key errors', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  for (const k of ['a', 'b', 'c']) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'a' }));
  const tooLong = 'x'.repeat(1025);
  const res = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: 'b' }, { Key: 'missing' }, { Key: tooLong }] } }));
  t.deepEqual(res.Deleted?.map((d) => d.Key).sort(), ['b', 'missing']);
  t.deepEqual(res.Errors?.map((e) => [e.Key, e.Code]), [[tooLong, 'KeyTooLongError']]);
  const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Quiet: true, Objects: [{ Key: 'c' }] } }));
  t.is(quiet.Deleted, undefined);
  const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  t.is(list.KeyCount, 0);
});

test('copy: same and cross bucket, COPY and REPLACE directives, copy-source conditions', async (t) => {
  const { s3 } = t.context;
  const src = await createTestBucket(s3, 'sdk-core');
  const dst = await createTestBucket(s3, 'sdk-core');
  const put = await s3.send(new PutObjectCommand({ Bucket: src, Key: 'orig', Body: 'data!', ContentType: 'text/a', Metadata: { m: '1' } }));
  const copied = await s3.send(new CopyObjectCommand({ Bucket: dst, Key: 'copy', CopySource: `${src}/orig` }));
  t.is(copied.CopyObjectResult?.ETag, put.ETag);
  const got = await s3.send(new GetObjectCommand({ Bucket: dst, Key: 'copy' }));
  t.is(await got.Body!.transformToString(), 'data!');
  t.is(got.ContentType, 'text/a');
  t.deepEqual(got.Metadata, { m: '1' });

  await s3.send(new CopyObjectCommand({ Bucket: src, Key: 'orig', CopySource: `${src}/orig`, MetadataDirective: 'REPLACE', ContentType: 'text/b', Metadata: { m: '2' } }));
  const replaced = await s3.send(new HeadObjectCommand({ Bucket: src, Key: 'orig' }));
  t.is(replaced.ContentType, 'text/b');
  t.deepEqual(replaced.Metadata, { m: '2' });

  t.is((await s3ErrorOf(s3.send(new CopyObjectCommand({ Bucket: src, Key: 'orig', CopySource: `${src}/orig` })))).name, 'InvalidRequest');
  t.is((await s3ErrorOf(s3.send(new CopyObjectCommand({ Bucket: dst, Key: 'x', CopySource: `${src}/orig`, CopySourceIfMatch: '"nope"' })))).name, 'PreconditionFailed');
  t.is((await s3ErrorOf(s3.send(new CopyObjectCommand({ Bucket: dst, Key: 'x', CopySource: `${src}/orig`, CopySourceIfNoneMatch: put.ETag })))).name, 'PreconditionFailed');
  await s3.send(new CopyObjectCommand({ Bucket: dst, Key: 'y', CopySource: `${src}/orig`, CopySourceIfMatch: replaced.ETag }));
  t.is((await s3ErrorOf(s3.send(new CopyObjectCommand({ Bucket: dst, Key: 'x', CopySource: `${src}/missing` })))).name, 'NoSuchKey');
});

test('conditional GET/HEAD: 304 and 412 as AWS does', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'v' }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }));
  const past = new Date(head.LastModified!.getTime() - 60_000);
  const future = new Date(head.LastModified!.getTime() + 60_000);
  t.is((await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', IfNoneMatch: put.ETag })))).status, 304);
  t.is((await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', IfModifiedSince: future })))).status, 304);
  t.is((await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '"other"' })))).name, 'PreconditionFailed');
  t.is((await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', IfUnmodifiedSince: past })))).name, 'PreconditionFailed');
  t.is((await s3ErrorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: '"other"' })))).status, 412);
  // If-Match true wins over If-Unmodified-Since false; If-None-Match false wins over If-Modified-Since.
  const ok = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', IfMatch: put.ETag, IfUnmodifiedSince: past, IfModifiedSince: future, IfNoneMatch: '"x"' }));
  t.is(await ok.Body!.transformToString(), 'v');
});

test('conditional writes: If-None-Match: * and If-Match', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: '1', IfNoneMatch: '*' }));
  t.deepEqual(await s3ErrorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: '2', IfNoneMatch: '*' }))), {
    name: 'PreconditionFailed',
    status: 412,
  });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: '3', IfMatch: first.ETag }));
  t.is((await s3ErrorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: '4', IfMatch: first.ETag })))).name, 'PreconditionFailed');
  t.is((await s3ErrorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'absent', Body: '4', IfMatch: first.ETag })))).name, 'NoSuchKey');
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
  t.is(await got.Body!.transformToString(), '3');
});

test('listing v1 and v2: prefix, delimiter, pagination, start-after, fetch-owner, url encoding', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const keys = ['a/1', 'a/2', 'a/b/3', 'b', 'c/4', 'c d+e', 'é', 'z'];
  for (const k of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));

  const root = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: '/' }));
  t.deepEqual(root.Contents?.map((c) => c.Key), ['b', 'c d+e', 'z', 'é']);
  t.deepEqual(root.CommonPrefixes?.map((p) => p.Prefix), ['a/', 'c/']);
  t.is(root.KeyCount, 6);

  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 3, ContinuationToken: token, FetchOwner: true }));
    seen.push(...(page.Contents ?? []).map((c) => c.Key!));
    t.truthy(page.Contents?.[0]?.Owner?.ID);
    token = page.NextContinuationToken;
    pages++;
  } while (token);
  t.deepEqual(seen, [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  t.is(pages, 3);

  const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket, StartAfter: 'b', Prefix: '' }));
  t.deepEqual(after.Contents?.map((c) => c.Key), ['c d+e', 'c/4', 'z', 'é']);

  const v1: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectsCommand({ Bucket: bucket, Delimiter: '/', MaxKeys: 2, Marker: marker }));
    v1.push(...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!));
    if (!page.IsTruncated) break;
    marker = page.NextMarker;
  }
  t.deepEqual(v1.sort(), ['a/', 'b', 'c d+e', 'c/', 'z', 'é'].sort());

  const sub = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'a/', Delimiter: '/' }));
  t.deepEqual(sub.Contents?.map((c) => c.Key), ['a/1', 'a/2']);
  t.deepEqual(sub.CommonPrefixes?.map((p) => p.Prefix), ['a/b/']);

  const encoded = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'c', EncodingType: 'url' }));
  t.deepEqual(encoded.Contents?.map((c) => decodeURIComponent(c.Key!)), ['c d+e', 'c/4']);
});

test('max-keys=0 (and max-uploads=0, max-parts=0) answers an empty page that is not truncated; an empty continuation-token is InvalidArgument', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  for (const k of ['a', 'b']) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
  const v2 = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 0 }));
  t.deepEqual([v2.Contents, v2.IsTruncated, v2.KeyCount, v2.NextContinuationToken], [undefined, false, 0, undefined]);
  const v1 = await s3.send(new ListObjectsCommand({ Bucket: bucket, MaxKeys: 0 }));
  t.deepEqual([v1.Contents, v1.IsTruncated], [undefined, false]);
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'u' }));
  await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'u', UploadId, PartNumber: 1, Body: 'part' }));
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, MaxUploads: 0 }));
  t.deepEqual([uploads.Uploads, uploads.IsTruncated], [undefined, false]);
  const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'u', UploadId, MaxParts: 0 }));
  t.deepEqual([parts.Parts, parts.IsTruncated], [undefined, false]);
  t.deepEqual(await s3ErrorOf(s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: '' }))), { name: 'InvalidArgument', status: 400 });
  t.deepEqual(await s3ErrorOf(s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: 'not a token' }))), { name: 'InvalidArgument', status: 400 });
});

test('encoding-type=url encodes every key-bearing field of ListObjects, ListObjectsV2 and ListMultipartUploads (control characters, spaces)', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const p = 'e\x01 ';
  for (const k of [`${p}x/1`, `${p}x/2`, `${p}y`]) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: 'k' }));
  const enc = (s: string) => encodeURIComponent(s).replace(/%2F/g, '/');
  const v2 = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: p, Delimiter: '/', StartAfter: p, MaxKeys: 1, EncodingType: 'url' }));
  t.deepEqual([v2.Prefix, v2.StartAfter, v2.Delimiter, v2.EncodingType, v2.IsTruncated], [enc(p), enc(p), '/', 'url', true]);
  t.deepEqual(v2.CommonPrefixes?.map((c) => c.Prefix), [enc(`${p}x/`)]);
  t.is(enc(`${p}x/`), 'e%01%20x/');
  // Without encoding-type the control character travels as a numeric character reference.
  const plain = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: p }));
  t.deepEqual(plain.Contents?.map((c) => c.Key), [`${p}x/1`, `${p}x/2`, `${p}y`]);
  const v2next = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: p, Delimiter: '/', ContinuationToken: v2.NextContinuationToken, EncodingType: 'url' }));
  t.deepEqual(v2next.Contents?.map((c) => c.Key), [enc(`${p}y`)]);
  const v1 = await s3.send(new ListObjectsCommand({ Bucket: bucket, Prefix: p, Delimiter: '/', Marker: p, MaxKeys: 1, EncodingType: 'url' }));
  t.deepEqual([v1.Prefix, v1.Marker, v1.NextMarker, v1.Delimiter], [enc(p), enc(p), enc(`${p}x/`), '/']);
  const v1next = await s3.send(new ListObjectsCommand({ Bucket: bucket, Prefix: p, Delimiter: '/', Marker: `${p}x/`, EncodingType: 'url' }));
  t.deepEqual(v1next.Contents?.map((c) => c.Key), [enc(`${p}y`)]);
  for (const k of [`${p}u/1`, `${p}v`]) await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: k }));
  const up = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: p, Delimiter: '/', KeyMarker: p, MaxUploads: 1, EncodingType: 'url' }));
  t.deepEqual([up.Prefix, up.KeyMarker, up.Delimiter, up.IsTruncated, up.NextKeyMarker], [enc(p), enc(p), '/', true, enc(`${p}u/`)]);
  t.deepEqual(up.CommonPrefixes?.map((c) => c.Prefix), [enc(`${p}u/`)]);
  const upNext = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: p, Delimiter: '/', KeyMarker: `${p}u/`, EncodingType: 'url' }));
  t.deepEqual(upNext.Uploads?.map((u) => u.Key), [enc(`${p}v`)]);
});

test('ListBuckets pages: max-buckets, continuation-token, prefix and bucket-region', async (t) => {
  const { s3 } = t.context;
  const prefix = `lbp-${process.pid}-`;
  const names = [];
  for (let i = 0; i < 5; i++) names.push(await createTestBucket(s3, 'lbp'));
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await s3.send(new ListBucketsCommand({ Prefix: prefix, MaxBuckets: 2, ContinuationToken: token }));
    t.is(page.Prefix, prefix);
    t.true((page.Buckets?.length ?? 0) <= 2);
    seen.push(...(page.Buckets ?? []).map((b) => b.Name!));
    token = page.ContinuationToken;
    pages++;
  } while (token);
  t.deepEqual(seen, [...names].sort());
  t.is(pages, 3);
  const all = await s3.send(new ListBucketsCommand({ Prefix: prefix }));
  t.is(all.Buckets?.length, 5);
  t.is(all.ContinuationToken, undefined);
  t.is((await s3.send(new ListBucketsCommand({ Prefix: prefix, BucketRegion: 'us-east-1' }))).Buckets?.length, 5);
  t.is((await s3.send(new ListBucketsCommand({ Prefix: prefix, BucketRegion: 'eu-west-1' }))).Buckets?.length ?? 0, 0);
  t.true(((await s3.send(new ListBucketsCommand({}))).Buckets?.length ?? 0) >= 5, 'no parameters: every bucket');
  t.deepEqual(await s3ErrorOf(s3.send(new ListBucketsCommand({ MaxBuckets: 0 }))), { name: 'InvalidArgument', status: 400 });
  t.deepEqual(await s3ErrorOf(s3.send(new ListBucketsCommand({ MaxBuckets: 10_001 }))), { name: 'InvalidArgument', status: 400 });
  t.deepEqual(await s3ErrorOf(s3.send(new ListBucketsCommand({ ContinuationToken: '' }))), { name: 'InvalidArgument', status: 400 });
});

test('re-creating an own bucket: 200 in us-east-1 (S3 legacy behaviour), 409 BucketAlreadyOwnedByYou in other regions; the bucket keeps its objects', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'kept' }));
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  t.is(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).Body!.transformToString(), 'kept');
  const eu = await startServer({ env: { TS3GW_REGION: 'eu-west-1' } });
  try {
    const s3eu = s3Client(eu, { region: 'eu-west-1' });
    const config = { LocationConstraint: 'eu-west-1' } as const;
    await s3eu.send(new CreateBucketCommand({ Bucket: 'eu-bucket', CreateBucketConfiguration: config }));
    t.deepEqual(await s3ErrorOf(s3eu.send(new CreateBucketCommand({ Bucket: 'eu-bucket', CreateBucketConfiguration: config }))), { name: 'BucketAlreadyOwnedByYou', status: 409 });
    s3eu.destroy();
  } finally {
    await eu.stop();
    await removeDir(eu.dataDir);
  }
});

test('a wrong x-amz-checksum-* is BadDigest through the SDK (PutObject and UploadPart), and nothing is stored', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const wrongCrc = Buffer.from([1, 2, 3, 4]).toString('base64');
  t.deepEqual(await s3ErrorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'abc', ChecksumCRC32: wrongCrc }))), { name: 'BadDigest', status: 400 });
  const wrongSha = createHash('sha256').update('abd').digest('base64');
  t.deepEqual(await s3ErrorOf(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'abc', ChecksumSHA256: wrongSha }))), { name: 'BadDigest', status: 400 });
  t.deepEqual(await s3ErrorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))), { name: 'NotFound', status: 404 });
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'm', ChecksumAlgorithm: 'CRC32' }));
  t.deepEqual(await s3ErrorOf(s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'm', UploadId, PartNumber: 1, Body: 'abc', ChecksumCRC32: wrongCrc }))), { name: 'BadDigest', status: 400 });
  const parts = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'm', UploadId }));
  t.is(parts.Parts, undefined, 'no part stored');
});

test('a large PutObject with a wrong secret gets 403 SignatureDoesNotMatch through the SDK (it sends Expect: 100-continue and must not be told to continue)', async (t) => {
  const { s3, server } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  const wrong = s3Client(server, { credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: 'wrong-secret' } });
  const body = Buffer.alloc(16 * 1024 * 1024, 3);
  for (let attempt = 0; attempt < 3; attempt++) {
    t.deepEqual(await s3ErrorOf(wrong.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: body }))), { name: 'SignatureDoesNotMatch', status: 403 }, `attempt ${attempt}`);
  }
  wrong.destroy();
  t.deepEqual(await s3ErrorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))), { name: 'NotFound', status: 404 });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: body }));
  t.is((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))).ContentLength, body.length);
});

test('GET/HEAD ?partNumber of a single-part object: part 1 is the object, part 2 is 400 InvalidPartNumber, part 0 InvalidArgument', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'sdk-core');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'single part' }));
  const one = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', PartNumber: 1 }));
  t.is(await one.Body!.transformToString(), 'single part');
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', PartNumber: 2 }))), { name: 'InvalidPartNumber', status: 400 });
  t.is((await s3ErrorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k', PartNumber: 2 })))).status, 400);
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', PartNumber: 0 }))), { name: 'InvalidArgument', status: 400 });
});
