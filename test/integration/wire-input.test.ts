/**
 * Goal: bad input gets an S3 error, changes nothing, and never crashes the node. Odd but legal
 * keys (`..`, `./`, `//`, control characters, NFC vs NFD, 1024 bytes) are stored as opaque keys
 * and never become file paths; illegal ones (NUL, 1025 bytes, bad bucket names) are refused;
 * broken framing (Content-Length lies, disconnects, bad aws-chunked, oversized heads, garbage
 * methods) is refused with S3 XML and leaves no object and no temp file behind; racing PUTs of
 * one key leave exactly one intact body.
 *
 * Method: one real server process per file. Requests are signed by test/helpers/signer.ts and
 * sent through undici (paths verbatim) or, for broken framing, written byte by byte on a raw
 * TCP socket. After each bad input the test checks the key is absent (or intact) and that the
 * node still answers (GET /health/live and a signed ListBuckets). Tests that watch
 * `<dataDir>/chunks/tmp` run serially so no other upload is in flight.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { removeDir, s3Client, startServer, type TestServer } from '../helpers/server.ts';
import {
  awsChunked,
  completeResponses,
  expectS3Error,
  httpHead,
  keyPath,
  parseS3Error,
  RAW_EXCHANGE_TIMEOUT_MS,
  RawS3,
  rawExchange,
  rawStatuses,
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  signRequest,
  streamingPut,
} from '../helpers/signer.ts';

interface Ctx {
  server: TestServer;
  raw: RawS3;
  s3: S3Client;
  bucket: string;
}
const test = anyTest as TestFn<Ctx>;

/** How long a test waits for the server to settle (temp files removed) before failing. */
const SETTLE_DEADLINE_MS = 5000;
const KEY_BYTES_MAX = 1024;
/** Attempts of the lingering-close check; without the fix each lost its answer with p ≈ 0.3. */
const RST_ATTEMPTS = 8;

test.before(async (t) => {
  const server = await startServer();
  const raw = new RawS3(server.url);
  const bucket = 'wire-input';
  const res = await raw.signed('PUT', `/${bucket}`);
  if (res.status !== 200) throw new Error(`create bucket: ${res.status} ${res.text}`);
  t.context = { server, raw, s3: s3Client(server), bucket };
});

test.after.always(async (t) => {
  if (!t.context.server) return;
  t.context.s3.destroy();
  await t.context.raw.close();
  await t.context.server.stop();
  await removeDir(t.context.server.dataDir);
});

let keySeq = 0;
const newKey = (label: string) => `${label}-${++keySeq}`;
const md5Hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const md5b64 = (b: Uint8Array | string) => createHash('md5').update(b).digest('base64');

/** The node still answers: anonymous liveness and a signed ListBuckets. */
async function assertHealthy(t: ExecutionContext<Ctx>, after: string): Promise<void> {
  const live = await t.context.raw.send('GET', '/health/live');
  t.is(live.status, 200, `health/live after ${after}`);
  const list = await t.context.raw.signed('GET', '/');
  t.is(list.status, 200, `ListBuckets after ${after}`);
}

async function assertAbsent(t: ExecutionContext<Ctx>, key: string, what: string): Promise<void> {
  const res = await t.context.raw.signed('GET', keyPath(t.context.bucket, key));
  expectS3Error(t, res, 404, 'NoSuchKey', `${what}: GET ${JSON.stringify(key)}`);
}

/** Keys listed in the bucket (ListObjectsV2, encoding-type=url, decoded), under `prefix`. */
async function listKeys(t: ExecutionContext<Ctx>, prefix = ''): Promise<string[]> {
  const query = `encoding-type=url&list-type=2${prefix ? `&prefix=${encodeURIComponent(prefix)}` : ''}`;
  const res = await t.context.raw.signed('GET', `/${t.context.bucket}`, { query });
  t.is(res.status, 200, res.text);
  return [...res.text.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => decodeURIComponent(m[1]!));
}

/** Every file name under `dir`, recursively. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    out.push(path);
    if (entry.isDirectory()) out.push(...(await walk(path)));
  }
  return out;
}

/** Polls `<dataDir>/chunks/tmp` until it is empty; returns what was left at the deadline. */
async function tmpFilesWhenIdle(dataDir: string): Promise<string[]> {
  const dir = join(dataDir, 'chunks', 'tmp');
  const deadline = Date.now() + SETTLE_DEADLINE_MS;
  for (;;) {
    const left = existsSync(dir) ? await readdir(dir) : [];
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('traversal-looking keys (.., ./, //, %2e%2e%2f) are opaque keys: stored, read back, listed, and never touch the file system', async (t) => {
  const { raw, bucket, server } = t.context;
  const marker = `escape-${process.pid}-${randomBytes(4).toString('hex')}`;
  // Wire path → the key S3 must see (no normalization, percent-decoding only).
  const cases: Array<[string, string]> = [
    [`/${bucket}/../${marker}-a`, `../${marker}-a`],
    [`/${bucket}/../../../../${marker}-b`, `../../../../${marker}-b`],
    [`/${bucket}/./${marker}-c`, `./${marker}-c`],
    [`/${bucket}//${marker}-d`, `/${marker}-d`],
    [`/${bucket}///${marker}-e`, `//${marker}-e`],
    [`/${bucket}/%2e%2e%2f%2e%2e%2f${marker}-f`, `../../${marker}-f`],
    [`/${bucket}/%2E%2E/%2E%2E/${marker}-g`, `../../${marker}-g`],
    [`/${bucket}/sub/../../${marker}-h`, `sub/../../${marker}-h`],
    [`/${bucket}/..%5c..%5c${marker}-i`, `..\\..\\${marker}-i`],
    [`/${bucket}/${marker}-j/..`, `${marker}-j/..`],
    [`/${bucket}/${marker}-k/.`, `${marker}-k/.`],
  ];
  for (const [path, key] of cases) {
    const body = Buffer.from(`content of ${key}`);
    const put = await raw.signed('PUT', path, { body });
    t.is(put.status, 200, `PUT ${path}: ${put.text}`);
    const viaWire = await raw.signed('GET', path);
    t.is(viaWire.text, body.toString(), `GET ${path}`);
    // The same key, encoded the canonical way, is the same object.
    const viaKey = await raw.signed('GET', keyPath(bucket, key));
    t.is(viaKey.text, body.toString(), `GET ${keyPath(bucket, key)} (key ${JSON.stringify(key)})`);
  }
  const listed = await listKeys(t);
  for (const [, key] of cases) t.true(listed.includes(key), `listed: ${JSON.stringify(key)}`);

  // Nothing named after the marker exists outside the data dir, nor as a file inside it
  // (chunks are content-addressed, metadata lives in LevelDB).
  const parent = dirname(server.dataDir);
  for (const dir of new Set([parent, dirname(parent), tmpdir(), '/'])) {
    const hits = (await readdir(dir)).filter((name) => name.includes(marker));
    t.deepEqual(hits, [], `no ${marker}* in ${dir}`);
  }
  const inside = (await walk(server.dataDir)).filter((p) => p.includes(marker));
  t.deepEqual(inside, [], 'no file in the data dir is named after a key');
  await assertHealthy(t, 'traversal keys');
});

test('a key with control characters round-trips and lists with encoding-type=url', async (t) => {
  const { raw, bucket, s3 } = t.context;
  const key = `ctl\x01\x07\x1f-${++keySeq}\ttab`;
  const body = randomBytes(100);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  t.true(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
  const res = await raw.signed('GET', `/${bucket}`, { query: `encoding-type=url&list-type=2&prefix=ctl` });
  t.true(res.text.includes(`<Key>${encodeURIComponent(key)}</Key>`), res.text);
  t.true(res.text.includes('<EncodingType>url</EncodingType>'));
  t.deepEqual(await listKeys(t, 'ctl'), [key]);
});

test('NUL in a key (%00) → 400 InvalidArgument, for PUT, DELETE and copy; nothing stored', async (t) => {
  const { raw, bucket } = t.context;
  const path = `/${bucket}/nul%00key-${++keySeq}`;
  expectS3Error(t, await raw.signed('PUT', path, { body: 'x' }), 400, 'InvalidArgument', 'PUT');
  expectS3Error(t, await raw.signed('DELETE', path), 400, 'InvalidArgument', 'DELETE');
  const src = newKey('nul-src');
  t.is((await raw.signed('PUT', keyPath(bucket, src), { body: 'x' })).status, 200);
  const copy = await raw.signed('PUT', path, { headers: { 'x-amz-copy-source': `${bucket}/${src}` } });
  expectS3Error(t, copy, 400, 'InvalidArgument', 'copy to a NUL key');
  t.deepEqual((await listKeys(t, 'nul')).filter((k) => k.includes('\0')), []);
  await assertHealthy(t, 'NUL keys');
});

// Regression (server bug found by this suite, fixed in f7f187f): GET and HEAD of a key containing NUL answer 500 InternalError instead of 400
// InvalidArgument. getObject in src/s3/handlers/object.ts does not call validateKey (PUT, DELETE
// and copy do), so the key reaches the meta layer, whose key encoding asserts ("object key
// contains NUL"). Request: `GET /wire-input/nul%00get` → 500 <Code>InternalError</Code>; the
// server log shows the assertion. Fix: validateKey(key) at the top of getObject.
test('NUL in a key (%00) → 400 InvalidArgument for GET and HEAD too, not 500', async (t) => {
  const { raw, bucket } = t.context;
  const path = `/${bucket}/nul%00get-${++keySeq}`;
  expectS3Error(t, await raw.signed('GET', path), 400, 'InvalidArgument', 'GET');
  const head = await raw.signed('HEAD', path);
  t.is(head.status, 400, 'HEAD');
  await assertHealthy(t, 'NUL GET');
});

test('NFC and NFD spellings of a key are two distinct objects', async (t) => {
  const { raw, bucket } = t.context;
  const prefix = `unicode-${++keySeq}-`;
  const base = `${prefix}caf\u00e9`;
  const nfc = base.normalize('NFC');
  const nfd = base.normalize('NFD');
  t.not(nfc, nfd);
  t.is((await raw.signed('PUT', keyPath(bucket, nfc), { body: 'composed' })).status, 200);
  t.is((await raw.signed('PUT', keyPath(bucket, nfd), { body: 'decomposed' })).status, 200);
  t.is((await raw.signed('GET', keyPath(bucket, nfc))).text, 'composed');
  t.is((await raw.signed('GET', keyPath(bucket, nfd))).text, 'decomposed');
  const listed = await listKeys(t, prefix);
  t.deepEqual(listed.sort(), [nfc, nfd].sort());
});

test('a 1024-byte key works; 1025 bytes → 400 KeyTooLongError (ASCII and multi-byte UTF-8)', async (t) => {
  const { raw, bucket } = t.context;
  const prefix = `long-${++keySeq}-`;
  const ascii = prefix + 'k'.repeat(KEY_BYTES_MAX - prefix.length);
  t.is(Buffer.byteLength(ascii), KEY_BYTES_MAX);
  const put = await raw.signed('PUT', keyPath(bucket, ascii), { body: 'max' });
  t.is(put.status, 200, put.text);
  t.is((await raw.signed('GET', keyPath(bucket, ascii))).text, 'max');
  t.true((await listKeys(t, prefix)).includes(ascii));
  expectS3Error(t, await raw.signed('PUT', keyPath(bucket, `${ascii}k`), { body: 'x' }), 400, 'KeyTooLongError', '1025 ASCII bytes');
  // 'é' is two bytes: 511 of them after a 2-byte prefix is 1024 bytes, one more is 1026.
  const wide = `w-${'\u00e9'.repeat(511)}`;
  t.is(Buffer.byteLength(wide), KEY_BYTES_MAX);
  t.is((await raw.signed('PUT', keyPath(bucket, wide), { body: 'wide' })).status, 200);
  expectS3Error(t, await raw.signed('PUT', keyPath(bucket, `${wide}\u00e9`), { body: 'x' }), 400, 'KeyTooLongError', '1026 UTF-8 bytes');
  t.deepEqual((await listKeys(t, prefix)).length, 1, 'only the 1024-byte key exists');
  await assertHealthy(t, 'long keys');
});

test('invalid bucket names → 400 InvalidBucketName, including traversal-looking ones; no directory is created', async (t) => {
  const { raw, server } = t.context;
  const names = ['ab', 'Bad_Bucket', 'UPPER', 'a..b', '-lead', 'trail-', '192.168.1.1', 'xn--abc', 'a'.repeat(64), '..', '.', '..%5c..%5cetc-ts3gw', 'a%00b'];
  for (const name of names) {
    const res = await raw.signed('PUT', `/${name}`);
    expectS3Error(t, res, 400, 'InvalidBucketName', `bucket ${name}`);
  }
  for (const dir of [dirname(server.dataDir), server.dataDir]) t.false(existsSync(join(dir, 'etc-ts3gw')), `nothing created in ${dir}`);
  const listed = await raw.signed('GET', '/');
  for (const name of names) t.false(listed.text.includes(`<Name>${decodeURIComponent(name)}</Name>`), `not listed: ${name}`);
  await assertHealthy(t, 'bad bucket names');
});

// Regression (server bug found by this suite, fixed in f7f187f, low severity): parseTarget in src/s3/names.ts percent-decodes the whole path
// BEFORE splitting off the bucket, so an encoded slash in the first segment splits it. The
// request `PUT /wire-input%2Fslash-key` (signed canonical URI: the single segment
// `/wire-input%2Fslash-key`, i.e. CreateBucket "wire-input/slash-key") answers 200 and stores
// object "slash-key" in bucket "wire-input"; `PUT /newb%2Fx` answers 404 NoSuchBucket (bucket
// "newb") instead of 400 InvalidBucketName. The bucket must be split from the RAW path at the
// first literal '/', and only then decoded (the key likewise).
test('an encoded slash in the bucket segment does not split it into bucket and key', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('slash-split');
  const res = await raw.signed('PUT', `/${bucket}%2F${key}`, { body: 'routed as an object' });
  t.true(res.status >= 400 && res.status < 500, `PUT /${bucket}%2F${key}: ${res.status}`);
  await assertAbsent(t, key, 'encoded slash in the bucket segment');
  expectS3Error(t, await raw.signed('PUT', '/newb%2Fx'), 400, 'InvalidBucketName', 'CreateBucket newb/x');
});

test('DeleteObjects with malformed XML → 400 MalformedXML and deletes nothing', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('survivor');
  t.is((await raw.signed('PUT', keyPath(bucket, key), { body: 'keep me' })).status, 200);
  const bodies = {
    unclosed: `<Delete><Object><Key>${key}</Key></Object>`,
    'not XML': 'this is not xml at all',
    'no Object': '<Delete><Quiet>true</Quiet></Delete>',
    'wrong root': `<Remove><Object><Key>${key}</Key></Object></Remove>`,
    'Object without Key': '<Delete><Object><VersionId>x</VersionId></Object></Delete>',
    'mismatched tags': `<Delete><Object><Key>${key}</Object></Key></Delete>`,
    'entity expansion': `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "${'A'.repeat(100)}"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>`,
  };
  for (const [what, body] of Object.entries(bodies)) {
    const res = await raw.signed('POST', `/${bucket}`, { query: 'delete', body, headers: { 'content-md5': md5b64(body) } });
    expectS3Error(t, res, 400, 'MalformedXML', what);
  }
  t.is((await raw.signed('GET', keyPath(bucket, key))).text, 'keep me');
  await assertHealthy(t, 'malformed XML');
});

// Regression (server bug found by this suite, fixed in f7f187f, data loss): XML numeric character references in request bodies are mis-decoded
// (src/s3/xml.ts parses with processEntities but htmlEntities: false, so fast-xml-parser leaves
// `&#x61;`, `&#13;`, `&#xA;`, `&#x0D;` as literal text and drops `&#1;`):
//   - `POST /bucket?delete` with `<Delete><Object><Key>x&#1;y</Key></Object></Delete>` answers
//     200 `<Deleted><Key>xy</Key></Deleted>` and DELETES THE OBJECT "xy", a key the client never
//     named, while "x\x01y" stays;
//   - the AWS SDK v3 escapes CR and LF in keys as `&#x0D;`/`&#x0A;`, so DeleteObjects of "a\r\nb"
//     answers Deleted `a&#x0D;&#x0A;b` but the object survives (silent no-op), and
//     `<Key>num&#x61;ref</Key>` deletes the object literally named "num&#x61;ref", not "numaref".
// Fix: decode numeric character references (decimal and hex) in parseXml, and reject those
// XML 1.0 forbids (&#0;) as MalformedXML or InvalidArgument.
test('DeleteObjects decodes numeric character references exactly and never deletes another key', async (t) => {
  const { raw, s3, bucket } = t.context;
  const p = `ncr-${++keySeq}-`;
  for (const k of ['xy', 'x\x01y', 'numaref', 'a\r\nb']) t.is((await raw.signed('PUT', keyPath(bucket, p + k), { body: k })).status, 200);
  const del = (xmlKey: string) => {
    const body = `<Delete><Object><Key>${xmlKey}</Key></Object></Delete>`;
    return raw.signed('POST', `/${bucket}`, { query: 'delete', body, headers: { 'content-md5': md5b64(body) } });
  };
  const status = async (k: string) => (await raw.signed('HEAD', keyPath(bucket, p + k))).status;

  t.is((await del(`${p}x&#1;y`)).status, 200);
  t.is(await status('xy'), 200, '"xy" was not named and must survive a delete of "x&#1;y"');
  t.is(await status('x\x01y'), 404, '"x\\x01y" is the key that was named');

  t.is((await del(`${p}num&#x61;ref`)).status, 200);
  t.is(await status('numaref'), 404, '&#x61; is "a"');

  const res = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: `${p}a\r\nb` }] } }));
  t.deepEqual(res.Deleted?.map((d) => d.Key), [`${p}a\r\nb`], 'SDK: reported deleted');
  t.is(await status('a\r\nb'), 404, 'SDK: the CR/LF key is really gone');
});

test('DeleteObjects without Content-MD5 or a checksum → 400 InvalidRequest and deletes nothing; x-amz-checksum-crc32 or Content-MD5 is enough', async (t) => {
  const { raw, bucket } = t.context;
  const [a, b] = [newKey('del-md5'), newKey('del-crc')];
  for (const k of [a, b]) t.is((await raw.signed('PUT', keyPath(bucket, k), { body: 'keep me' })).status, 200);
  const body = (k: string) => `<Delete><Object><Key>${k}</Key></Object></Delete>`;
  const err = expectS3Error(t, await raw.signed('POST', `/${bucket}`, { query: 'delete', body: body(a) }), 400, 'InvalidRequest', 'no integrity header');
  t.is(err.message, 'Missing required header for this request: Content-MD5');
  t.is((await raw.signed('GET', keyPath(bucket, a))).text, 'keep me', 'nothing deleted');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body(b)) >>> 0);
  t.is((await raw.signed('POST', `/${bucket}`, { query: 'delete', body: body(b), headers: { 'x-amz-checksum-crc32': crc.toString('base64') } })).status, 200);
  await assertAbsent(t, b, 'deleted with a CRC32');
  t.is((await raw.signed('POST', `/${bucket}`, { query: 'delete', body: body(a), headers: { 'content-md5': md5b64(body(a)) } })).status, 200);
  await assertAbsent(t, a, 'deleted with Content-MD5');
});

test.serial('a 20 MB DeleteObjects body gets its 400 answer, read by a client still sending, not a reset connection', async (t) => {
  const { raw, bucket, server } = t.context;
  const key = newKey('huge-delete-victim');
  t.is((await raw.signed('PUT', keyPath(bucket, key), { body: 'keep me' })).status, 200);
  const body = Buffer.from(`<Delete>${`<Object><Key>${key}</Key></Object>`.repeat(20 * 1024 * 1024 / 30)}</Delete>`);
  t.true(body.length > 20 * 1000 * 1000);
  for (const [what, headers, code] of [
    ['with Content-MD5', { 'content-md5': md5b64(body) }, 'MaxMessageLengthExceeded'],
    ['without Content-MD5', {}, 'InvalidRequest'],
  ] as const) {
    for (let attempt = 0; attempt < RST_ATTEMPTS / 2; attempt++) {
      const signed = signRequest({ method: 'POST', host: raw.host, path: `/${bucket}`, query: 'delete', payloadHash: 'UNSIGNED-PAYLOAD', headers: { ...headers, 'content-length': String(body.length) } });
      const ex = await rawExchange(
        server.port,
        (socket) => {
          socket.write(httpHead('POST', `/${bucket}?delete`, signed.headers));
          socket.write(body);
        },
        RAW_EXCHANGE_TIMEOUT_MS,
        (response) => response.includes('</Error>'),
      );
      t.is(rawStatuses(ex.response)[0], 400, `${what}, attempt ${attempt}: ${ex.response.slice(0, 200)}`);
      t.is(parseS3Error(ex.response).code, code, `${what}, attempt ${attempt}`);
    }
  }
  t.is((await raw.signed('GET', keyPath(bucket, key))).text, 'keep me');
  await assertHealthy(t, '20 MB DeleteObjects');
});

test('Expect: 100-continue: a request that fails authentication gets its 403 without a 100 and without sending the body; a good one gets 100 Continue, then 200', async (t) => {
  const { raw, bucket, server } = t.context;
  const body = randomBytes(1024 * 1024);
  const key = newKey('expect');
  const bad = signRequest({
    method: 'PUT',
    host: raw.host,
    path: keyPath(bucket, key),
    payloadHash: 'UNSIGNED-PAYLOAD',
    headers: { 'content-length': String(body.length), expect: '100-continue' },
    credentials: { accessKeyId: 'TS3TESTACCESSKEY', secretAccessKey: 'wrong-secret' },
  });
  // Only the head is sent: the answer must come while the body is withheld.
  const refused = await rawExchange(server.port, (socket) => void socket.write(httpHead('PUT', keyPath(bucket, key), bad.headers)), RAW_EXCHANGE_TIMEOUT_MS, completeResponses(1));
  t.deepEqual(rawStatuses(refused.response), [403], refused.response.slice(0, 300));
  t.is(parseS3Error(refused.response).code, 'SignatureDoesNotMatch');
  t.regex(refused.response, /\r\nconnection: close\r\n/i, 'the connection cannot carry another request');
  await assertAbsent(t, key, 'refused Expect PUT');

  const good = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, key), payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(body.length), expect: '100-continue' } });
  const accepted = await rawExchange(
    server.port,
    async (socket) => {
      socket.write(httpHead('PUT', keyPath(bucket, key), good.headers));
      await new Promise((resolve) => socket.once('data', resolve));
      socket.write(body);
    },
    RAW_EXCHANGE_TIMEOUT_MS,
    completeResponses(1),
  );
  t.deepEqual(rawStatuses(accepted.response), [100, 200], accepted.response.slice(0, 300));
  t.true((await raw.signed('GET', keyPath(bucket, key))).body.equals(body));
});

test('an XML body over 2 MiB → 400 MaxMessageLengthExceeded, by Content-Length and when streamed (aws-chunked)', async (t) => {
  const { raw, bucket, server } = t.context;
  const key = newKey('big-xml-victim');
  t.is((await raw.signed('PUT', keyPath(bucket, key), { body: 'keep me' })).status, 200);
  const body = Buffer.from(`<Delete>${`<Object><Key>${key}</Key></Object>`.repeat(80_000)}</Delete>`);
  t.true(body.length > 2 * 1024 * 1024);
  // Raw sockets: the server answers early, while the client may still be sending (the server
  // drains a bounded remainder so the answer is not lost to a reset; see the lingering-close test).
  const byLength = signRequest({ method: 'POST', host: raw.host, path: `/${bucket}`, query: 'delete', body, headers: { 'content-length': String(body.length), 'content-md5': md5b64(body) } });
  const ex1 = await rawExchange(
    server.port,
    (socket) => {
      socket.write(httpHead('POST', `/${bucket}?delete`, byLength.headers));
      socket.write(body);
    },
    RAW_EXCHANGE_TIMEOUT_MS,
    (response) => response.includes('</Error>'),
  );
  t.is(rawStatuses(ex1.response)[0], 400, ex1.response.slice(0, 300));
  t.is(parseS3Error(ex1.response).code, 'MaxMessageLengthExceeded', 'Content-Length');
  // aws-chunked: the decoded length is only known while reading, so the limit must hold mid-stream.
  const signed = signRequest({
    method: 'POST',
    host: raw.host,
    path: `/${bucket}`,
    query: 'delete',
    payloadHash: STREAMING_SIGNED,
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(body.length), 'content-md5': md5b64(body) },
  });
  const streamed = awsChunked(body, { mode: STREAMING_SIGNED, chunkSizeBytes: 256 * 1024, signing: signed.signing });
  const ex2 = await rawExchange(
    server.port,
    (socket) => {
      socket.write(httpHead('POST', `/${bucket}?delete`, { ...signed.headers, 'content-length': String(streamed.body.length) }));
      socket.write(streamed.body);
    },
    RAW_EXCHANGE_TIMEOUT_MS,
    (response) => response.includes('</Error>'),
  );
  t.is(rawStatuses(ex2.response)[0], 400, ex2.response.slice(0, 300));
  t.is(parseS3Error(ex2.response).code, 'MaxMessageLengthExceeded', 'aws-chunked');
  t.is((await raw.signed('GET', keyPath(bucket, key))).text, 'keep me');
  await assertHealthy(t, 'huge XML');
});

// Regression (server bug found by this suite, fixed in f7f187f): no lingering close. When the server answers before reading the whole body
// (auth failure, EntityTooLarge, MaxMessageLengthExceeded, any early error) it sends the error
// with `Connection: close` and closes the socket while request bytes are still arriving. The
// kernel then answers those bytes with a TCP RST, and a client that is still writing loses the
// already-sent response: it sees ECONNRESET/EPIPE instead of the S3 error. Observed with
// @aws-sdk/client-s3: PutObject of 16 MiB with a wrong secret → 2 of 6 attempts failed with
// "TimeoutError: EPIPE" instead of 403 SignatureDoesNotMatch (so the SDK cannot tell a bad key
// from a network fault, and retries). Here: 8 MiB PUTs with a wrong signature over raw sockets;
// a sizeable fraction lose the 403 (the test stops at the first loss, within RST_ATTEMPTS).
// Fix (as Apache/nginx lingering close): after an early error, half-close
// (socket.end) and keep reading and discarding the body for a bounded time/byte budget before
// destroying the socket, or read and discard a bounded remainder before answering.
test.serial('an error sent before the body was read reaches a client that is still sending (no RST)', async (t) => {
  const { raw, bucket, server } = t.context;
  const body = Buffer.alloc(8 * 1024 * 1024, 7);
  let lost = 0;
  for (let attempt = 0; attempt < RST_ATTEMPTS; attempt++) {
    const key = newKey('rst');
    const { headers } = signRequest({
      method: 'PUT',
      host: raw.host,
      path: keyPath(bucket, key),
      payloadHash: 'UNSIGNED-PAYLOAD',
      headers: { 'content-length': String(body.length) },
      credentials: { accessKeyId: 'TS3TESTACCESSKEY', secretAccessKey: 'wrong-secret' },
    });
    const ex = await rawExchange(
      server.port,
      (socket) => {
        socket.write(httpHead('PUT', keyPath(bucket, key), headers));
        socket.write(body);
      },
      RAW_EXCHANGE_TIMEOUT_MS,
      (response) => response.includes('</Error>'),
    );
    if (parseS3Error(ex.response).code !== 'SignatureDoesNotMatch') lost++;
    if (lost > 0) break;
  }
  t.is(lost, 0, `an early 403 answer was lost to a connection reset (within ${RST_ATTEMPTS} attempts)`);
});

test('Content-Length larger than the bytes sent, then the client half-closes → 400 S3 error, no object', async (t) => {
  const { raw, bucket, server } = t.context;
  for (const payloadHash of ['UNSIGNED-PAYLOAD', undefined]) {
    const key = newKey('cl-larger');
    const full = randomBytes(1000);
    const { headers } = signRequest({
      method: 'PUT',
      host: raw.host,
      path: keyPath(bucket, key),
      ...(payloadHash ? { payloadHash } : { body: full }),
      headers: { 'content-length': '1000' },
    });
    const ex = await rawExchange(server.port, (socket) => {
      socket.write(httpHead('PUT', keyPath(bucket, key), headers));
      socket.write(full.subarray(0, 500));
      socket.end();
    });
    const statuses = rawStatuses(ex.response);
    t.deepEqual(statuses, [400], `${payloadHash ?? 'sha256'}: one 400 (got ${ex.response.slice(0, 200)})`);
    t.true(['IncompleteBody', 'InvalidRequest'].includes(parseS3Error(ex.response).code ?? ''), `S3 error code: ${ex.response}`);
    t.true(ex.closedByServer, 'server closes the connection');
    await assertAbsent(t, key, 'short body');
  }
  await assertHealthy(t, 'short bodies');
});

test('Content-Length smaller than the bytes sent: the declared bytes are the body, the rest is the next request', async (t) => {
  const { raw, bucket, server } = t.context;
  // The excess is a valid pipelined request: both are answered in order, the object holds
  // exactly the declared bytes, and the excess was not swallowed into it.
  const key = newKey('cl-smaller');
  const { headers } = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, key), payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': '10' } });
  const excess = 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
  const ex = await rawExchange(server.port, (socket) => {
    socket.write(httpHead('PUT', keyPath(bucket, key), headers) + 'y'.repeat(10) + excess);
  });
  t.deepEqual(rawStatuses(ex.response), [200, 200], ex.response);
  t.is((await raw.signed('GET', keyPath(bucket, key))).text, 'y'.repeat(10));

  // Signed with the SHA-256 of all the bytes sent: the 10-byte body does not match → refused.
  const key2 = newKey('cl-smaller-sha');
  const all = Buffer.from('y'.repeat(10) + excess);
  const signed = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, key2), body: all, headers: { 'content-length': '10' } });
  const ex2 = await rawExchange(server.port, (socket) => {
    socket.write(Buffer.concat([Buffer.from(httpHead('PUT', keyPath(bucket, key2), signed.headers)), all]));
  });
  t.is(rawStatuses(ex2.response)[0], 400, ex2.response);
  t.is(parseS3Error(ex2.response).code, 'XAmzContentSHA256Mismatch');
  await assertAbsent(t, key2, 'sha256 of more bytes than declared');
  await assertHealthy(t, 'long bodies');
});

// Regression (server bug found by this suite, fixed in f7f187f): when the bytes after a request's declared body are not a valid request, Node's
// parser raises clientError while the first request is still being handled, and onClientError
// (src/s3/server.ts) immediately writes "400 InvalidRequest Malformed HTTP request" and closes.
// That 400 is the FIRST response on the connection, so the client attributes it to the PUT —
// yet the PUT is applied anyway (the object exists with the 10 declared bytes). A client told
// "400" must be able to assume nothing changed. Fix: when a request is in flight on the socket
// (socket._httpMessage / a pending handler), do not answer the garbage; let the in-flight
// response go out (or destroy the socket without a response).
test('Content-Length smaller than sent, excess is garbage: a 400 answer means the PUT was not applied', async (t) => {
  const { raw, bucket, server } = t.context;
  const key = newKey('cl-smaller-garbage');
  const { headers } = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, key), payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': '10' } });
  const ex = await rawExchange(server.port, (socket) => {
    socket.write(`${httpHead('PUT', keyPath(bucket, key), headers)}${'y'.repeat(10)}${'z'.repeat(20)}`);
  });
  const first = rawStatuses(ex.response)[0];
  // Let the PUT finish whatever it is doing before looking.
  await raw.signed('GET', '/');
  const get = await raw.signed('GET', keyPath(bucket, key));
  if (first === 200) t.is(get.text, 'y'.repeat(10), 'PUT answered 200: object holds the 10 declared bytes');
  else t.is(get.status, 404, `first response was ${first}, yet the object exists: ${JSON.stringify(get.text)}`);
});

test.serial('a client that disconnects mid-upload leaves no object and no temp files', async (t) => {
  const { raw, bucket, server } = t.context;
  for (const [label, totalBytes] of [
    ['inline-sized', 40 * 1024],
    ['multi-chunk', 10 * 1024 * 1024],
  ] as const) {
    const key = newKey(`disconnect-${label}`);
    const { headers } = signRequest({
      method: 'PUT',
      host: raw.host,
      path: keyPath(bucket, key),
      payloadHash: 'UNSIGNED-PAYLOAD',
      headers: { 'content-length': String(totalBytes) },
    });
    await rawExchange(
      server.port,
      async (socket) => {
        socket.write(httpHead('PUT', keyPath(bucket, key), headers));
        // Half the body (for the multi-chunk case: past the first 4 MiB chunk), then vanish.
        await new Promise<void>((resolve) => socket.write(randomBytes(totalBytes / 2 + 1), () => resolve()));
        socket.destroy();
      },
      1000,
    );
    t.deepEqual(await tmpFilesWhenIdle(server.dataDir), [], `${label}: chunks/tmp is empty once idle`);
    await assertAbsent(t, key, `${label} disconnect`);
  }
  await assertHealthy(t, 'disconnects');
});

test('broken aws-chunked bodies (bad hex size, missing CRLF, truncated chunk, no final chunk, size past decoded length) → 4xx S3 error, nothing stored', async (t) => {
  const { raw, bucket } = t.context;
  const data = randomBytes(200_000);
  const variants: Record<string, (b: Buffer, c: Awaited<ReturnType<typeof streamingPut>>['chunked']) => Buffer> = {
    'bad hex size': (b) => Buffer.concat([Buffer.from('zz'), b.subarray(b.indexOf(';'))]),
    'negative size': (b) => Buffer.concat([Buffer.from('-1'), b.subarray(b.indexOf(';'))]),
    'missing CRLF after data': (b, c) => {
      const end = c.chunkData[0]!.offset + c.chunkData[0]!.length;
      return Buffer.concat([b.subarray(0, end), b.subarray(end + 2)]);
    },
    'LF instead of CRLF in a size line': (b) => {
      const i = b.indexOf('\r\n');
      return Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
    },
    'truncated inside a chunk': (b, c) => b.subarray(0, c.chunkData[1]!.offset + 100),
    'no final chunk': (b, c) => b.subarray(0, c.finalChunkOffset),
    'truncated final chunk line': (b, c) => b.subarray(0, c.finalChunkOffset + 5),
    'garbage after the end': (b) => Buffer.concat([b, Buffer.from('extra')]),
    'size line larger than the chunk': (b) => Buffer.concat([Buffer.from('ffffff'), b.subarray(b.indexOf(';'))]),
  };
  for (const mode of [STREAMING_SIGNED, STREAMING_SIGNED_TRAILER] as const) {
    for (const [what, corrupt] of Object.entries(variants)) {
      const key = newKey('bad-chunked');
      const { headers, chunked } = await streamingPut({
        host: raw.host,
        path: keyPath(bucket, key),
        data,
        mode,
        chunkSizeBytes: 64 * 1024,
        ...(mode === STREAMING_SIGNED_TRAILER ? { trailerChecksum: { algorithm: 'CRC32' as const } } : {}),
      });
      const body = corrupt(chunked.body, chunked);
      const res = await raw.send('PUT', keyPath(bucket, key), { ...headers, 'content-length': String(body.length) }, body);
      const err = parseS3Error(res.text);
      t.true(res.status >= 400 && res.status < 500, `${mode} ${what}: 4xx (got ${res.status} ${res.text.slice(0, 200)})`);
      t.truthy(err.code, `${mode} ${what}: S3 error code`);
      t.is(err.requestId, String(res.headers['x-amz-request-id']), `${mode} ${what}: RequestId`);
      await assertAbsent(t, key, `${mode} ${what}`);
    }
  }
  await assertHealthy(t, 'broken aws-chunked');
});

test('a PUT without Content-Length (HTTP chunked transfer) is accepted: unsigned, sha256-signed, and aws-chunked inside HTTP chunks', async (t) => {
  const { raw, bucket, server } = t.context;
  const put = async (key: string, headers: Record<string, string>, chunkedBody: string | Buffer) => {
    const ex = await rawExchange(
      server.port,
      (socket) => {
        socket.write(httpHead('PUT', keyPath(bucket, key), headers));
        socket.write(chunkedBody);
      },
      RAW_EXCHANGE_TIMEOUT_MS,
      completeResponses(1),
    );
    return ex.response;
  };
  const httpChunks = (data: Buffer, size: number) => {
    const out: Buffer[] = [];
    for (let at = 0; at < data.length; at += size) {
      const piece = data.subarray(at, at + size);
      out.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
    }
    return Buffer.concat([...out, Buffer.from('0\r\n\r\n')]);
  };
  const body = randomBytes(300_000);
  const unsigned = newKey('chunked-unsigned');
  const h1 = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, unsigned), payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'transfer-encoding': 'chunked' } });
  const r1 = await put(unsigned, h1.headers, httpChunks(body, 65_536));
  t.is(rawStatuses(r1)[0], 200, r1);
  t.true((await raw.signed('GET', keyPath(bucket, unsigned))).body.equals(body), 'unsigned chunked body stored');

  const signed = newKey('chunked-sha256');
  const h2 = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, signed), body, headers: { 'transfer-encoding': 'chunked' } });
  const r2 = await put(signed, h2.headers, httpChunks(body, 100_000));
  t.is(rawStatuses(r2)[0], 200, r2);
  t.true((await raw.signed('GET', keyPath(bucket, signed))).body.equals(body), 'sha256 chunked body stored');
  // The sha256 still binds the body: other bytes under the same signature store nothing.
  const tampered = newKey('chunked-tampered');
  const h3 = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, tampered), body, headers: { 'transfer-encoding': 'chunked' } });
  const r3 = await put(tampered, h3.headers, httpChunks(Buffer.from('other bytes'), 5));
  t.is(parseS3Error(r3).code, 'XAmzContentSHA256Mismatch', r3);
  await assertAbsent(t, tampered, 'tampered chunked body');

  const streaming = newKey('chunked-aws');
  const h4 = signRequest({
    method: 'PUT',
    host: raw.host,
    path: keyPath(bucket, streaming),
    payloadHash: STREAMING_SIGNED,
    headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(body.length), 'transfer-encoding': 'chunked' },
  });
  const aws = awsChunked(body, { mode: STREAMING_SIGNED, chunkSizeBytes: 64 * 1024, signing: h4.signing });
  const r4 = await put(streaming, h4.headers, httpChunks(aws.body, 50_000));
  t.is(rawStatuses(r4)[0], 200, r4);
  t.true((await raw.signed('GET', keyPath(bucket, streaming))).body.equals(body), 'aws-chunked in HTTP chunks stored');
});

test('ambiguous framing (Content-Length and Transfer-Encoding, two Content-Lengths) → 400, nothing stored', async (t) => {
  const { raw, bucket, server } = t.context;
  for (const [what, extra] of [
    ['CL + TE', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'],
    ['two CLs', 'Content-Length: 5\r\nContent-Length: 6\r\n'],
    ['bad CL', 'Content-Length: 5x\r\n'],
  ] as const) {
    const key = newKey('smuggle');
    const { headers } = signRequest({ method: 'PUT', host: raw.host, path: keyPath(bucket, key), payloadHash: 'UNSIGNED-PAYLOAD' });
    const head = httpHead('PUT', keyPath(bucket, key), headers).replace(/\r\n\r\n$/, `\r\n${extra}\r\n`);
    const ex = await rawExchange(server.port, (socket) => {
      socket.write(`${head}5\r\nhello\r\n0\r\n\r\n`);
    });
    t.is(rawStatuses(ex.response)[0], 400, `${what}: ${ex.response}`);
    t.truthy(parseS3Error(ex.response).code, `${what}: S3 XML`);
    await assertAbsent(t, key, what);
  }
  await assertHealthy(t, 'ambiguous framing');
});

test('oversized request heads (20 KiB header, 20 KiB URL) → 400 RequestHeaderSectionTooLarge as XML; the next request is served', async (t) => {
  const { bucket, server } = t.context;
  const heads = {
    'header': `GET /${bucket} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`,
    'many headers': `GET /${bucket} HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 2000 }, (_, i) => `x-h${i}: v`).join('\r\n')}\r\n\r\n`,
    'URL': `GET /${bucket}/${'k'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  };
  for (const [what, head] of Object.entries(heads)) {
    const ex = await rawExchange(server.port, (socket) => {
      socket.write(head);
    });
    t.deepEqual(rawStatuses(ex.response), [400], `${what}: ${ex.response.slice(0, 200)}`);
    t.regex(ex.response, /content-type: application\/xml/i, `${what}: XML`);
    const err = parseS3Error(ex.response);
    t.is(err.code, 'RequestHeaderSectionTooLarge', what);
    t.truthy(err.message);
    await assertHealthy(t, `oversized ${what}`);
  }
});

// Regression (server bug found by this suite, fixed in f7f187f): errors raised by Node's HTTP parser (oversized head, malformed request) are
// written by onClientError in src/s3/server.ts without an x-amz-request-id header and without
// <RequestId>/<HostId> in the XML, unlike every other S3 error. E.g. a 20 KiB header answers
//   HTTP/1.1 400 Bad Request / Content-Type: application/xml / Connection: close
//   <Error><Code>RequestHeaderSectionTooLarge</Code><Message>…</Message></Error>
// Fix: generate a request id there too (genReqId) and render it as header and elements.
test('parser-level errors carry RequestId and x-amz-request-id like every S3 error', async (t) => {
  const { bucket, server } = t.context;
  const ex = await rawExchange(server.port, (socket) => {
    socket.write(`GET /${bucket} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
  });
  const requestId = /\r\nx-amz-request-id: ([^\r]+)\r\n/i.exec(ex.response)?.[1];
  t.truthy(requestId, 'x-amz-request-id header');
  t.is(parseS3Error(ex.response).requestId, requestId, '<RequestId> matches');
});

// Regression (server bug found by this suite, fixed in f7f187f): a PUT whose Content-Type is not a syntactically valid media type ('', 'text',
// 'text/', ';', '"x"', 'ü/x') is refused by fastify's content-type parsing before the S3 route
// runs: 415 with a JSON body
//   {"statusCode":415,"code":"FST_ERR_CTP_INVALID_MEDIA_TYPE","error":"Unsupported Media Type",…}
// and no x-amz-request-id. S3 stores Content-Type verbatim whatever it is, so such uploads must
// succeed (and at the very least every refusal must be S3 XML). Fix: bypass fastify's media-type
// parsing for the catch-all route (e.g. an onRequest hook, or a content-type parser that accepts
// anything), plus a setErrorHandler that renders S3 XML for any framework error.
test('PUT with an unusual Content-Type ("", "text") is stored with that Content-Type', async (t) => {
  const { raw, bucket } = t.context;
  for (const contentType of ['text', '']) {
    const key = newKey('ctype');
    const res = await raw.signed('PUT', keyPath(bucket, key), { body: 'x', headers: { 'content-type': contentType } });
    t.is(res.status, 200, `Content-Type ${JSON.stringify(contentType)}: ${res.text.slice(0, 200)}`);
    t.truthy(res.headers['x-amz-request-id'], 'answered by the S3 layer');
  }
});

// Regression (server bug found by this suite, fixed in f7f187f): response-* overrides whose value cannot be an HTTP header value (control
// characters, characters above U+00FF) crash the reply: `GET /wire-input/k?response-content-type=a%01b`
// → 500 InternalError (log: TypeError ERR_INVALID_CHAR "Invalid character in header content
// ["content-type"]"), and `?response-content-disposition=a%0Ab` or `?response-expires=%E2%82%AC`
// → 500 with fastify's JSON body {"statusCode":500,"code":"ERR_INVALID_CHAR",…}. Expected: 400
// InvalidArgument as S3 XML (setObjectHeaders in src/s3/handlers/object.ts should validate the
// values before setting them).
test('response-* overrides with characters illegal in a header → 400 S3 XML, not 500', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('override');
  t.is((await raw.signed('PUT', keyPath(bucket, key), { body: 'x' })).status, 200);
  for (const query of ['response-content-type=a%01b', 'response-content-disposition=a%0Ab', 'response-expires=%E2%82%AC']) {
    const res = await raw.signed('GET', keyPath(bucket, key), { query });
    t.true(res.status >= 400 && res.status < 500, `${query}: status ${res.status}`);
    t.truthy(parseS3Error(res.text).code, `${query}: S3 XML (${res.text.slice(0, 120)})`);
  }
});

test('a request line with an unknown method (FOO) → 400 S3 XML; the node keeps serving', async (t) => {
  const { bucket, server } = t.context;
  const ex = await rawExchange(server.port, (socket) => {
    socket.write(`FOO /${bucket} HTTP/1.1\r\nHost: x\r\n\r\n`);
  });
  t.is(rawStatuses(ex.response)[0], 400, ex.response);
  t.is(parseS3Error(ex.response).code, 'InvalidRequest');
  await assertHealthy(t, 'FOO method');
});

test('unsupported subresources → S3 XML 501 NotImplemented (and never act as their neighbour); PATCH → 405', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('sub');
  t.is((await raw.signed('PUT', keyPath(bucket, key), { body: 'x' })).status, 200);
  // Features the README lists as 501 for good (versioning, policy, lifecycle, retention…).
  const notImplemented: Array<[string, string, string]> = [
    ['PUT', `/${bucket}`, 'website'],
    ['GET', keyPath(bucket, key), 'torrent'],
    ['GET', `/${bucket}`, 'versioning'],
    ['GET', `/${bucket}`, 'versions'],
    ['GET', `/${bucket}`, 'policyStatus'],
    ['PUT', `/${bucket}`, 'lifecycle'],
    ['GET', keyPath(bucket, key), 'retention'],
    ['GET', keyPath(bucket, key), 'legal-hold'],
  ];
  for (const [method, path, query] of notImplemented) {
    const res = await raw.signed(method, path, { query, ...(method === 'PUT' ? { body: '' } : {}) });
    expectS3Error(t, res, 501, 'NotImplemented', `${method} ${path}?${query}`);
  }
  expectS3Error(t, await raw.signed('PATCH', keyPath(bucket, key)), 405, 'MethodNotAllowed', 'PATCH object');
  // None of them (PUT ?website, GET ?torrent, …) acted as a neighbour: the object is as it was.
  t.is((await raw.signed('GET', keyPath(bucket, key))).text, 'x');
  await assertHealthy(t, 'unsupported operations');
});

test('POST ?uploads (CreateMultipartUpload) → 501 NotImplemented XML, or an UploadId once multipart exists; never a 5xx crash', async (t) => {
  const { raw, bucket } = t.context;
  const key = newKey('uploads');
  const res = await raw.signed('POST', keyPath(bucket, key), { query: 'uploads', body: '' });
  if (res.status === 200) t.regex(res.text, /<UploadId>[^<]+<\/UploadId>/, 'multipart implemented: an UploadId');
  else expectS3Error(t, res, 501, 'NotImplemented');
  await assertAbsent(t, key, 'CreateMultipartUpload creates no object');
  await assertHealthy(t, 'POST ?uploads');
});

// Regression (server bug found by this suite, fixed in f7f187f): HTTP methods that Node's parser knows but that are not in METHODS in
// src/s3/server.ts (PROPFIND, TRACE, SEARCH, MKCOL, LOCK, …) miss the catch-all route and get
// fastify's default 404 as JSON: `{"message":"Route PROPFIND:/bucket/key not found","error":
// "Not Found","statusCode":404}` — not S3 XML, no x-amz-request-id, and a 404 that claims the
// resource does not exist. Expected: 405 MethodNotAllowed (or 501 NotImplemented) as S3 XML,
// e.g. via fastify's setNotFoundHandler rendering the S3 error.
test('methods outside the route table (PROPFIND, TRACE, SEARCH) → S3 XML 405/501', async (t) => {
  const { raw, bucket } = t.context;
  for (const method of ['PROPFIND', 'TRACE', 'SEARCH', 'MKCOL']) {
    const res = await raw.signed(method, keyPath(bucket, 'k'));
    t.true(res.status === 405 || res.status === 501, `${method}: status ${res.status} ${res.text}`);
    t.true(['MethodNotAllowed', 'NotImplemented'].includes(parseS3Error(res.text).code ?? ''), `${method}: S3 XML code`);
    t.truthy(res.headers['x-amz-request-id'], `${method}: x-amz-request-id`);
  }
});

test('10 concurrent conditional PUTs (If-None-Match: *) of a new key: exactly one wins, the rest get 412, the winner is stored', async (t) => {
  const { s3, bucket } = t.context;
  const key = newKey('race-create');
  const bodies = Array.from({ length: 10 }, (_, i) => Buffer.from(`conditional body ${i} `.repeat(1000)));
  const results = await Promise.allSettled(bodies.map((Body) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body, IfNoneMatch: '*' }))));
  const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
  t.is(won.length, 1, `exactly one conditional create succeeds (got ${won.length})`);
  for (const r of results) {
    if (r.status === 'fulfilled') continue;
    const err = r.reason as S3ServiceException;
    t.true(err instanceof S3ServiceException, String(err));
    t.true(['PreconditionFailed', 'ConditionalRequestConflict'].includes(err.name), `loser: ${err.name}`);
  }
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  t.true(Buffer.from(await got.Body!.transformToByteArray()).equals(bodies[won[0]!]!), 'the winner is stored');
});

test('20 concurrent PUTs of one key (1 MiB each, SDK) leave exactly one body, intact, with its MD5 as ETag', async (t) => {
  const { s3, bucket } = t.context;
  const key = newKey('race');
  const bodies = Array.from({ length: 20 }, (_, i) => {
    const b = randomBytes(1024 * 1024);
    b.write(`body-${i}:`, 0);
    return b;
  });
  const results = await Promise.allSettled(bodies.map((Body) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body }))));
  const rejected = results.filter((r) => r.status === 'rejected');
  t.is(rejected.length, 0, `every racing PUT succeeds: ${rejected.map((r) => String((r as PromiseRejectedResult).reason)).join('; ')}`);
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  const winner = bodies.findIndex((b) => b.equals(bytes));
  t.true(winner >= 0, 'the stored bytes are exactly one of the bodies');
  t.is(got.ETag, `"${md5Hex(bodies[winner] ?? Buffer.alloc(0))}"`, 'ETag is the MD5 of that body');
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  t.is(head.ETag, got.ETag);
  t.is(head.ContentLength, 1024 * 1024);
  t.deepEqual(await listKeys(t, key), [key]);
});
