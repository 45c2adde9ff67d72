/**
 * Goal: bucket CORS works as AWS's: Put/Get/DeleteBucketCors, NoSuchCORSConfiguration, preflight
 * OPTIONS answered without authentication from the first matching rule (403 AccessForbidden
 * otherwise), and Access-Control-* headers on actual requests from allowed origins.
 * Method: one real server process; the SDK for configuration, plain fetch for what a browser sends.
 */
import { DeleteBucketCorsCommand, GetBucketCorsCommand, PutBucketCorsCommand, PutObjectCommand, type S3Client, } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { createTestBucket, removeDir, s3Client, s3ErrorOf, startServer, type TestServer } from '../helpers/server.ts';
import { presign } from '../helpers/signer.ts';

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

const RULES = [
  { AllowedOrigins: ['https://app.example.com'], AllowedMethods: ['GET', 'PUT'], AllowedHeaders: ['content-type', 'x-amz-*'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 600 },
  { AllowedOrigins: ['*'], AllowedMethods: ['GET'] },
];

test('Put/Get/DeleteBucketCors round-trip; NoSuchCORSConfiguration without one; bad methods rejected', async (t) => {
  const { s3 } = t.context;
  const bucket = await createTestBucket(s3, 'cors');
  t.is((await s3ErrorOf(s3.send(new GetBucketCorsCommand({ Bucket: bucket })))).name, 'NoSuchCORSConfiguration');
  await s3.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: RULES } }));
  const got = await s3.send(new GetBucketCorsCommand({ Bucket: bucket }));
  t.deepEqual(got.CORSRules?.[0]?.AllowedOrigins, ['https://app.example.com']);
  t.deepEqual(got.CORSRules?.[0]?.AllowedMethods, ['GET', 'PUT']);
  t.deepEqual(got.CORSRules?.[0]?.AllowedHeaders, ['content-type', 'x-amz-*']);
  t.deepEqual(got.CORSRules?.[0]?.ExposeHeaders, ['ETag']);
  t.is(got.CORSRules?.[0]?.MaxAgeSeconds, 600);
  t.deepEqual(got.CORSRules?.[1]?.AllowedOrigins, ['*']);
  t.is(
    (await s3ErrorOf(s3.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['*'], AllowedMethods: ['PATCH'] }] } })))).name,
    'InvalidRequest',
  );
  await s3.send(new DeleteBucketCorsCommand({ Bucket: bucket }));
  t.is((await s3ErrorOf(s3.send(new GetBucketCorsCommand({ Bucket: bucket })))).name, 'NoSuchCORSConfiguration');
});

test('preflight: allowed origin/method/headers → 200 with Access-Control-*; otherwise 403 AccessForbidden', async (t) => {
  const { s3, server } = t.context;
  const bucket = await createTestBucket(s3, 'cors');
  const preflight = (origin: string, method: string, headers?: string) =>
    fetch(`${server.url}/${bucket}/some/key`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': method, ...(headers ? { 'Access-Control-Request-Headers': headers } : {}) },
    });
  const before = await preflight('https://app.example.com', 'GET');
  t.is(before.status, 403);
  t.regex(await before.text(), /<Code>AccessForbidden<\/Code>/);
  await s3.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: RULES } }));
  const ok = await preflight('https://app.example.com', 'PUT', 'Content-Type, X-Amz-Date');
  t.is(ok.status, 200);
  t.is(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
  t.is(ok.headers.get('access-control-allow-methods'), 'GET, PUT');
  t.is(ok.headers.get('access-control-allow-headers'), 'Content-Type, X-Amz-Date');
  t.is(ok.headers.get('access-control-max-age'), '600');
  t.is(ok.headers.get('access-control-expose-headers'), 'ETag');
  t.is(ok.headers.get('access-control-allow-credentials'), 'true');
  const star = await preflight('https://other.example.org', 'GET');
  t.is(star.status, 200);
  t.is(star.headers.get('access-control-allow-origin'), '*');
  const badMethod = await preflight('https://other.example.org', 'PUT');
  t.is(badMethod.status, 403);
  t.regex(await badMethod.text(), /<Code>AccessForbidden<\/Code>/);
  const badHeader = await preflight('https://app.example.com', 'PUT', 'x-custom');
  t.is(badHeader.status, 403);
  const noOrigin = await fetch(`${server.url}/${bucket}/k`, { method: 'OPTIONS', headers: { 'Access-Control-Request-Method': 'GET' } });
  t.is(noOrigin.status, 400);
  t.regex(await noOrigin.text(), /<Code>BadRequest<\/Code>/);
});

test('actual requests from an allowed origin carry CORS headers; others do not', async (t) => {
  const { s3, server } = t.context;
  const bucket = await createTestBucket(s3, 'cors');
  await s3.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: [RULES[0]!] } }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
  // Unsigned: AccessDenied, yet the browser may read the error because the origin is allowed.
  const allowed = await fetch(`${server.url}/${bucket}/k`, { headers: { Origin: 'https://app.example.com' } });
  t.is(allowed.status, 403);
  t.is(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com');
  t.is(allowed.headers.get('access-control-expose-headers'), 'ETag');
  const other = await fetch(`${server.url}/${bucket}/k`, { headers: { Origin: 'https://evil.example.net' } });
  t.is(other.headers.get('access-control-allow-origin'), null);
  // A signed SDK request from the allowed origin gets them too.
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  let seen: string | undefined;
  const client = s3Client(server);
  client.middlewareStack.add(
    (next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers['origin'] = 'https://app.example.com';
      const out = await next(args);
      seen = (out.response as { headers: Record<string, string> }).headers['access-control-allow-origin'];
      return out;
    },
    { step: 'build' },
  );
  await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
  t.is(seen, 'https://app.example.com');
});

test('presigned requests from an allowed origin: preflight on the presigned URL, then GET and PUT carry CORS headers, and so does the 403 of an expired URL', async (t) => {
  const { s3, server } = t.context;
  const bucket = await createTestBucket(s3, 'cors');
  await s3.send(new PutBucketCorsCommand({ Bucket: bucket, CORSConfiguration: { CORSRules: [RULES[0]!] } }));
  const host = new URL(server.url).host;
  const origin = 'https://app.example.com';
  const put = presign({ method: 'PUT', host, path: `/${bucket}/up`, expiresSeconds: 300 });
  // The browser's preflight for a PUT with a Content-Type, sent to the presigned URL itself.
  const pre = await fetch(`${server.url}${put}`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' },
  });
  t.is(pre.status, 200);
  t.is(pre.headers.get('access-control-allow-origin'), origin);
  t.is(pre.headers.get('access-control-allow-headers'), 'content-type');
  const uploaded = await fetch(`${server.url}${put}`, { method: 'PUT', headers: { Origin: origin, 'Content-Type': 'text/plain' }, body: 'from a browser' });
  t.is(uploaded.status, 200, await uploaded.text());
  t.is(uploaded.headers.get('access-control-allow-origin'), origin);
  t.is(uploaded.headers.get('access-control-expose-headers'), 'ETag');
  t.truthy(uploaded.headers.get('etag'));
  const get = presign({ method: 'GET', host, path: `/${bucket}/up`, expiresSeconds: 300 });
  const got = await fetch(`${server.url}${get}`, { headers: { Origin: origin } });
  t.is(await got.text(), 'from a browser');
  t.is(got.headers.get('access-control-allow-origin'), origin);
  t.is(got.headers.get('access-control-allow-credentials'), 'true');
  const expired = presign({ method: 'GET', host, path: `/${bucket}/up`, expiresSeconds: 1, date: new Date(Date.now() - 60_000) });
  const refused = await fetch(`${server.url}${expired}`, { headers: { Origin: origin } });
  t.is(refused.status, 403);
  t.regex(await refused.text(), /<Code>AccessDenied<\/Code>/);
  t.is(refused.headers.get('access-control-allow-origin'), origin, 'the browser may read the error');
  const other = await fetch(`${server.url}${get}`, { headers: { Origin: 'https://evil.example.net' } });
  t.is(other.status, 200);
  t.is(other.headers.get('access-control-allow-origin'), null);
});
