/**
 * Goal: Signature Version 2 works end to end as old clients and `s3cmd signurl` use it: the
 * Authorization header (`AWS AKID:sig`, dated by Date or x-amz-date) and presigned query strings
 * (AWSAccessKeyId / Expires / Signature), path-style and virtual-hosted, with sub-resources
 * (?tagging, ?uploads, ?partNumber&uploadId, ?delete, response-* overrides) signed. Every bad
 * signature, key, date or expiry gets AWS's error (with StringToSign for SignatureDoesNotMatch),
 * and a refused write changes nothing. SigV2 bodies are unsigned; Content-MD5 protects them.
 *
 * Method: one real server process with a virtual-host domain configured. Requests are signed by
 * the independent V2 signer in test/helpers/signer.ts and sent raw through undici; after every
 * refused write the key is read back (SigV4) to prove nothing was stored.
 */
import { createHash } from 'node:crypto';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { removeDir, startServer, type TestServer } from '../helpers/server.ts';
import { expectS3Error, keyPath, presignV2, RawS3, signRequestV2, type SignV2Input } from '../helpers/signer.ts';

const test = anyTest as TestFn<{ server: TestServer; raw: RawS3; bucket: string }>;

const DOMAIN = 's3.sigv2.test';
const MINUTE_MS = 60_000;

test.before(async (t) => {
  const server = await startServer({ env: { TS3GW_DOMAIN: DOMAIN } });
  const raw = new RawS3(server.url);
  const bucket = 'sigv2';
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

type Ctx = ExecutionContext<{ server: TestServer; raw: RawS3; bucket: string }>;

let keySeq = 0;
const newKey = (label: string) => `${label}-${++keySeq}`;
const md5b64 = (b: string | Uint8Array) => createHash('md5').update(b).digest('base64');

/** Signs with SigV2 and sends; `path` and `query` as on the wire. */
async function v2(t: Ctx, input: SignV2Input & { body?: string | Uint8Array }) {
  const { headers } = signRequestV2(input);
  const query = input.query ? `?${input.query}` : '';
  return t.context.raw.send(input.method, `${input.path}${query}`, headers, input.body);
}

async function assertAbsent(t: Ctx, key: string): Promise<void> {
  const res = await t.context.raw.signed('GET', keyPath(t.context.bucket, key));
  expectS3Error(t, res, 404, 'NoSuchKey', `GET ${key} after a refused write`);
}

async function assertBody(t: Ctx, key: string, expected: string): Promise<void> {
  const res = await t.context.raw.signed('GET', keyPath(t.context.bucket, key));
  t.is(res.status, 200, `GET ${key}`);
  t.is(res.text, expected, `${key}: bytes`);
}

test('header auth: PUT with Content-Type, Content-MD5 and x-amz-meta, then GET and HEAD, path-style', async (t) => {
  const { bucket } = t.context;
  const key = `${newKey('put')}/with space ü.txt`;
  const body = 'hello from signature version 2';
  const put = await v2(t, {
    method: 'PUT',
    path: keyPath(bucket, key),
    headers: { 'Content-Type': 'text/plain', 'Content-MD5': md5b64(body), 'x-amz-meta-Origin': ' sigv2 ', 'X-Amz-Meta-b': 'two' },
    body,
  });
  t.is(put.status, 200, put.text);
  const get = await v2(t, { method: 'GET', path: keyPath(bucket, key) });
  t.is(get.status, 200, get.text);
  t.is(get.text, body);
  t.is(get.headers['content-type'], 'text/plain');
  t.is(get.headers['x-amz-meta-origin'], 'sigv2');
  const head = await v2(t, { method: 'HEAD', path: keyPath(bucket, key) });
  t.is(head.status, 200);
});

test('header auth: x-amz-date instead of Date (Date position empty), and both together', async (t) => {
  const { bucket } = t.context;
  const key = newKey('amzdate');
  const put = await v2(t, { method: 'PUT', path: keyPath(bucket, key), headers: { 'x-amz-date': new Date().toUTCString() }, body: 'x' });
  t.is(put.status, 200, put.text);
  // Date and x-amz-date both sent: signers put the Date header in the Date position.
  const now = new Date().toUTCString();
  const get = await v2(t, { method: 'GET', path: keyPath(bucket, key), headers: { Date: now, 'x-amz-date': now } });
  t.is(get.status, 200, get.text);
  t.is(get.text, 'x');
});

test('header auth: signed sub-resources (?tagging, ?uploads, ?partNumber&uploadId, ?uploadId, ?delete) and unsigned list parameters', async (t) => {
  const { bucket } = t.context;
  const key = newKey('subres');
  t.is((await v2(t, { method: 'PUT', path: keyPath(bucket, key), body: 'tagged' })).status, 200);
  const tagging = '<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>';
  const putTags = await v2(t, { method: 'PUT', path: keyPath(bucket, key), query: 'tagging', headers: { 'Content-MD5': md5b64(tagging) }, body: tagging });
  t.is(putTags.status, 200, putTags.text);
  const getTags = await v2(t, { method: 'GET', path: keyPath(bucket, key), query: 'tagging' });
  t.is(getTags.status, 200, getTags.text);
  t.regex(getTags.text, /<Key>k<\/Key><Value>v<\/Value>/);

  const mpKey = newKey('multipart');
  const create = await v2(t, { method: 'POST', path: keyPath(bucket, mpKey), query: 'uploads' });
  t.is(create.status, 200, create.text);
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(create.text)![1]!;
  const part = await v2(t, { method: 'PUT', path: keyPath(bucket, mpKey), query: `partNumber=1&uploadId=${encodeURIComponent(uploadId)}`, body: 'part one' });
  t.is(part.status, 200, part.text);
  const complete = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${part.headers['etag']}</ETag></Part></CompleteMultipartUpload>`;
  const done = await v2(t, { method: 'POST', path: keyPath(bucket, mpKey), query: `uploadId=${encodeURIComponent(uploadId)}`, body: complete });
  t.is(done.status, 200, done.text);
  await assertBody(t, mpKey, 'part one');

  const list = await v2(t, { method: 'GET', path: `/${bucket}`, query: `prefix=${encodeURIComponent('multipart-')}&max-keys=5` });
  t.is(list.status, 200, list.text);
  t.regex(list.text, new RegExp(`<Key>${mpKey}</Key>`));

  const del = `<Delete><Object><Key>${mpKey}</Key></Object></Delete>`;
  const deleted = await v2(t, { method: 'POST', path: `/${bucket}`, query: 'delete', headers: { 'Content-MD5': md5b64(del) }, body: del });
  t.is(deleted.status, 200, deleted.text);
  await assertAbsent(t, mpKey);
});

test('header auth: response-* overrides are signed with decoded values', async (t) => {
  const { bucket } = t.context;
  const key = newKey('override');
  t.is((await v2(t, { method: 'PUT', path: keyPath(bucket, key), body: 'o' })).status, 200);
  const disposition = 'attachment; filename="a b.txt"';
  const res = await v2(t, {
    method: 'GET',
    path: keyPath(bucket, key),
    query: `response-content-disposition=${encodeURIComponent(disposition)}&response-content-type=${encodeURIComponent('text/x-test')}`,
  });
  t.is(res.status, 200, res.text);
  t.is(res.headers['content-disposition'], disposition);
  t.is(res.headers['content-type'], 'text/x-test');
});

test('header auth: virtual-hosted style signs /bucket + path', async (t) => {
  const { bucket, server } = t.context;
  const key = newKey('vhost');
  const host = `${bucket}.${DOMAIN}:${server.port}`;
  const path = `/${encodeURIComponent(key)}`;
  const put = await v2(t, { method: 'PUT', path, headers: { Host: host }, virtualHostBucket: bucket, body: 'virtual' });
  t.is(put.status, 200, put.text);
  await assertBody(t, key, 'virtual');
  // The same signature without the bucket in the resource (path-style rules) does not verify.
  const wrong = await v2(t, { method: 'GET', path, headers: { Host: host } });
  expectS3Error(t, wrong, 403, 'SignatureDoesNotMatch');
});

test('header auth errors: wrong secret (with StringToSign), unknown key, skew, no date, malformed', async (t) => {
  const { bucket } = t.context;
  const key = newKey('errors');
  const input: SignV2Input = { method: 'PUT', path: keyPath(bucket, key), headers: { 'Content-Type': 'text/plain' } };

  const wrong = signRequestV2({ ...input, credentials: { accessKeyId: 'TS3TESTACCESSKEY', secretAccessKey: 'not-the-secret' } });
  const res = await t.context.raw.send('PUT', input.path, wrong.headers, 'nope');
  const err = expectS3Error(t, res, 403, 'SignatureDoesNotMatch');
  t.truthy(err);
  const xmlText = (v: string | undefined) =>
    v?.replace(/&#x([0-9A-Fa-f]+);/g, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16))).replaceAll('&amp;', '&');
  const sts = xmlText(/<StringToSign>([\s\S]*?)<\/StringToSign>/.exec(res.text)?.[1]);
  t.is(sts, wrong.stringToSign, 'the error shows the string the server signed');
  t.regex(res.text, /<SignatureProvided>[^<]+<\/SignatureProvided>/);
  t.regex(res.text, /<StringToSignBytes>50 55 54 0a/);
  await assertAbsent(t, key);

  const unknown = signRequestV2({ ...input, credentials: { accessKeyId: 'NOSUCHKEY', secretAccessKey: 'x' } });
  expectS3Error(t, await t.context.raw.send('PUT', input.path, unknown.headers, 'nope'), 403, 'InvalidAccessKeyId');

  const skewed = signRequestV2({ ...input, headers: { ...input.headers, Date: new Date(Date.now() - 16 * MINUTE_MS).toUTCString() } });
  expectS3Error(t, await t.context.raw.send('PUT', input.path, skewed.headers, 'nope'), 403, 'RequestTimeTooSkewed');
  const future = signRequestV2({ ...input, headers: { ...input.headers, 'x-amz-date': new Date(Date.now() + 16 * MINUTE_MS).toUTCString() } });
  expectS3Error(t, await t.context.raw.send('PUT', input.path, future.headers, 'nope'), 403, 'RequestTimeTooSkewed');

  const undated = signRequestV2(input);
  delete undated.headers['Date'];
  expectS3Error(t, await t.context.raw.send('PUT', input.path, undated.headers, 'nope'), 403, 'AccessDenied');

  expectS3Error(t, await t.context.raw.send('PUT', input.path, { Authorization: 'AWS TS3TESTACCESSKEY', Date: new Date().toUTCString() }, 'nope'), 400, 'InvalidArgument');

  // A signed header changed after signing.
  const tampered = signRequestV2(input);
  tampered.headers['Content-Type'] = 'text/html';
  expectS3Error(t, await t.context.raw.send('PUT', input.path, tampered.headers, 'nope'), 403, 'SignatureDoesNotMatch');
  // An x-amz-* header added after signing is covered by the signature too.
  const added = signRequestV2(input);
  expectS3Error(t, await t.context.raw.send('PUT', input.path, { ...added.headers, 'x-amz-meta-sneaky': '1' }, 'nope'), 403, 'SignatureDoesNotMatch');
  await assertAbsent(t, key);
});

test('header auth: the body is protected by Content-MD5 (BadDigest, nothing stored); an existing object keeps its bytes', async (t) => {
  const { bucket } = t.context;
  const key = newKey('md5');
  const bad = await v2(t, { method: 'PUT', path: keyPath(bucket, key), headers: { 'Content-MD5': md5b64('expected') }, body: 'different' });
  expectS3Error(t, bad, 400, 'BadDigest');
  await assertAbsent(t, key);
  t.is((await v2(t, { method: 'PUT', path: keyPath(bucket, key), body: 'original' })).status, 200);
  const again = await v2(t, { method: 'PUT', path: keyPath(bucket, key), headers: { 'Content-MD5': md5b64('expected') }, body: 'replaced' });
  expectS3Error(t, again, 400, 'BadDigest');
  await assertBody(t, key, 'original');
});

test('header auth: SigV2 cannot carry aws-chunked bodies', async (t) => {
  const { bucket } = t.context;
  const key = newKey('chunked');
  const res = await v2(t, {
    method: 'PUT',
    path: keyPath(bucket, key),
    headers: { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'x-amz-decoded-content-length': '1' },
    body: 'x',
  });
  expectS3Error(t, res, 400, 'InvalidRequest');
  await assertAbsent(t, key);
});

test('presigned V2: GET and PUT work until Expires; expired, tampered, unknown key and missing parameters are refused', async (t) => {
  const { bucket, raw } = t.context;
  const key = newKey('presigned');
  const expires = Math.floor(Date.now() / 1000) + 300;
  const putUrl = presignV2({ method: 'PUT', path: keyPath(bucket, key), expiresEpochSeconds: expires });
  t.is((await raw.send('PUT', putUrl, {}, 'presigned body')).status, 200);
  const getUrl = presignV2({ method: 'GET', path: keyPath(bucket, key), expiresEpochSeconds: expires });
  const got = await raw.send('GET', getUrl);
  t.is(got.status, 200, got.text);
  t.is(got.text, 'presigned body');

  // Signed with a response-* override: the override applies.
  const withOverride = presignV2({ method: 'GET', path: keyPath(bucket, key), query: 'response-content-type=text%2Fx-v2', expiresEpochSeconds: expires });
  const overridden = await raw.send('GET', withOverride);
  t.is(overridden.status, 200, overridden.text);
  t.is(overridden.headers['content-type'], 'text/x-v2');

  const expired = await raw.send('GET', presignV2({ method: 'GET', path: keyPath(bucket, key), expiresEpochSeconds: Math.floor(Date.now() / 1000) - 5 }));
  const expiredErr = expectS3Error(t, expired, 403, 'AccessDenied');
  t.is(expiredErr.message, 'Request has expired');
  t.regex(expired.text, /<Expires>[^<]+<\/Expires><ServerTime>[^<]+<\/ServerTime>/);

  const later = getUrl.replace(`Expires=${expires}`, `Expires=${expires + 1}`);
  expectS3Error(t, await raw.send('GET', later), 403, 'SignatureDoesNotMatch');
  expectS3Error(t, await raw.send('PUT', getUrl, {}, 'overwrite attempt'), 403, 'SignatureDoesNotMatch', 'a GET URL used to PUT');
  expectS3Error(t, await raw.send('GET', `${getUrl.split('?')[0]}?AWSAccessKeyId=NOSUCHKEY&Expires=${expires}&Signature=x`), 403, 'InvalidAccessKeyId');
  expectS3Error(t, await raw.send('GET', `${keyPath(bucket, key)}?AWSAccessKeyId=TS3TESTACCESSKEY&Signature=x`), 403, 'AccessDenied', 'no Expires');
  expectS3Error(t, await raw.send('GET', getUrl, { Authorization: 'AWS TS3TESTACCESSKEY:x' }), 400, 'InvalidArgument', 'two mechanisms');
  await assertBody(t, key, 'presigned body');

  // Refused presigned PUTs store nothing.
  const other = newKey('presigned-refused');
  const expiredPut = presignV2({ method: 'PUT', path: keyPath(bucket, other), expiresEpochSeconds: Math.floor(Date.now() / 1000) - 5 });
  expectS3Error(t, await raw.send('PUT', expiredPut, {}, 'late'), 403, 'AccessDenied');
  await assertAbsent(t, other);
});

test('presigned V2 is not anonymous: a presigned POST form is refused as a form with two authorizations', async (t) => {
  const { bucket, raw } = t.context;
  const boundary = 'sigv2boundary';
  const body = `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nx\r\n--${boundary}--\r\n`;
  const contentType = `multipart/form-data; boundary=${boundary}`;
  const url = presignV2({ method: 'POST', path: `/${bucket}`, headers: { 'Content-Type': contentType }, expiresEpochSeconds: Math.floor(Date.now() / 1000) + 300 });
  const res = await raw.send('POST', url, { 'Content-Type': contentType }, body);
  expectS3Error(t, res, 400, 'InvalidRequest');
  await assertAbsent(t, 'k');
});
