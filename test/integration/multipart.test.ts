/**
 * Goal: multipart upload behaves as AWS's does for the latest @aws-sdk/client-s3 at default
 * settings and for @aws-sdk/lib-storage's Upload (queueSize 8, 5 MiB parts): bytes and ETags of
 * completed objects, part rules and their exact error codes, NoSuchUpload after completion or
 * abort, idempotent completion retries, listing pagination, part ranges and checksums.
 * Method: one real server process; each test uses its own bucket; byte-exact comparisons against
 * locally computed MD5s, CRCs and the S3 formulas.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Crc32c } from '@aws-crypto/crc32c';
import { Upload } from '@aws-sdk/lib-storage';
import anyTest, { type TestFn } from 'ava';
import { createTestBucket, removeDir, s3Client, s3ErrorOf, startServer, type TestServer } from '../helpers/server.ts';

const test = anyTest as TestFn<{ server: TestServer; s3: S3Client }>;
const MiB = 1024 * 1024;

test.before(async (t) => {
  const server = await startServer();
  t.context = { server, s3: s3Client(server) };
});

test.after.always(async (t) => {
  if (!t.context.server) return;
  await t.context.server.stop();
  await removeDir(t.context.server.dataDir);
});

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest();
const md5Hex = (b: Uint8Array) => md5(b).toString('hex');
const crc32b64 = (b: Uint8Array) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(b) >>> 0);
  return out.toString('base64');
};
const mpEtag = (parts: Uint8Array[]) => `"${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-${parts.length}"`;

async function getBytes(s3: S3Client, bucket: string, key: string, extra: Record<string, unknown> = {}): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...extra }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

test('lib-storage Upload (queueSize 8, 5 MiB parts) round-trips 23 MiB; ETag is md5-of-md5s-N; COMPOSITE CRC32', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const data = randomBytes(23 * MiB);
  const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: 'big/object.bin', Body: data }, queueSize: 8, partSize: 5 * MiB });
  const result = await upload.done();
  const parts = [0, 1, 2, 3, 4].map((i) => data.subarray(i * 5 * MiB, Math.min(data.length, (i + 1) * 5 * MiB)));
  t.is(result.ETag, mpEtag(parts));
  const crcConcat = Buffer.concat(parts.map((p) => Buffer.from(crc32b64(p), 'base64')));
  t.is(result.ChecksumCRC32, `${crc32b64(crcConcat)}-5`);
  const got = await getBytes(s3, bucket, 'big/object.bin');
  t.true(got.equals(data), 'bytes match');
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/object.bin', ChecksumMode: 'ENABLED' }));
  t.is(head.ContentLength, data.length);
  t.is(head.ETag, mpEtag(parts));
  t.is(head.ChecksumCRC32, `${crc32b64(crcConcat)}-5`);
  t.is(head.ChecksumType, 'COMPOSITE');
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  t.deepEqual(listed.Contents?.map((c) => [c.Key, c.Size, c.ETag]), [['big/object.bin', data.length, mpEtag(parts)]]);
  // Part ranges: partNumber=2 is bytes [5 MiB, 10 MiB).
  const p2 = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/object.bin', PartNumber: 2 }));
  t.is(p2.PartsCount, 5);
  t.is(p2.ContentRange, `bytes ${5 * MiB}-${10 * MiB - 1}/${data.length}`);
  t.true(Buffer.from(await p2.Body!.transformToByteArray()).equals(parts[1]!));
  const h5 = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/object.bin', PartNumber: 5 }));
  t.is(h5.ContentLength, 3 * MiB);
  t.is(h5.PartsCount, 5);
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/object.bin', PartNumber: 6 }))), { name: 'InvalidPartNumber', status: 400 });
  // HEAD answers have no body: the SDK sees only the status.
  t.is((await s3ErrorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/object.bin', PartNumber: 6 })))).status, 400);
});

test('in-progress uploads are listed at once; ListParts pages; complete makes the object visible and the upload gone', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k', ContentType: 'text/x-test', Metadata: { color: 'blue' } }));
  t.truthy(UploadId);
  const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  t.deepEqual(listed.Uploads?.map((u) => [u.Key, u.UploadId]), [['k', UploadId]]);
  const bodies = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(1000)];
  const etags: string[] = [];
  for (const [i, body] of bodies.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: i + 1, Body: body }));
    t.is(r.ETag, `"${md5Hex(body)}"`);
    etags.push(r.ETag!);
  }
  const page1 = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'k', UploadId, MaxParts: 2 }));
  t.deepEqual(page1.Parts?.map((p) => [p.PartNumber, p.Size, p.ETag]), [[1, 5 * MiB, etags[0]], [2, 5 * MiB, etags[1]]]);
  t.true(page1.IsTruncated);
  t.is(page1.NextPartNumberMarker, '2');
  const page2 = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumberMarker: page1.NextPartNumberMarker }));
  t.deepEqual(page2.Parts?.map((p) => p.PartNumber), [3]);
  t.false(page2.IsTruncated);
  const complete = () =>
    s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: 'k',
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  const done = await complete();
  t.is(done.ETag, mpEtag(bodies));
  // A retried identical completion gets the same answer.
  const again = await complete();
  t.is(again.ETag, done.ETag);
  // A different completion of a completed upload finds no upload.
  t.deepEqual(
    await s3ErrorOf(s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: [{ ETag: etags[0], PartNumber: 1 }] } }))),
    { name: 'NoSuchUpload', status: 404 },
  );
  t.deepEqual(await s3ErrorOf(s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'k', UploadId }))), { name: 'NoSuchUpload', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 1, Body: 'x' }))), { name: 'NoSuchUpload', status: 404 });
  t.is((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads, undefined);
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
  t.is(got.ContentType, 'text/x-test');
  t.deepEqual(got.Metadata, { color: 'blue' });
  t.true(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(bodies)));
});

test('part rules: EntityTooSmall, InvalidPart, InvalidPartOrder, re-upload replaces, part number bounds, abort', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k' }));
  const put = (n: number, body: Uint8Array | string) => s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: n, Body: body }));
  const complete = (parts: { ETag: string; PartNumber: number }[]) =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: parts } }));
  const small1 = await put(1, 'small one');
  const small2 = await put(2, 'small two');
  t.deepEqual(await s3ErrorOf(complete([{ ETag: small1.ETag!, PartNumber: 1 }, { ETag: small2.ETag!, PartNumber: 2 }])), { name: 'EntityTooSmall', status: 400 });
  t.deepEqual(await s3ErrorOf(complete([{ ETag: small2.ETag!, PartNumber: 2 }, { ETag: small1.ETag!, PartNumber: 1 }])), { name: 'InvalidPartOrder', status: 400 });
  t.deepEqual(await s3ErrorOf(complete([{ ETag: small1.ETag!, PartNumber: 1 }, { ETag: small1.ETag!, PartNumber: 1 }])), { name: 'InvalidPartOrder', status: 400 });
  t.deepEqual(await s3ErrorOf(complete([{ ETag: small2.ETag!, PartNumber: 1 }])), { name: 'InvalidPart', status: 400 });
  t.deepEqual(await s3ErrorOf(complete([{ ETag: small1.ETag!, PartNumber: 3 }])), { name: 'InvalidPart', status: 400 });
  t.deepEqual(await s3ErrorOf(put(0, 'x')), { name: 'InvalidArgument', status: 400 });
  t.deepEqual(await s3ErrorOf(put(10001, 'x')), { name: 'InvalidArgument', status: 400 });
  // Re-upload part 1 big enough; the old ETag no longer names it.
  const big = randomBytes(5 * MiB);
  const big1 = await put(1, big);
  t.deepEqual(await s3ErrorOf(complete([{ ETag: small1.ETag!, PartNumber: 1 }])), { name: 'InvalidPart', status: 400 });
  const parts = (await s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'k', UploadId }))).Parts ?? [];
  t.deepEqual(parts.map((p) => [p.PartNumber, p.ETag]), [[1, big1.ETag], [2, small2.ETag]]);
  await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId }));
  t.deepEqual(await s3ErrorOf(s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'k', UploadId }))), { name: 'NoSuchUpload', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId }))), { name: 'NoSuchUpload', status: 404 });
  t.deepEqual(await s3ErrorOf(complete([{ ETag: big1.ETag!, PartNumber: 1 }])), { name: 'NoSuchUpload', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new ListPartsCommand({ Bucket: bucket, Key: 'k', UploadId: 'nope' }))), { name: 'NoSuchUpload', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new CreateMultipartUploadCommand({ Bucket: 'no-such-bucket-mpu', Key: 'k' }))), { name: 'NoSuchBucket', status: 404 });
  t.deepEqual(await s3ErrorOf(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))), { name: 'NoSuchKey', status: 404 });
});

test('a single small part completes; a non-contiguous part list completes', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k' }));
  const a = randomBytes(5 * MiB);
  const b = Buffer.from('tail');
  const ra = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 3, Body: a }));
  const rb = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 7, Body: b }));
  await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 9, Body: 'unused' }));
  const done = await s3.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: [{ ETag: ra.ETag, PartNumber: 3 }, { ETag: rb.ETag, PartNumber: 7 }] } }),
  );
  t.is(done.ETag, mpEtag([a, b]));
  t.true((await getBytes(s3, bucket, 'k')).equals(Buffer.concat([a, b])));
  const p2 = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', PartNumber: 2 }));
  t.is(Buffer.from(await p2.Body!.transformToByteArray()).toString(), 'tail');

  const { UploadId: u2 } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'one' }));
  const r1 = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'one', UploadId: u2, PartNumber: 1, Body: 'just one' }));
  const d2 = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'one', UploadId: u2, MultipartUpload: { Parts: [{ ETag: r1.ETag, PartNumber: 1 }] } }));
  t.is(d2.ETag, mpEtag([Buffer.from('just one')]));
  t.is((await getBytes(s3, bucket, 'one')).toString(), 'just one');
});

test('FULL_OBJECT CRC32: the object checksum is the CRC of the whole object', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId, ChecksumType } = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k', ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' }),
  );
  t.is(ChecksumType, 'FULL_OBJECT');
  const bodies = [randomBytes(5 * MiB), randomBytes(12345)];
  const parts = [];
  for (const [i, body] of bodies.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: 'CRC32' }));
    t.is(r.ChecksumCRC32, crc32b64(body));
    parts.push({ ETag: r.ETag, PartNumber: i + 1, ChecksumCRC32: r.ChecksumCRC32 });
  }
  const done = await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: parts } }));
  t.is(done.ChecksumCRC32, crc32b64(Buffer.concat(bodies)));
  t.is(done.ChecksumType, 'FULL_OBJECT');
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'k', ChecksumMode: 'ENABLED' }));
  t.is(got.ChecksumCRC32, crc32b64(Buffer.concat(bodies)));
  t.true(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(bodies)));
});

test('a part checksum that does not match the body is BadDigest; a wrong part checksum in Complete is InvalidPart', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k', ChecksumAlgorithm: 'SHA256' }));
  const bad = await s3ErrorOf(
    s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 1, Body: 'abc', ChecksumSHA256: createHash('sha256').update('abd').digest('base64') })),
  );
  t.is(bad.name, 'BadDigest');
  const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 1, Body: 'abc', ChecksumAlgorithm: 'SHA256' }));
  t.is(r.ChecksumSHA256, createHash('sha256').update('abc').digest('base64'));
  const wrong = createHash('sha256').update('xyz').digest('base64');
  t.deepEqual(
    await s3ErrorOf(
      s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: [{ ETag: r.ETag, PartNumber: 1, ChecksumSHA256: wrong }] } })),
    ),
    { name: 'InvalidPart', status: 400 },
  );
  const done = await s3.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: [{ ETag: r.ETag, PartNumber: 1, ChecksumSHA256: r.ChecksumSHA256 }] } }),
  );
  const composite = createHash('sha256').update(createHash('sha256').update('abc').digest()).digest('base64');
  t.is(done.ChecksumSHA256, `${composite}-1`);
});

test('UploadPartCopy copies a source range, with copy-source conditions', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const source = randomBytes(7 * MiB + 5);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src', Body: source }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'dst' }));
  const c1 = await s3.send(
    new UploadPartCopyCommand({ Bucket: bucket, Key: 'dst', UploadId, PartNumber: 1, CopySource: `${bucket}/src`, CopySourceRange: `bytes=1000-${1000 + 5 * MiB - 1}` }),
  );
  const first = source.subarray(1000, 1000 + 5 * MiB);
  t.is(c1.CopyPartResult?.ETag, `"${md5Hex(first)}"`);
  const c2 = await s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'dst', UploadId, PartNumber: 2, CopySource: `${bucket}/src` }));
  t.is(c2.CopyPartResult?.ETag, `"${md5Hex(source)}"`);
  t.deepEqual(
    await s3ErrorOf(s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'dst', UploadId, PartNumber: 3, CopySource: `${bucket}/src`, CopySourceIfMatch: '"nope"' }))),
    { name: 'PreconditionFailed', status: 412 },
  );
  t.deepEqual(
    await s3ErrorOf(
      s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'dst', UploadId, PartNumber: 3, CopySource: `${bucket}/src`, CopySourceRange: `bytes=0-${source.length}` })),
    ),
    { name: 'InvalidRange', status: 416 },
  );
  t.deepEqual(
    await s3ErrorOf(s3.send(new UploadPartCopyCommand({ Bucket: bucket, Key: 'dst', UploadId, PartNumber: 3, CopySource: `${bucket}/missing` }))),
    { name: 'NoSuchKey', status: 404 },
  );
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: 'dst',
      UploadId,
      MultipartUpload: { Parts: [{ ETag: c1.CopyPartResult?.ETag, PartNumber: 1 }, { ETag: c2.CopyPartResult?.ETag, PartNumber: 2 }] },
    }),
  );
  t.true((await getBytes(s3, bucket, 'dst')).equals(Buffer.concat([first, source])));
});

test('ListMultipartUploads: prefix, delimiter, key-marker / upload-id-marker pagination', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const keys = ['a', 'a', 'b/1', 'b/2', 'c', 'd/x/y'];
  const ids: string[] = [];
  for (const key of keys) ids.push((await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!);
  const all = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  t.deepEqual(all.Uploads?.map((u) => [u.Key, u.UploadId]), keys.map((k, i) => [k, ids[i]]));
  // Page through with max-uploads=1 and collect everything exactly once.
  const seen: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (let i = 0; i < 20; i++) {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, MaxUploads: 1, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    for (const u of page.Uploads ?? []) seen.push(u.UploadId!);
    if (!page.IsTruncated) break;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
  t.deepEqual(seen, ids);
  const delim = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Delimiter: '/' }));
  t.deepEqual(delim.Uploads?.map((u) => u.Key), ['a', 'a', 'c']);
  t.deepEqual(delim.CommonPrefixes?.map((p) => p.Prefix), ['b/', 'd/']);
  const pre = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'b/' }));
  t.deepEqual(pre.Uploads?.map((u) => u.Key), ['b/1', 'b/2']);
  const afterA = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: 'a' }));
  t.deepEqual(afterA.Uploads?.map((u) => u.Key), ['b/1', 'b/2', 'c', 'd/x/y']);
  const afterFirstA = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: 'a', UploadIdMarker: ids[0] }));
  t.deepEqual(afterFirstA.Uploads?.[0]?.UploadId, ids[1]);
  // In-progress uploads keep the bucket from being deleted.
  t.deepEqual(await s3ErrorOf(s3.send(new DeleteBucketCommand({ Bucket: bucket }))), { name: 'BucketNotEmpty', status: 409 });
  for (const [i, key] of keys.entries()) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: ids[i] }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  t.pass();
});

test('completion with If-None-Match: * fails when the key exists', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'old' }));
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k' }));
  const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 1, Body: 'new' }));
  t.deepEqual(
    await s3ErrorOf(
      s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ ETag: r.ETag, PartNumber: 1 }] } })),
    ),
    { name: 'PreconditionFailed', status: 412 },
  );
  t.is((await getBytes(s3, bucket, 'k')).toString(), 'old');
});

const crc32cB64 = (b: Uint8Array) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(new Crc32c().update(b).digest() >>> 0);
  return out.toString('base64');
};
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

test('CompleteMultipartUpload states the object: a wrong FULL_OBJECT checksum is BadDigest, a different checksum type or x-amz-mp-object-size is InvalidRequest; nothing is stored', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k', ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' }));
  const bodies = [randomBytes(5 * MiB), randomBytes(777)];
  const parts: { ETag?: string; PartNumber: number; ChecksumCRC32?: string }[] = [];
  for (const [i, body] of bodies.entries()) {
    const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: 'CRC32' }));
    parts.push({ ETag: r.ETag, PartNumber: i + 1, ChecksumCRC32: r.ChecksumCRC32 });
  }
  const whole = Buffer.concat(bodies);
  const complete = (extra: Record<string, unknown>) =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: parts }, ...extra }));
  t.deepEqual(await s3ErrorOf(complete({ ChecksumType: 'FULL_OBJECT', ChecksumCRC32: crc32b64(Buffer.from('other')) })), { name: 'BadDigest', status: 400 });
  t.deepEqual(await s3ErrorOf(complete({ ChecksumType: 'COMPOSITE' })), { name: 'InvalidRequest', status: 400 });
  t.deepEqual(await s3ErrorOf(complete({ ChecksumSHA256: sha256(whole).toString('base64') })), { name: 'InvalidRequest', status: 400 }, 'another algorithm');
  t.deepEqual(await s3ErrorOf(complete({ MpuObjectSize: whole.length + 1 })), { name: 'InvalidRequest', status: 400 });
  t.deepEqual(await s3ErrorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))), { name: 'NotFound', status: 404 }, 'nothing stored');
  const done = await complete({ ChecksumType: 'FULL_OBJECT', ChecksumCRC32: crc32b64(whole), MpuObjectSize: whole.length });
  t.is(done.ChecksumCRC32, crc32b64(whole));
  t.is(done.ChecksumType, 'FULL_OBJECT');
  t.true((await getBytes(s3, bucket, 'k')).equals(whole));
});

test('COMPOSITE completion: the stated "<checksum>-N" is verified (BadDigest), and every part must carry its checksum', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k', ChecksumAlgorithm: 'SHA256' }));
  const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: 1, Body: 'composite', ChecksumAlgorithm: 'SHA256' }));
  const part = { ETag: r.ETag, PartNumber: 1, ChecksumSHA256: r.ChecksumSHA256 };
  const composite = `${sha256(sha256('composite')).toString('base64')}-1`;
  const complete = (parts: { ETag?: string; PartNumber: number }[], extra: Record<string, unknown> = {}) =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: parts }, ...extra }));
  // ceph s3-tests' test_multipart_checksum_sha256 sends exactly this wrong value.
  t.deepEqual(await s3ErrorOf(complete([part], { ChecksumSHA256: 'ZjViMzZjMGNmNzhkMzBkNDBmNTQ5YWNhYWM4NGZmYTc=-1' })), { name: 'BadDigest', status: 400 });
  t.deepEqual(await s3ErrorOf(complete([{ ETag: r.ETag, PartNumber: 1 }], { ChecksumSHA256: composite })), { name: 'InvalidRequest', status: 400 }, 'part checksum missing');
  t.deepEqual(await s3ErrorOf(complete([part], { ChecksumType: 'FULL_OBJECT' })), { name: 'InvalidRequest', status: 400 });
  t.deepEqual(await s3ErrorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }))), { name: 'NotFound', status: 404 }, 'nothing stored');
  const done = await complete([part], { ChecksumSHA256: composite, ChecksumType: 'COMPOSITE' });
  t.is(done.ChecksumSHA256, composite);
  t.is(done.ChecksumType, 'COMPOSITE');
});

test('an upload created without a checksum gets the FULL_OBJECT checksum its completion states, from the CRC32s the SDK sent with each part', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k' }));
  const bodies = [randomBytes(5 * MiB), randomBytes(4321)];
  const parts: { ETag?: string; PartNumber: number }[] = [];
  for (const [i, body] of bodies.entries()) {
    // At default settings the SDK sends a CRC32 with every part.
    const r = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: i + 1, Body: body }));
    t.is(r.ChecksumCRC32, crc32b64(body), 'the SDK sent a CRC32 and it was kept');
    parts.push({ ETag: r.ETag, PartNumber: i + 1 });
  }
  const whole = Buffer.concat(bodies);
  const complete = (extra: Record<string, unknown>) =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: parts }, ...extra }));
  t.deepEqual(await s3ErrorOf(complete({ ChecksumType: 'FULL_OBJECT', ChecksumCRC32: crc32b64(bodies[0]!) })), { name: 'BadDigest', status: 400 });
  t.deepEqual(await s3ErrorOf(complete({ ChecksumType: 'FULL_OBJECT', ChecksumCRC32C: crc32cB64(whole) })), { name: 'InvalidRequest', status: 400 }, 'parts have no CRC32C');
  t.deepEqual(await s3ErrorOf(complete({ ChecksumType: 'FULL_OBJECT' })), { name: 'InvalidRequest', status: 400 }, 'a type without a checksum');
  const done = await complete({ ChecksumType: 'FULL_OBJECT', ChecksumCRC32: crc32b64(whole) });
  t.is(done.ChecksumCRC32, crc32b64(whole));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k', ChecksumMode: 'ENABLED' }));
  t.is(head.ChecksumCRC32, crc32b64(whole));
  t.is(head.ChecksumType, 'FULL_OBJECT');
});

test('lib-storage Upload with ChecksumAlgorithm CRC32C and ChecksumType FULL_OBJECT, and with SHA256 (COMPOSITE)', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const data = randomBytes(11 * MiB + 99);
  const full = await new Upload({ client: s3, params: { Bucket: bucket, Key: 'full', Body: data, ChecksumAlgorithm: 'CRC32C', ChecksumType: 'FULL_OBJECT' }, partSize: 5 * MiB }).done();
  t.is(full.ChecksumCRC32C, crc32cB64(data));
  t.is(full.ChecksumType, 'FULL_OBJECT');
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'full', ChecksumMode: 'ENABLED' }));
  t.is(head.ChecksumCRC32C, crc32cB64(data));
  const comp = await new Upload({ client: s3, params: { Bucket: bucket, Key: 'comp', Body: data, ChecksumAlgorithm: 'SHA256' }, partSize: 5 * MiB }).done();
  const pieces = [0, 1, 2].map((i) => data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB));
  t.is(comp.ChecksumSHA256, `${sha256(Buffer.concat(pieces.map((p) => sha256(p)))).toString('base64')}-3`);
  t.true((await getBytes(s3, bucket, 'comp')).equals(data));
});

test('a part uploaded again after later parts: completion in ascending order uses its latest upload; the replaced ETag is InvalidPart', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'mpu');
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'k' }));
  const put = (n: number, body: Uint8Array) => s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'k', UploadId, PartNumber: n, Body: body }));
  const [p1, p2old, p3, p2new] = [randomBytes(5 * MiB), randomBytes(5 * MiB), Buffer.from('three'), randomBytes(5 * MiB)];
  const r1 = await put(1, p1!);
  const r2old = await put(2, p2old!);
  const r3 = await put(3, p3!);
  const r2new = await put(2, p2new!);
  t.not(r2new.ETag, r2old.ETag);
  const complete = (etag2: string | undefined) =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: 'k', UploadId, MultipartUpload: { Parts: [{ ETag: r1.ETag, PartNumber: 1 }, { ETag: etag2, PartNumber: 2 }, { ETag: r3.ETag, PartNumber: 3 }] } }));
  t.deepEqual(await s3ErrorOf(complete(r2old.ETag)), { name: 'InvalidPart', status: 400 });
  const done = await complete(r2new.ETag);
  t.is(done.ETag, mpEtag([p1!, p2new!, p3!]));
  t.true((await getBytes(s3, bucket, 'k')).equals(Buffer.concat([p1!, p2new!, p3!])));
});
