/**
 * Goal: browser form uploads (PostObject) work as AWS's: a SigV4- or SigV2-signed POST policy
 * authorizes the upload (expiration, eq / starts-with / content-length-range conditions matched on
 * case-insensitive field names, ${filename} expanded first, escaped values, extra fields refused
 * except x-ignore-*; tagging and checksum fields honoured),
 * success_action_status and success_action_redirect shape the answer, and every failure has AWS's
 * error code. Method: one real server process; forms built with FormData and signed with the
 * independent test signer's key derivation; the uploaded object read back with the SDK.
 */
import { createHash, createHmac } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { hmacSha1Base64, signingKeyOf } from '../helpers/signer.ts';
import { removeDir, s3Client, startServer, TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY, type TestServer } from '../helpers/server.ts';

const test = anyTest as TestFn<{ server: TestServer; s3: S3Client; bucket: string }>;

test.before(async (t) => {
  const server = await startServer();
  const s3 = s3Client(server);
  const bucket = `post-${process.pid}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  t.context = { server, s3, bucket };
});

test.after.always(async (t) => {
  if (!t.context.server) return;
  await t.context.server.stop();
  await removeDir(t.context.server.dataDir);
});

interface FormOptions {
  conditions?: unknown[];
  expiration?: Date;
  fields?: Record<string, string>;
  secret?: string;
  accessKey?: string;
  omit?: string[];
  tamper?: boolean;
}

/** Builds a signed form: policy fields first, then `fields`, then the file. */
function signedForm(bucket: string, file: Blob, filename: string, opts: FormOptions = {}): FormData {
  const now = new Date();
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const credential = `${opts.accessKey ?? TEST_ACCESS_KEY}/${date}/${TEST_REGION}/s3/aws4_request`;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: S3's literal ${filename} form variable
  const fields: Record<string, string> = { key: 'uploads/${filename}', ...opts.fields };
  const conditions = opts.conditions ?? [
    { bucket },
    ['starts-with', '$key', 'uploads/'],
    { 'x-amz-algorithm': 'AWS4-HMAC-SHA256' },
    { 'x-amz-credential': credential },
    { 'x-amz-date': amzDate },
    ...Object.keys(opts.fields ?? {}).map((k) => ['starts-with', `$${k}`, '']),
  ];
  const policy = Buffer.from(JSON.stringify({ expiration: (opts.expiration ?? new Date(Date.now() + 600_000)).toISOString(), conditions })).toString('base64');
  const sig = createHmac('sha256', signingKeyOf(opts.secret ?? TEST_SECRET_KEY, date, TEST_REGION)).update(opts.tamper ? `${policy} ` : policy).digest('hex');
  const all: Record<string, string> = {
    ...fields,
    policy,
    'x-amz-algorithm': 'AWS4-HMAC-SHA256',
    'x-amz-credential': credential,
    'x-amz-date': amzDate,
    'x-amz-signature': sig,
  };
  const form = new FormData();
  for (const [k, v] of Object.entries(all)) if (!opts.omit?.includes(k)) form.append(k, v);
  form.append('file', file, filename);
  return form;
}

async function post(url: string, form: FormData): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', body: form, redirect: 'manual' });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

const codeOf = (xml: string) => /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];

test('a signed form upload stores the file under the key (with the filename variable); 204 by default, 201 with XML', async (t) => {
  const { server, s3, bucket } = t.context;
  const body = new Blob(['hello from a browser']);
  const r204 = await post(`${server.url}/${bucket}`, signedForm(bucket, body, 'hello.txt', { fields: { 'Content-Type': 'text/plain', 'x-amz-meta-origin': 'form' } }));
  t.is(r204.status, 204, r204.text);
  t.truthy(r204.headers.get('etag'));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'uploads/hello.txt' }));
  t.is(await got.Body!.transformToString(), 'hello from a browser');
  t.is(got.ContentType, 'text/plain');
  t.deepEqual(got.Metadata, { origin: 'form' });
  const r201 = await post(`${server.url}/${bucket}`, signedForm(bucket, body, 'b.txt', { fields: { success_action_status: '201' } }));
  t.is(r201.status, 201);
  t.regex(r201.text, /<PostResponse><Location>[^<]+<\/Location><Bucket>post-\d+<\/Bucket><Key>uploads\/b.txt<\/Key><ETag>&quot;[0-9a-f]{32}&quot;<\/ETag><\/PostResponse>/);
  const r200 = await post(`${server.url}/${bucket}`, signedForm(bucket, body, 'c.txt', { fields: { success_action_status: '200' } }));
  t.is(r200.status, 200);
  const redirect = await post(`${server.url}/${bucket}`, signedForm(bucket, body, 'd.txt', { fields: { success_action_redirect: 'https://app.example.com/done' } }));
  t.is(redirect.status, 303);
  const location = new URL(redirect.headers.get('location')!);
  t.is(location.origin + location.pathname, 'https://app.example.com/done');
  t.is(location.searchParams.get('key'), 'uploads/d.txt');
  t.is(location.searchParams.get('bucket'), bucket);
});

test('policy failures: expired, condition failed, extra field, size range, bad signature, unknown key, missing fields', async (t) => {
  const { server, bucket } = t.context;
  const url = `${server.url}/${bucket}`;
  const file = new Blob(['0123456789']);
  const expired = await post(url, signedForm(bucket, file, 'x', { expiration: new Date(Date.now() - 1000) }));
  t.is(expired.status, 403);
  t.is(codeOf(expired.text), 'AccessDenied');
  t.regex(expired.text, /Policy expired/);
  const wrongPrefix = await post(url, signedForm(bucket, file, 'x', { fields: { key: 'elsewhere/x' } }));
  t.is(codeOf(wrongPrefix.text), 'AccessDenied');
  t.regex(wrongPrefix.text, /Policy Condition failed/);
  const otherBucket = await post(url, signedForm(bucket, file, 'x', { conditions: [{ bucket: 'someone-else' }, ['starts-with', '$key', '']] }));
  t.is(codeOf(otherBucket.text), 'AccessDenied');
  const extra = signedForm(bucket, file, 'x', {
    conditions: [{ bucket }, ['starts-with', '$key', ''], ['starts-with', '$x-amz-algorithm', ''], ['starts-with', '$x-amz-credential', ''], ['starts-with', '$x-amz-date', '']],
    fields: { 'x-amz-meta-sneaky': 'yes' },
  });
  const extraRes = await post(url, extra);
  t.is(codeOf(extraRes.text), 'AccessDenied');
  t.regex(extraRes.text, /Extra input fields: x-amz-meta-sneaky/);
  const base = (range: [number, number]) => [
    { bucket },
    ['starts-with', '$key', ''],
    ['starts-with', '$x-amz-algorithm', ''],
    ['starts-with', '$x-amz-credential', ''],
    ['starts-with', '$x-amz-date', ''],
    ['content-length-range', ...range],
  ];
  const tooBig = await post(url, signedForm(bucket, file, 'x', { conditions: base([0, 5]) }));
  t.is(tooBig.status, 400);
  t.is(codeOf(tooBig.text), 'EntityTooLarge');
  const tooSmall = await post(url, signedForm(bucket, file, 'x', { conditions: base([11, 100]) }));
  t.is(codeOf(tooSmall.text), 'EntityTooSmall');
  t.is((await post(url, signedForm(bucket, file, 'x', { conditions: base([10, 10]) }))).status, 204);
  const tampered = await post(url, signedForm(bucket, file, 'x', { tamper: true }));
  t.is(tampered.status, 403);
  t.is(codeOf(tampered.text), 'SignatureDoesNotMatch');
  const unknownKey = await post(url, signedForm(bucket, file, 'x', { accessKey: 'NOSUCHKEY' }));
  t.is(codeOf(unknownKey.text), 'InvalidAccessKeyId');
  const noPolicy = await post(url, signedForm(bucket, file, 'x', { omit: ['policy'] }));
  t.is(codeOf(noPolicy.text), 'AccessDenied');
  const noSig = await post(url, signedForm(bucket, file, 'x', { omit: ['x-amz-signature'] }));
  t.is(codeOf(noSig.text), 'InvalidArgument');
  const noKey = await post(url, signedForm(bucket, file, 'x', { omit: ['key'] }));
  t.is(codeOf(noKey.text), 'InvalidArgument');
  const noSuchBucket = await post(`${server.url}/no-such-bucket-post`, signedForm('no-such-bucket-post', file, 'x'));
  t.is(codeOf(noSuchBucket.text), 'NoSuchBucket');
});

// ---------------------------------------------------------------------------------------------
// Signature Version 2 forms, and the policy rules of issue #16 (both signature versions).

interface V2FormOptions {
  /** The policy's JSON text as sent (escapes kept); built from `conditions` when absent. */
  policyText?: string;
  conditions?: unknown[];
  expiration?: Date;
  /** Form fields before the file, in order, names as given (case kept). */
  fields?: Array<[string, string]>;
  secret?: string;
  accessKey?: string;
  tamper?: boolean;
  /** Send the content as a plain `file` field (a <textarea>), not as a file part. */
  fileAsField?: string;
}

/** A SigV2 form: the fields, AWSAccessKeyId, Policy, Signature (HMAC-SHA1 of the base64 policy), then the file. */
function signedFormV2(file: Blob, filename: string, opts: V2FormOptions = {}): FormData {
  const text = opts.policyText ?? JSON.stringify({ expiration: (opts.expiration ?? new Date(Date.now() + 600_000)).toISOString(), conditions: opts.conditions ?? [] });
  const policy = Buffer.from(text).toString('base64');
  const sig = hmacSha1Base64(opts.secret ?? TEST_SECRET_KEY, opts.tamper ? `${policy} ` : policy);
  const form = new FormData();
  for (const [k, v] of opts.fields ?? []) form.append(k, v);
  form.append('AWSAccessKeyId', opts.accessKey ?? TEST_ACCESS_KEY);
  form.append('Policy', policy);
  form.append('Signature', sig);
  if (opts.fileAsField !== undefined) form.append('file', opts.fileAsField);
  else form.append('file', file, filename);
  // Fields after the file are ignored, as S3 does (a browser's submit button).
  form.append('submit', 'Upload to Amazon S3');
  return form;
}

async function absent(t: ExecutionContext<{ s3: S3Client; bucket: string }>, key: string): Promise<void> {
  const err = await t.throwsAsync(t.context.s3.send(new HeadObjectCommand({ Bucket: t.context.bucket, Key: key })));
  t.is((err as { name?: string }).name, 'NotFound', `${key} must not exist`);
}

test('SigV2 form: AWSAccessKeyId + Signature (HMAC-SHA1 of the policy), mixed-case field names, the filename variable, redirect', async (t) => {
  const { server, s3, bucket } = t.context;
  // Modeled on AWS's HTTPPOSTExamples form: policy fields in one case, form fields in another.
  const form = signedFormV2(new Blob(['v2 form body']), 'MyPicture.jpg', {
    conditions: [
      { Bucket: bucket },
      ['starts-with', '$key', 'user/eric/'],
      { success_action_redirect: 'https://app.example.com/ok.html' },
      ['starts-with', '$Content-Type', 'image/'],
      { 'x-amz-meta-uuid': '14365123651274' },
      ['starts-with', '$x-amz-meta-tag', ''],
    ],
    fields: [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: S3's literal ${filename} form variable
      ['Key', 'user/eric/${filename}'],
      ['success_action_redirect', 'https://app.example.com/ok.html'],
      ['content-type', 'image/jpeg'],
      ['X-Amz-Meta-UUID', '14365123651274'],
      ['x-amz-meta-tag', 'Some,Tag,For,Picture'],
    ],
  });
  const res = await post(`${server.url}/${bucket}`, form);
  t.is(res.status, 303, res.text);
  const location = new URL(res.headers.get('location')!);
  t.is(location.searchParams.get('key'), 'user/eric/MyPicture.jpg');
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'user/eric/MyPicture.jpg' }));
  t.is(await got.Body!.transformToString(), 'v2 form body');
  t.is(got.ContentType, 'image/jpeg');
  t.deepEqual(got.Metadata, { uuid: '14365123651274', tag: 'Some,Tag,For,Picture' });
});

test('SigV2 form refusals: bad signature, unknown key, wrong bucket, expired policy, missing Signature — nothing stored', async (t) => {
  const { server, bucket } = t.context;
  const url = `${server.url}/${bucket}`;
  const file = new Blob(['nope']);
  const ok: V2FormOptions = { conditions: [{ bucket }, ['eq', '$key', 'v2/refused']], fields: [['key', 'v2/refused']] };
  const tampered = await post(url, signedFormV2(file, 'x', { ...ok, tamper: true }));
  t.is(tampered.status, 403);
  t.is(codeOf(tampered.text), 'SignatureDoesNotMatch');
  const wrongSecret = await post(url, signedFormV2(file, 'x', { ...ok, secret: 'not-the-secret' }));
  t.is(codeOf(wrongSecret.text), 'SignatureDoesNotMatch');
  const unknown = await post(url, signedFormV2(file, 'x', { ...ok, accessKey: 'NOSUCHKEY' }));
  t.is(unknown.status, 403);
  t.is(codeOf(unknown.text), 'InvalidAccessKeyId');
  const otherBucket = await post(url, signedFormV2(file, 'x', { ...ok, conditions: [{ bucket: 'someone-else' }, ['eq', '$key', 'v2/refused']] }));
  t.is(otherBucket.status, 403);
  t.is(codeOf(otherBucket.text), 'AccessDenied');
  t.regex(otherBucket.text, /Policy Condition failed: \[&quot;eq&quot;, &quot;\$bucket&quot;, &quot;someone-else&quot;\]/);
  const expired = await post(url, signedFormV2(file, 'x', { ...ok, expiration: new Date(Date.now() - 1000) }));
  t.is(expired.status, 403);
  t.regex(expired.text, /Policy expired/);
  const noSig = new FormData();
  noSig.append('key', 'v2/refused');
  noSig.append('AWSAccessKeyId', TEST_ACCESS_KEY);
  noSig.append('Policy', Buffer.from('{}').toString('base64'));
  noSig.append('file', file, 'x');
  const noSigRes = await post(url, noSig);
  t.is(noSigRes.status, 400);
  t.is(codeOf(noSigRes.text), 'InvalidArgument');
  await absent(t, 'v2/refused');
});

test('policy: the filename variable is expanded before conditions are checked; escaped values; x-ignore-* fields ignored', async (t) => {
  const { server, s3, bucket } = t.context;
  const url = `${server.url}/${bucket}`;
  // An eq condition on the expanded key: AWS expands variables before validating the policy.
  const expanded = await post(
    url,
    signedFormV2(new Blob(['expanded']), 'photo.png', {
      conditions: [{ bucket }, ['eq', '$key', 'exact/photo.png']],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: S3's literal ${filename} form variable
      fields: [['key', 'exact/${filename}'], ['x-ignore-tracking', 'abc'], ['X-Ignore-Other', 'def']],
    }),
  );
  t.is(expanded.status, 204, expanded.text);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'exact/photo.png' }));
  t.deepEqual(head.Metadata, {}, 'x-ignore-* fields are neither checked nor stored');
  // `\$` is AWS's escape for a literal dollar sign, `\u00e9` and `\\` are JSON's.
  const expiration = new Date(Date.now() + 600_000).toISOString();
  const policyText = `{"expiration": "${expiration}", "conditions": [{"bucket": "${bucket}"}, ["starts-with", "$key", "price/\\$5/"], {"x-amz-meta-note": "caf\\u00e9 \\\\ ok"}]}`;
  const escaped = await post(url, signedFormV2(new Blob(['esc']), 'e', { policyText, fields: [['key', 'price/$5/e'], ['x-amz-meta-note', 'café \\ ok']] }));
  t.is(escaped.status, 204, escaped.text);
  const got = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'price/$5/e' }));
  t.is(got.Metadata?.['note'], 'café \\ ok');
  const mismatch = await post(url, signedFormV2(new Blob(['esc']), 'e', { policyText, fields: [['key', 'price/5/e'], ['x-amz-meta-note', 'café \\ ok']] }));
  t.is(codeOf(mismatch.text), 'AccessDenied');
  // A field the policy does not cover is refused (x-ignore-* excepted), with its name.
  const extra = await post(url, signedFormV2(new Blob(['x']), 'x', { conditions: [{ bucket }, ['starts-with', '$key', '']], fields: [['key', 'extra/x'], ['Cache-Control', 'no-cache']] }));
  t.is(extra.status, 403);
  t.regex(extra.text, /Extra input fields: cache-control/);
  await absent(t, 'extra/x');
});

test('policy: content-length-range is enforced on the streamed file; EntityTooLarge / EntityTooSmall store nothing', async (t) => {
  const { server, bucket } = t.context;
  const url = `${server.url}/${bucket}`;
  const range = (min: number | string, max: number | string, key: string) => ({
    conditions: [{ bucket }, ['eq', '$key', key], ['content-length-range', min, max]],
    fields: [['key', key]] as Array<[string, string]>,
  });
  // 300 KiB: larger than one read, so the limit trips mid-stream.
  const big = new Blob([Buffer.alloc(300 * 1024, 7)]);
  const tooBig = await post(url, signedFormV2(big, 'big', range(0, 100 * 1024, 'range/big')));
  t.is(tooBig.status, 400, tooBig.text);
  t.is(codeOf(tooBig.text), 'EntityTooLarge');
  t.regex(tooBig.text, /<MaxSizeAllowed>102400<\/MaxSizeAllowed>/);
  await absent(t, 'range/big');
  const tooSmall = await post(url, signedFormV2(new Blob(['tiny']), 'small', range('10', '20', 'range/small')));
  t.is(codeOf(tooSmall.text), 'EntityTooSmall');
  t.regex(tooSmall.text, /<ProposedSize>4<\/ProposedSize><MinSizeAllowed>10<\/MinSizeAllowed>/);
  await absent(t, 'range/small');
  const exact = await post(url, signedFormV2(new Blob(['0123456789']), 'exact', range(10, 10, 'range/exact')));
  t.is(exact.status, 204, exact.text);
});

test('form fields: tagging (XML) is stored; malformed or invalid tagging is refused and stores nothing', async (t) => {
  const { server, s3, bucket } = t.context;
  const url = `${server.url}/${bucket}`;
  const withTagging = (key: string, xml: string) =>
    signedFormV2(new Blob(['tagged']), 't', { conditions: [{ bucket }, ['eq', '$key', key], ['starts-with', '$tagging', '']], fields: [['key', key], ['tagging', xml]] });
  const xml = '<Tagging><TagSet><Tag><Key>team</Key><Value>web &#43; mobile</Value></Tag><Tag><Key>env</Key><Value>prod</Value></Tag></TagSet></Tagging>';
  const ok = await post(url, withTagging('tags/ok', xml));
  t.is(ok.status, 204, ok.text);
  const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: 'tags/ok' }));
  t.deepEqual(
    (tags.TagSet ?? []).map((x) => [x.Key, x.Value]).sort(),
    [['env', 'prod'], ['team', 'web + mobile']],
  );
  const malformed = await post(url, withTagging('tags/bad', '<Tagging><TagSet><Tag><Key>a'));
  t.is(malformed.status, 400);
  t.is(codeOf(malformed.text), 'MalformedXML');
  const invalid = await post(url, withTagging('tags/bad', '<Tagging><TagSet><Tag><Key>aws:x</Key><Value>1</Value></Tag></TagSet></Tagging>'));
  t.is(codeOf(invalid.text), 'InvalidTag');
  await absent(t, 'tags/bad');
});

test('form fields: x-amz-checksum-* is verified (BadDigest, nothing stored) and stored; x-amz-checksum-algorithm computes one', async (t) => {
  const { server, s3, bucket } = t.context;
  const url = `${server.url}/${bucket}`;
  const body = 'checksummed form body';
  const sha256 = createHash('sha256').update(body).digest('base64');
  const form = (key: string, fields: Array<[string, string]>) =>
    signedFormV2(new Blob([body]), 'c', {
      conditions: [{ bucket }, ['eq', '$key', key], ...fields.map(([k]) => ['starts-with', `$${k}`, ''])],
      fields: [['key', key], ...fields],
    });
  const good = await post(url, form('sum/good', [['x-amz-checksum-sha256', sha256]]));
  t.is(good.status, 204, good.text);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'sum/good', ChecksumMode: 'ENABLED' }));
  t.is(head.ChecksumSHA256, sha256);
  const bad = await post(url, form('sum/bad', [['x-amz-checksum-sha256', createHash('sha256').update('other').digest('base64')]]));
  t.is(bad.status, 400);
  t.is(codeOf(bad.text), 'BadDigest');
  await absent(t, 'sum/bad');
  const malformed = await post(url, form('sum/bad', [['x-amz-checksum-crc32', 'not base64!']]));
  t.is(codeOf(malformed.text), 'InvalidRequest');
  const badMd5 = await post(url, form('sum/bad', [['Content-MD5', createHash('md5').update('other').digest('base64')]]));
  t.is(codeOf(badMd5.text), 'BadDigest');
  await absent(t, 'sum/bad');
  const computed = await post(url, form('sum/computed', [['x-amz-checksum-algorithm', 'CRC32']]));
  t.is(computed.status, 204, computed.text);
  const head2 = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'sum/computed', ChecksumMode: 'ENABLED' }));
  t.truthy(head2.ChecksumCRC32);
});

test('form fields asking for unsupported features are refused (501), never ignored; an acl field follows the bucket\'s Object Ownership', async (t) => {
  const { server, s3, bucket } = t.context;
  const sse = await post(
    `${server.url}/${bucket}`,
    signedFormV2(new Blob(['x']), 'x', {
      conditions: [{ bucket }, ['eq', '$key', 'sse/x'], { 'x-amz-server-side-encryption': 'AES256' }],
      fields: [['key', 'sse/x'], ['x-amz-server-side-encryption', 'AES256']],
    }),
  );
  t.is(sse.status, 501, sse.text);
  t.is(codeOf(sse.text), 'NotImplemented');
  await absent(t, 'sse/x');
  // The test bucket is BucketOwnerEnforced (the default): ACLs are disabled.
  const form = (b: string) =>
    signedFormV2(new Blob(['x']), 'x', { conditions: [{ bucket: b }, ['eq', '$key', 'acl/x'], { acl: 'public-read' }], fields: [['key', 'acl/x'], ['acl', 'public-read']] });
  const refused = await post(`${server.url}/${bucket}`, form(bucket));
  t.is(refused.status, 400, refused.text);
  t.is(codeOf(refused.text), 'AccessControlListNotSupported');
  await absent(t, 'acl/x');
  const writer = `${bucket}-ow`;
  await s3.send(new CreateBucketCommand({ Bucket: writer, ObjectOwnership: 'ObjectWriter' }));
  t.is((await post(`${server.url}/${writer}`, form(writer))).status, 204);
  t.is((await fetch(`${server.url}/${writer}/acl/x`)).status, 200, 'public-read: an unsigned GET reads it');
});

test('SigV2 text-area upload (AWS example): a plain `file` field is the content', async (t) => {
  const { server, s3, bucket } = t.context;
  const res = await post(
    `${server.url}/${bucket}`,
    signedFormV2(new Blob([]), '', {
      conditions: [{ bucket }, ['starts-with', '$key', 'user/eric/'], ['eq', '$Content-Type', 'text/html'], ['starts-with', '$x-amz-meta-tag', '']],
      fields: [['key', 'user/eric/NewEntry.html'], ['Content-Type', 'text/html'], ['x-amz-meta-tag', 'Interesting Post']],
      fileAsField: '<p>Your blog post goes here.</p>',
    }),
  );
  t.is(res.status, 204, res.text);
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'user/eric/NewEntry.html' }));
  t.is(await got.Body!.transformToString(), '<p>Your blog post goes here.</p>');
  t.is(got.ContentType, 'text/html');
});
