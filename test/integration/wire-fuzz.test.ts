/**
 * Goal: no request, however odd, gets a 500 or takes the node down. Every answer to a correctly
 * signed but semantically random request is a deliberate S3 error (4xx, 501) or a success, and
 * the node serves normally afterwards.
 *
 * Method: a seeded PRNG (mulberry32; the seed is printed and can be pinned with
 * TS3GW_FUZZ_SEED) builds a bounded number of signed requests from pieces that reach deep into
 * the handlers: random methods, keys of random bytes, query parameters S3 knows with random
 * values, headers S3 knows (checksums, Content-MD5, ranges, conditions, copy source, ACL, storage
 * class, payload modes…) with plausible or broken values, and bodies that are random bytes,
 * XML, or aws-chunked (valid or corrupted). Requests go through undici in parallel with correct
 * HTTP framing; a failure message shows the request that got a 5xx, to reproduce it exactly.
 */
import { createHash } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { removeDir, startServer, type TestServer } from '../helpers/server.ts';
import {
  awsChunked,
  CHECKSUM_ALGORITHMS,
  type ChunkedMode,
  checksumOf,
  keyPath,
  parseS3Error,
  RawS3,
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  signRequest,
  uriEncode,
} from '../helpers/signer.ts';

const test = anyTest as TestFn<{ server: TestServer; raw: RawS3 }>;

const BUCKET = 'wire-fuzz';
const OTHER_BUCKET = 'wire-fuzz-other';
/** Requests per run (TS3GW_FUZZ_REQUESTS for a longer soak); FUZZ_PARALLEL in flight. Bounded so the file stays within seconds. */
const FUZZ_REQUESTS = Number(process.env['TS3GW_FUZZ_REQUESTS'] ?? 400);
const FUZZ_PARALLEL = 8;
/** An object no generated request can name (fuzz keys have no 'sentinel'). */
const SENTINEL_KEY = 'fuzz-sentinel';
const SEED = Number(process.env['TS3GW_FUZZ_SEED'] ?? Date.now() % 2 ** 31);

/** mulberry32: a small, good-enough seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test.before(async (t) => {
  const server = await startServer();
  const raw = new RawS3(server.url);
  for (const b of [BUCKET, OTHER_BUCKET]) {
    const res = await raw.signed('PUT', `/${b}`);
    if (res.status !== 200) throw new Error(`create bucket: ${res.status} ${res.text}`);
  }
  // A few objects for GET/COPY/DELETE to find, inline and chunked, and a sentinel no fuzz
  // request names, checked at the end.
  for (const [key, size] of [
    [SENTINEL_KEY, 70_000],
    ['a', 10],
    ['b/c', 70_000],
    ['big', 5 * 1024 * 1024],
  ] as const) {
    const res = await raw.signed('PUT', keyPath(BUCKET, key), { body: Buffer.alloc(size, key.charCodeAt(0)) });
    if (res.status !== 200) throw new Error(`seed ${key}: ${res.status}`);
  }
  t.context = { server, raw };
});

test.after.always(async (t) => {
  if (!t.context.server) return;
  await t.context.raw.close();
  await t.context.server.stop();
  await removeDir(t.context.server.dataDir);
});

interface FuzzRequest {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** x-amz-content-sha256 to sign with, when not the body's SHA-256. */
  payloadHash?: string;
  /** aws-chunked mode: the body is encoded after signing. */
  chunked?: { mode: ChunkedMode; data: Buffer; corrupt: boolean; trailer?: [string, string] };
}

/** Builds one random request from `rnd`. Pure given the PRNG state, so a seed replays exactly. */
async function randomRequest(rnd: () => number): Promise<FuzzRequest> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const chance = (p: number) => rnd() < p;
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));
  const randomText = (n: number) => Array.from({ length: n }, () => pick(['a', 'Z', '0', '-', '.', '/', ' ', '%', '+', '&', '=', '?', '#', '~', 'é', '\u0001', '\u00ff'])).join('');
  // Header values must be legal on the wire (undici refuses control characters in them).
  const headerText = (n: number) => Array.from({ length: n }, () => pick(['a', 'Z', '0', '-', '.', '/', '%', '+', '&', '=', '?', '#', '~', '"', ',', ';'])).join('');

  const method = pick(['GET', 'GET', 'HEAD', 'PUT', 'PUT', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH']);
  // Keys: known, random text, or random bytes (percent-encoded; may be invalid UTF-8).
  const bucket = pick([BUCKET, BUCKET, BUCKET, OTHER_BUCKET, 'no-such-bucket-x', 'Bad_Name', '']);
  let path: string;
  const keyKind = rnd();
  if (bucket === '') path = '/';
  else if (keyKind < 0.15) path = `/${bucket}`;
  else if (keyKind < 0.45) path = keyPath(bucket, pick(['a', 'b/c', 'big', 'new', 'x/../y', '//z']));
  else if (keyKind < 0.75) path = keyPath(bucket, randomText(1 + Math.floor(rnd() * 40)));
  else path = `/${bucket}/${uriEncode(randomBytes(1 + Math.floor(rnd() * 30)), true)}`;

  const queryPool: Array<() => string> = [
    () => 'list-type=2',
    () => `max-keys=${pick(['0', '1', '-5', 'abc', '1000', '1001', '99999999999999999999'])}`,
    () => `prefix=${encodeURIComponent(randomText(3))}`,
    () => `delimiter=${encodeURIComponent(pick(['/', '', 'a', randomText(2)]))}`,
    () => `continuation-token=${encodeURIComponent(pick(['YQ', '', '!!', randomText(5)]))}`,
    () => `start-after=${encodeURIComponent(randomText(3))}`,
    () => `marker=${encodeURIComponent(randomText(3))}`,
    () => `encoding-type=${pick(['url', 'URL', 'x'])}`,
    () => 'fetch-owner=true',
    () => 'location',
    () => 'delete',
    () => pick(['acl', 'tagging', 'uploads', 'versioning', 'cors', 'attributes', 'versions', 'torrent', 'policy']),
    () => `uploadId=${encodeURIComponent(pick(['', 'x', randomText(4)]))}`,
    () => `partNumber=${pick(['1', '0', '-1', '10001', 'x'])}`,
    () => `versionId=${pick(['null', 'x'])}`,
    () => `response-content-type=${encodeURIComponent(pick(['text/plain', 'x', ' a b ', randomText(4)]))}`,
    () => `response-expires=${encodeURIComponent(pick(['0', 'Thu, 01 Jan 2037 00:00:00 GMT', 'never', randomText(4)]))}`,
  ];
  const query = Array.from({ length: Math.floor(rnd() * 3) }, () => pick(queryPool)()).join('&');

  const headers: Record<string, string> = {};
  const headerPool: Array<() => void> = [
    () => {
      headers['range'] = pick(['bytes=0-0', 'bytes=5-', 'bytes=-3', 'bytes=9999999-', 'bytes=3-1', 'bytes=0-1,4-5', 'bytes=x', 'items=0-1']);
    },
    () => {
      headers['if-match'] = pick(['*', '"abc"', 'garbage']);
    },
    () => {
      headers['if-none-match'] = pick(['*', '"abc"', '']);
    },
    () => {
      headers['if-modified-since'] = pick(['Wed, 21 Oct 2015 07:28:00 GMT', 'not a date', '0']);
    },
    () => {
      headers['if-unmodified-since'] = pick(['Wed, 21 Oct 2015 07:28:00 GMT', 'not a date']);
    },
    () => {
      headers['x-amz-copy-source'] = pick([`${BUCKET}/a`, `/${BUCKET}/big`, `${OTHER_BUCKET}/missing`, 'nobucket', '/', `${BUCKET}/a?versionId=x`, `${BUCKET}/%zz`, headerText(8)]);
    },
    () => {
      headers['x-amz-metadata-directive'] = pick(['COPY', 'REPLACE', 'MOVE']);
    },
    () => {
      headers['x-amz-copy-source-if-match'] = pick(['"x"', '*']);
    },
    () => {
      headers['content-md5'] = pick(['', 'AAAA', '1B2M2Y8AsgTpgAmY7PhCfg==', headerText(24)]);
    },
    () => {
      headers[`x-amz-checksum-${pick(CHECKSUM_ALGORITHMS).toLowerCase()}`] = pick(['', 'AAAAAA==', 'AAAAAAAAAAA=', '!!!', headerText(12)]);
    },
    () => {
      headers['x-amz-sdk-checksum-algorithm'] = pick(['CRC32', 'crc64nvme', 'MD5', '']);
    },
    () => {
      headers['x-amz-trailer'] = pick(['x-amz-checksum-crc32', 'x-amz-checksum-foo', 'x-amz-checksum-crc32,x-amz-checksum-sha1']);
    },
    () => {
      headers['x-amz-acl'] = pick(['private', 'public-read', '']);
    },
    () => {
      headers['x-amz-storage-class'] = pick(['STANDARD', 'GLACIER', 'nope']);
    },
    () => {
      headers['x-amz-tagging'] = 'a=b';
    },
    () => {
      headers['x-amz-server-side-encryption'] = 'AES256';
    },
    () => {
      headers['content-type'] = pick(['text/plain', 'multipart/form-data; boundary=x', 'application/xml', 'a/b; charset', 'x/y;;', '', 'text', headerText(6)]);
    },
    () => {
      headers['content-encoding'] = pick(['gzip', 'aws-chunked', 'aws-chunked,gzip', '']);
    },
    () => {
      headers[`x-amz-meta-${pick(['a', 'long', 'x-y'])}`] = pick(['v', 'x'.repeat(2100), '']);
    },
    () => {
      headers['x-amz-decoded-content-length'] = pick(['0', '5', '-1', 'abc', '99999999999999999']);
    },
    () => {
      headers['x-amz-checksum-mode'] = 'ENABLED';
    },
  ];
  for (let i = Math.floor(rnd() * 4); i > 0; i--) pick(headerPool)();

  const req: FuzzRequest = { method, path, query, headers, body: undefined };
  const bodyKind = rnd();
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') {
    if (bodyKind < 0.1) req.body = randomBytes(10);
  } else if (bodyKind < 0.3) {
    req.body = randomBytes(Math.floor(rnd() * 100_000));
  } else if (bodyKind < 0.5) {
    const key = pick(['a', 'b/c', randomText(5), '']);
    req.body = Buffer.from(
      pick([
        `<Delete><Object><Key>${key}</Key></Object></Delete>`,
        `<Delete><Quiet>true</Quiet>${'<Object><Key>k</Key></Object>'.repeat(Math.floor(rnd() * 1200))}</Delete>`,
        `<CreateBucketConfiguration><LocationConstraint>${pick(['us-east-1', 'eu-west-1', ''])}</LocationConstraint></CreateBucketConfiguration>`,
        `<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>`,
        `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>`,
        '<Delete><Object><Key>&#0;</Key></Object></Delete>',
        '<unclosed',
      ]),
    );
  } else if (bodyKind < 0.75) {
    const mode = pick([STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER] as const);
    const data = randomBytes(Math.floor(rnd() * 200_000));
    const algorithm = pick(CHECKSUM_ALGORITHMS);
    const trailer: [string, string] | undefined =
      mode === STREAMING_SIGNED ? undefined : [`x-amz-checksum-${algorithm.toLowerCase()}`, chance(0.7) ? await checksumOf(algorithm, data) : 'AAAAAA=='];
    req.chunked = { mode, data, corrupt: chance(0.3), ...(trailer ? { trailer } : {}) };
    req.payloadHash = mode;
    headers['content-encoding'] ??= 'aws-chunked';
    headers['x-amz-decoded-content-length'] ??= String(data.length + (chance(0.1) ? 1 : 0));
    if (trailer) headers['x-amz-trailer'] ??= trailer[0];
  } else if (bodyKind < 0.85) {
    req.payloadHash = pick(['UNSIGNED-PAYLOAD', 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD', 'nonsense', createHash('sha256').update('x').digest('hex')]);
    req.body = randomBytes(Math.floor(rnd() * 1000));
  }
  return req;
}

/** Signs and sends one fuzz request; returns status and body text. */
async function send(raw: RawS3, r: FuzzRequest): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const signed = signRequest({
    method: r.method,
    host: raw.host,
    path: r.path,
    query: r.query,
    headers: r.headers,
    ...(r.payloadHash ? { payloadHash: r.payloadHash } : { body: r.body ?? '' }),
  });
  let body = r.body;
  if (r.chunked) {
    const c = awsChunked(r.chunked.data, {
      mode: r.chunked.mode,
      chunkSizeBytes: 64 * 1024,
      signing: signed.signing,
      ...(r.chunked.trailer ? { trailers: [r.chunked.trailer] } : {}),
    });
    body = c.body;
    if (r.chunked.corrupt && body.length > 0) {
      const at = Math.floor(body.length / 3);
      body[at] = body[at]! ^ 0x04;
    }
  }
  const pathAndQuery = r.query ? `${r.path}?${r.query}` : r.path;
  return raw.send(r.method, pathAndQuery, signed.headers, body);
}

function describe(r: FuzzRequest): string {
  const body = r.chunked
    ? `aws-chunked ${r.chunked.mode} ${r.chunked.data.length} B${r.chunked.corrupt ? ' (corrupted)' : ''}${r.chunked.trailer ? ` trailer ${r.chunked.trailer.join(':')}` : ''}`
    : r.body
      ? `${r.body.length} B: ${JSON.stringify(r.body.subarray(0, 120).toString('latin1'))}`
      : 'no body';
  return `${r.method} ${r.path}${r.query ? `?${r.query}` : ''} headers=${JSON.stringify(r.headers).slice(0, 400)} payload=${r.payloadHash ?? 'sha256'} body=${body}`;
}

test(`${FUZZ_REQUESTS} random signed requests: never a 500, always S3 XML errors, node healthy afterwards`, async (t) => {
  const { raw, server } = t.context;
  t.log(`seed ${SEED} (replay with TS3GW_FUZZ_SEED=${SEED})`);
  const rnd = prng(SEED);
  // Requests are generated up front, in order, so a seed replays exactly despite parallelism.
  const requests: FuzzRequest[] = [];
  for (let i = 0; i < FUZZ_REQUESTS; i++) requests.push(await randomRequest(rnd));
  const clients = Array.from({ length: FUZZ_PARALLEL }, () => new RawS3(server.url));
  const statuses = new Map<number, number>();
  const serverErrors: string[] = [];
  const transportErrors: string[] = [];
  let next = 0;
  await Promise.all(
    clients.map(async (client) => {
      for (let i = next++; i < requests.length; i = next++) {
        const r = requests[i]!;
        try {
          const res = await send(client, r);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500 && res.status !== 501 && res.status !== 503) {
            serverErrors.push(`#${i} → ${res.status} ${res.text.slice(0, 300)}\n    ${describe(r)}`);
          }
          if (res.status >= 400 && r.method !== 'HEAD') {
            const err = parseS3Error(res.text);
            if (!err.code || err.requestId !== res.headers['x-amz-request-id']) {
              serverErrors.push(`#${i} → ${res.status} without a proper S3 XML error: ${res.text.slice(0, 200)}\n    ${describe(r)}`);
            }
          }
        } catch (err) {
          // A server may legitimately close the connection early (e.g. after answering before
          // the body was read); that is not a crash, but it is recorded and shown.
          transportErrors.push(`#${i} ${(err as Error).message}: ${describe(r)}`);
        }
      }
    }),
  );
  await Promise.all(clients.map((c) => c.close()));
  t.log(`statuses: ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; transport errors: ${transportErrors.length}`);
  for (const e of transportErrors.slice(0, 20)) t.log(`transport: ${e.slice(0, 400)}`);
  t.deepEqual(serverErrors, [], `requests that got 5xx or a non-S3 error (seed ${SEED})`);
  t.is(server.proc.exitCode, null, 'server process alive');
  t.is((await raw.send('GET', '/health/live')).status, 200);
  const sentinel = await raw.signed('GET', keyPath(BUCKET, SENTINEL_KEY));
  t.true(sentinel.body.equals(Buffer.alloc(70_000, SENTINEL_KEY.charCodeAt(0))), 'an object no request named is intact');
});
