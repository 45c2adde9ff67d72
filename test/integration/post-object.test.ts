/**
 * Goal: browser form uploads (PostObject) work as AWS's: a SigV4-signed POST policy authorizes the
 * upload (expiration, eq / starts-with / content-length-range conditions, extra fields refused),
 * success_action_status and success_action_redirect shape the answer, and every failure has AWS's
 * error code. Method: one real server process; forms built with FormData and signed with the
 * independent test signer's key derivation; the uploaded object read back with the SDK.
 */
import { createHmac } from 'node:crypto';
import { GetObjectCommand, CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { signingKeyOf } from '../helpers/signer.ts';
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
