/**
 * Goal: authentication and body integrity at the wire level. Every bad signature, key, region,
 * clock, presigned URL, payload hash, chunk signature, trailer or checksum is refused with the
 * exact AWS error code, as S3 XML carrying a RequestId equal to the x-amz-request-id header, and
 * a refused PUT changes nothing (no object appears, an existing object keeps its bytes).
 * Every streaming payload mode stores exactly the decoded bytes of a multi-chunk body.
 *
 * Method: one real server process per file (test/helpers/server.ts). Requests are signed by the
 * independent signer in test/helpers/signer.ts and sent raw through undici, so each test can
 * build precisely the bytes it wants to be wrong. After a refused PUT the test reads the key
 * back to prove nothing was stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { removeDir, startServer, type TestServer } from '../helpers/server.ts';
import {
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  type ChunkedMode,
  awsChunked,
  checksumOf,
  expectS3Error,
  keyPath,
  presign,
  RawS3,
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  signRequest,
  streamingPut,
} from '../helpers/signer.ts';

const test = anyTest as TestFn<{ server: TestServer; raw: RawS3; bucket: string }>;

const MINUTE_MS = 60 * 1000;
/** Multi-chunk bodies: 5 chunks of 64 KiB plus a short one. */
const STREAM_BODY_BYTES = 5 * 64 * 1024 + 1234;
const STREAM_CHUNK_BYTES = 64 * 1024;

test.before(async (t) => {
  const server = await startServer();
  const raw = new RawS3(server.url);
  const bucket = 'wire-auth';
  const res = await raw.signed('PUT', `/${bucket}`);
  if (res.status !== 200) throw new Error(`create bucket: ${res.status} ${res.text}`);
  t.context = { server, raw, bucket };
});

test.after.always(async (t) => {
  if (!t.context.server) return;
  await t.context.raw.close();
  await t.context.server.stop();
  await removeDir(t.context.server.dataDir);
});

let keySeq = 0;
const newKey = (label: string) => `${label}-${++keySeq}`;
const md5Hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

/** Asserts the key does not exist (GET is NoSuchKey). */
async function assertAbsent(t: ExecutionContext<{ raw: RawS3; bucket: string }>, key: string): Promise<void> {
  const res = await t.context.raw.signed('GET', keyPath(t.context.bucket, key));
  expectS3Error(t, res, 404, 'NoSuchKey', `GET ${key} after a refused PUT`);
}

/** Asserts the key holds exactly `expected`. */
async function assertBytes(t: ExecutionContext<{ raw: RawS3; bucket: string }>, key: string, expected: Uint8Array): Promise<void> {
  const res = await t.context.raw.signed('GET', keyPath(t.context.bucket, key));
  t.is(res.status, 200, `GET ${key}`);
  t.is(res.body.length, expected.length, `${key}: length`);
  t.true(res.body.equals(Buffer.from(expected)), `${key}: bytes`);
  t.is(res.headers['etag'], `"${md5Hex(expected)}"`, `${key}: ETag is the MD5`);
}

async function putPlain(t: ExecutionContext<{ raw: RawS3; bucket: string }>, key: string, body: Uint8Array): Promise<void> {
  const res = await t.context.raw.signed('PUT', keyPath(t.context.bucket, key), { body });
  t.is(res.status, 200, `seed PUT ${key}: ${res.text}`);
}

test('wrong secret → 403 SignatureDoesNotMatch; unknown access key → 403 InvalidAccessKeyId', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('creds');
  const wrongSecret = await raw.signed('PUT', keyPath(bucket, key), {
    body: 'x',
    credentials: { accessKeyId: 'TS3TESTACCESSKEY', secretAccessKey: 'not-the-secret' },
  });
  expectS3Error(t, wrongSecret, 403, 'SignatureDoesNotMatch', 'wrong secret');
  const unknown = await raw.signed('PUT', keyPath(bucket, key), { body: 'x', credentials: { accessKeyId: 'NOSUCHKEY', secretAccessKey: 'whatever' } });
  expectS3Error(t, unknown, 403, 'InvalidAccessKeyId', 'unknown key');
  await assertAbsent(t, key);
});

test('no credentials at all → 403 AccessDenied on object, bucket and service requests', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('anon');
  expectS3Error(t, await raw.send('PUT', keyPath(bucket, key), {}, 'x'), 403, 'AccessDenied', 'anonymous PUT');
  expectS3Error(t, await raw.send('GET', `/${bucket}`), 403, 'AccessDenied', 'anonymous list');
  expectS3Error(t, await raw.send('GET', '/'), 403, 'AccessDenied', 'anonymous ListBuckets');
  await assertAbsent(t, key);
});

test('a credential scope naming another region → 400 AuthorizationHeaderMalformed', async (t) => {
  const { raw, bucket } = t.context;
  const res = await raw.signed('GET', `/${bucket}`, { region: 'eu-west-3' });
  expectS3Error(t, res, 400, 'AuthorizationHeaderMalformed');
});

test('x-amz-date 20 minutes off either way → 403 RequestTimeTooSkewed; 10 minutes is tolerated', async (t) => {
  const { raw, bucket } = t.context;
  for (const offsetMs of [-20 * MINUTE_MS, 20 * MINUTE_MS]) {
    const res = await raw.signed('GET', `/${bucket}`, { date: new Date(Date.now() + offsetMs) });
    expectS3Error(t, res, 403, 'RequestTimeTooSkewed', `offset ${offsetMs / MINUTE_MS} min`);
  }
  const ok = await raw.signed('GET', `/${bucket}`, { date: new Date(Date.now() - 10 * MINUTE_MS) });
  t.is(ok.status, 200, 'within the 15-minute window');
});

test('x-amz-* headers that are present but not signed → 403 AccessDenied, object not created', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('unsigned-hdr');
  const res = await raw.signed('PUT', keyPath(bucket, key), { body: 'x', unsignedHeaders: { 'x-amz-meta-sneaky': 'yes' } });
  expectS3Error(t, res, 403, 'AccessDenied');
  await assertAbsent(t, key);
});

test('a signature made for one key does not authorize another (SignatureDoesNotMatch)', async (t) => {
  const { raw, bucket } = t.context;
  const { headers } = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, 'signed-for-this'), body: 'x' });
  const key = newKey('replayed');
  const res = await raw.send('PUT', keyPath(bucket, key), headers, 'x');
  expectS3Error(t, res, 403, 'SignatureDoesNotMatch');
  await assertAbsent(t, key);
});

test('presigned GET and PUT work; the same URL fetched anonymously needs no headers', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('presigned');
  const body = randomBytes(3000);
  const putUrl = presign({ method: 'PUT', host: raw.host, path: keyPath(bucket, key), expiresSeconds: 300 });
  const put = await raw.send('PUT', putUrl, {}, body);
  t.is(put.status, 200, put.text);
  const getUrl = presign({ method: 'GET', host: raw.host, path: keyPath(bucket, key), expiresSeconds: 300 });
  const got = await raw.send('GET', getUrl);
  t.is(got.status, 200);
  t.true(got.body.equals(body));
  // response-* overrides are part of the signed query.
  const withOverride = presign({
    method: 'GET',
    host: raw.host,
    path: keyPath(bucket, key),
    query: 'response-content-type=text%2Fplain',
    expiresSeconds: 300,
  });
  const overridden = await raw.send('GET', withOverride);
  t.is(overridden.status, 200);
  t.is(overridden.headers['content-type'], 'text/plain');
});

test('an expired presigned URL → 403 AccessDenied', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('expired');
  await putPlain(t, key, Buffer.from('data'));
  const url = presign({ method: 'GET', host: raw.host, path: keyPath(bucket, key), expiresSeconds: 60, date: new Date(Date.now() - 2 * 60 * MINUTE_MS) });
  expectS3Error(t, await raw.send('GET', url), 403, 'AccessDenied');
  const putUrl = presign({ method: 'PUT', host: raw.host, path: keyPath(bucket, newKey('expired-put')), expiresSeconds: 1, date: new Date(Date.now() - 10_000) });
  expectS3Error(t, await raw.send('PUT', putUrl, {}, 'x'), 403, 'AccessDenied', 'expired presigned PUT');
});

test('a tampered presigned URL → 403 SignatureDoesNotMatch (expiry, extra parameter, other key, other method)', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('tamper');
  await putPlain(t, key, Buffer.from('secret data'));
  const url = presign({ method: 'GET', host: raw.host, path: keyPath(bucket, key), expiresSeconds: 60 });
  const tampered = {
    'longer expiry': url.replace('X-Amz-Expires=60', 'X-Amz-Expires=600'),
    'extra parameter': `${url}&response-content-type=text%2Fhtml`,
    'other key': url.replace(keyPath(bucket, key), keyPath(bucket, `${key}x`)),
    'flipped signature digit': url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`),
  };
  for (const [what, u] of Object.entries(tampered)) {
    t.not(u, url, `${what}: URL was changed`);
    expectS3Error(t, await raw.send('GET', u), 403, 'SignatureDoesNotMatch', what);
  }
  expectS3Error(t, await raw.send('PUT', url, {}, 'overwrite'), 403, 'SignatureDoesNotMatch', 'GET URL used for PUT');
  await assertBytes(t, key, Buffer.from('secret data'));
});

test('x-amz-content-sha256 that does not match the body → 400 XAmzContentSHA256Mismatch; nothing created or overwritten', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('sha-mismatch');
  const body = randomBytes(100_000);
  const otherHash = createHash('sha256').update('something else').digest('hex');
  const res = await raw.signed('PUT', keyPath(bucket, key), { body, payloadHash: otherHash });
  expectS3Error(t, res, 400, 'XAmzContentSHA256Mismatch');
  await assertAbsent(t, key);

  const existing = newKey('sha-mismatch-existing');
  const original = randomBytes(5000);
  await putPlain(t, existing, original);
  const over = await raw.signed('PUT', keyPath(bucket, existing), { body, payloadHash: otherHash });
  expectS3Error(t, over, 400, 'XAmzContentSHA256Mismatch', 'overwrite');
  await assertBytes(t, existing, original);
});

test('XML bodies are verified too: DeleteObjects / CreateBucket with a mismatched x-amz-content-sha256, Content-MD5 or chunk signature change nothing', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('xml-victim');
  await putPlain(t, key, Buffer.from('keep me'));
  const body = Buffer.from(`<Delete><Object><Key>${key}</Key></Object></Delete>`);
  const otherHash = createHash('sha256').update('other').digest('hex');
  // DeleteObjects must carry Content-MD5 or a checksum; a correct one here, so only the hash is wrong.
  const bodyMd5 = createHash('md5').update(body).digest('base64');
  expectS3Error(t, await raw.signed('POST', `/${bucket}`, { query: 'delete', body, payloadHash: otherHash, headers: { 'content-md5': bodyMd5 } }), 400, 'XAmzContentSHA256Mismatch', 'DeleteObjects sha256');
  const wrongMd5 = createHash('md5').update('other').digest('base64');
  expectS3Error(t, await raw.signed('POST', `/${bucket}`, { query: 'delete', body, headers: { 'content-md5': wrongMd5 } }), 400, 'BadDigest', 'DeleteObjects Content-MD5');
  // aws-chunked DeleteObjects with a flipped byte in its only chunk.
  const signed = signRequest({
    method: 'POST',
    host: raw.host,
    path: `/${bucket}`,
    query: 'delete',
    payloadHash: STREAMING_SIGNED,
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(body.length), 'content-md5': bodyMd5 },
  });
  const chunked = awsChunked(body, { mode: STREAMING_SIGNED, chunkSizeBytes: 64 * 1024, signing: signed.signing });
  const at = chunked.chunkData[0]!.offset + 2;
  chunked.body[at] = chunked.body[at]! ^ 0x20;
  const res = await raw.send('POST', `/${bucket}?delete`, { ...signed.headers, 'content-length': String(chunked.body.length) }, chunked.body);
  expectS3Error(t, res, 403, 'SignatureDoesNotMatch', 'DeleteObjects aws-chunked');
  await assertBytes(t, key, Buffer.from('keep me'));

  const newBucket = `wire-auth-nb-${process.pid}`;
  expectS3Error(t, await raw.signed('PUT', `/${newBucket}`, { body: '<CreateBucketConfiguration/>', payloadHash: otherHash }), 400, 'XAmzContentSHA256Mismatch', 'CreateBucket');
  t.is((await raw.signed('HEAD', `/${newBucket}`)).status, 404, 'bucket not created');
});

/** A streaming PUT of a multi-chunk body in `mode` (trailer checksum `algorithm`), then read back. */
async function streamingRoundTrip(t: ExecutionContext<{ raw: RawS3; bucket: string }>, mode: ChunkedMode, algorithm: ChecksumAlgorithm | undefined) {
  const { raw, bucket } = t.context;
  const key = newKey(`stream-${algorithm ?? 'none'}`);
  const data = randomBytes(STREAM_BODY_BYTES);
  const { headers, chunked } = await streamingPut({
    host: raw.host,
    path: keyPath(bucket, key),
    data,
    mode,
    chunkSizeBytes: STREAM_CHUNK_BYTES,
    ...(algorithm ? { trailerChecksum: { algorithm } } : {}),
  });
  t.true(chunked.chunkData.length >= 5, 'multi-chunk body');
  const res = await raw.send('PUT', keyPath(bucket, key), headers, chunked.body);
  t.is(res.status, 200, `PUT: ${res.text}`);
  t.is(res.headers['etag'], `"${md5Hex(data)}"`);
  if (algorithm) t.is(res.headers[`x-amz-checksum-${algorithm.toLowerCase()}`], await checksumOf(algorithm, data), 'PUT echoes the checksum');
  await assertBytes(t, key, data);
}

test(`streaming ${STREAMING_SIGNED}: multi-chunk body stored exactly`, async (t) => {
  await streamingRoundTrip(t, STREAMING_SIGNED, undefined);
});

test(`streaming ${STREAMING_SIGNED_TRAILER} with an x-amz-checksum-crc32 trailer: stored exactly`, async (t) => {
  await streamingRoundTrip(t, STREAMING_SIGNED_TRAILER, 'CRC32');
});

for (const algorithm of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
  test(`streaming ${STREAMING_UNSIGNED_TRAILER} with an x-amz-checksum-${algorithm.toLowerCase()} trailer: stored exactly`, async (t) => {
    await streamingRoundTrip(t, STREAMING_UNSIGNED_TRAILER, algorithm);
  });
}

test('a flipped byte inside a signed chunk → 403 SignatureDoesNotMatch; nothing created or overwritten', async (t) => {
  const { raw, bucket } = t.context;
  for (const mode of [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER] as const) {
    for (const which of ['first', 'last'] as const) {
      const key = newKey('flip');
      const data = randomBytes(STREAM_BODY_BYTES);
      const { headers, chunked } = await streamingPut({
        host: raw.host,
        path: keyPath(bucket, key),
        data,
        mode,
        chunkSizeBytes: STREAM_CHUNK_BYTES,
        ...(mode === STREAMING_SIGNED_TRAILER ? { trailerChecksum: { algorithm: 'CRC32' as const } } : {}),
      });
      const chunk = which === 'first' ? chunked.chunkData[0]! : chunked.chunkData.at(-1)!;
      const pos = chunk.offset + Math.floor(chunk.length / 2);
      chunked.body[pos] = chunked.body[pos]! ^ 0x01;
      const res = await raw.send('PUT', keyPath(bucket, key), headers, chunked.body);
      expectS3Error(t, res, 403, 'SignatureDoesNotMatch', `${mode}, ${which} chunk`);
      await assertAbsent(t, key);
    }
  }
  // Overwrite: the old object survives a corrupt replacement.
  const key = newKey('flip-existing');
  const original = randomBytes(1000);
  await putPlain(t, key, original);
  const { headers, chunked } = await streamingPut({ host: raw.host, path: keyPath(bucket, key), data: randomBytes(STREAM_BODY_BYTES), mode: STREAMING_SIGNED, chunkSizeBytes: STREAM_CHUNK_BYTES });
  const at = chunked.chunkData[2]!.offset;
  chunked.body[at] = chunked.body[at]! ^ 0x80;
  expectS3Error(t, await raw.send('PUT', keyPath(bucket, key), headers, chunked.body), 403, 'SignatureDoesNotMatch', 'overwrite');
  await assertBytes(t, key, original);
});

test('a wrong checksum in the trailer → 400 BadDigest in both trailer modes; nothing stored', async (t) => {
  const { raw, bucket } = t.context;
  for (const mode of [STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER] as const) {
    for (const algorithm of ['CRC32', 'SHA256'] as const) {
      const key = newKey('bad-trailer');
      const data = randomBytes(STREAM_BODY_BYTES);
      const wrong = await checksumOf(algorithm, Buffer.concat([data, Buffer.from('!')]));
      // The trailer signature covers the wrong value, so only the checksum can catch it.
      const { headers, chunked } = await streamingPut({
        host: raw.host,
        path: keyPath(bucket, key),
        data,
        mode,
        chunkSizeBytes: STREAM_CHUNK_BYTES,
        trailerChecksum: { algorithm, value: wrong },
      });
      const res = await raw.send('PUT', keyPath(bucket, key), headers, chunked.body);
      expectS3Error(t, res, 400, 'BadDigest', `${mode} ${algorithm}`);
      await assertAbsent(t, key);
    }
  }
});

test('a tampered trailer value in signed-trailer mode → 403 SignatureDoesNotMatch; nothing stored', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('tamper-trailer');
  const data = randomBytes(STREAM_BODY_BYTES);
  const { headers, chunked } = await streamingPut({
    host: raw.host,
    path: keyPath(bucket, key),
    data,
    mode: STREAMING_SIGNED_TRAILER,
    chunkSizeBytes: STREAM_CHUNK_BYTES,
    trailerChecksum: { algorithm: 'CRC32' },
  });
  // Swap the signed CRC32 for the CRC32 of other bytes, keeping the trailer signature: the
  // signature must fail (a checksum that matched the tampered value would not be enough).
  const text = chunked.body.toString('latin1');
  const right = await checksumOf('CRC32', data);
  const replacement = await checksumOf('CRC32', Buffer.from('other'));
  const tampered = Buffer.from(text.replace(`x-amz-checksum-crc32:${right}`, `x-amz-checksum-crc32:${replacement}`), 'latin1');
  t.false(tampered.equals(chunked.body));
  const res = await raw.send('PUT', keyPath(bucket, key), headers, tampered);
  expectS3Error(t, res, 403, 'SignatureDoesNotMatch');
  await assertAbsent(t, key);
});

test('a wrong x-amz-checksum-crc32 header → 400 BadDigest; nothing stored', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('bad-crc-header');
  const body = randomBytes(10_000);
  const wrong = await checksumOf('CRC32', Buffer.from('not the body'));
  const res = await raw.signed('PUT', keyPath(bucket, key), { body, headers: { 'x-amz-checksum-crc32': wrong } });
  expectS3Error(t, res, 400, 'BadDigest');
  await assertAbsent(t, key);
  // Sanity: the right value is accepted.
  const good = await raw.signed('PUT', keyPath(bucket, key), { body, headers: { 'x-amz-checksum-crc32': await checksumOf('CRC32', body) } });
  t.is(good.status, 200, good.text);
});

test('Content-MD5 that does not match → 400 BadDigest; malformed Content-MD5 → 400 InvalidDigest; nothing stored', async (t) => {
  const { raw, bucket } = t.context;
  const body = randomBytes(10_000);
  const key = newKey('md5');
  const otherMd5 = createHash('md5').update('other').digest('base64');
  expectS3Error(t, await raw.signed('PUT', keyPath(bucket, key), { body, headers: { 'content-md5': otherMd5 } }), 400, 'BadDigest', 'wrong MD5');
  await assertAbsent(t, key);
  for (const malformed of ['not-base64!!', Buffer.alloc(15).toString('base64'), createHash('md5').update(body).digest('hex')]) {
    expectS3Error(t, await raw.signed('PUT', keyPath(bucket, key), { body, headers: { 'content-md5': malformed } }), 400, 'InvalidDigest', `Content-MD5 ${malformed}`);
  }
  await assertAbsent(t, key);
  const ok = await raw.signed('PUT', keyPath(bucket, key), { body, headers: { 'content-md5': createHash('md5').update(body).digest('base64') } });
  t.is(ok.status, 200);
});

/** PUT with an x-amz-checksum-<alg> header, then GET/HEAD with and without x-amz-checksum-mode. */
async function checksumModeRoundTrip(t: ExecutionContext<{ raw: RawS3; bucket: string }>, algorithm: ChecksumAlgorithm) {
  const { raw, bucket } = t.context;
  const key = newKey(`mode-${algorithm}`);
  const body = randomBytes(70_000); // above the inline threshold: chunk-backed
  const value = await checksumOf(algorithm, body);
  const name = `x-amz-checksum-${algorithm.toLowerCase()}`;
  const put = await raw.signed('PUT', keyPath(bucket, key), { body, headers: { [name]: value } });
  t.is(put.status, 200, `PUT: ${put.text}`);
  const get = await raw.signed('GET', keyPath(bucket, key), { headers: { 'x-amz-checksum-mode': 'ENABLED' } });
  t.is(get.status, 200);
  t.is(get.headers[name], value, `GET returns ${name}`);
  t.is(get.headers['x-amz-checksum-type'], 'FULL_OBJECT');
  t.true(get.body.equals(body));
  const head = await raw.signed('HEAD', keyPath(bucket, key), { headers: { 'x-amz-checksum-mode': 'ENABLED' } });
  t.is(head.headers[name], value, `HEAD returns ${name}`);
  const plain = await raw.signed('GET', keyPath(bucket, key));
  t.is(plain.headers[name], undefined, 'no checksum without x-amz-checksum-mode');
}

for (const algorithm of CHECKSUM_ALGORITHMS) {
  test(`GET/HEAD with x-amz-checksum-mode: ENABLED return the stored ${algorithm}`, async (t) => {
    await checksumModeRoundTrip(t, algorithm);
  });
}

test('the node still serves after all of the above', async (t) => {
  const res = await t.context.raw.send('GET', '/health/live');
  t.is(res.status, 200);
});
