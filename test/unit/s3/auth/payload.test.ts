/**
 * Goal: payload verification decodes exactly what was signed, whatever the TCP segmentation, and
 * rejects everything else.
 * Method:
 *   1. AWS-published vectors: the chunked-upload example of sigv4-streaming.html (seed, three
 *      chunk signatures, Content-Length) through authenticate() + createPayloadVerifier(), and the
 *      trailer example of sigv4-streaming-trailers.html (seed signature through authenticate(),
 *      chunk and trailer signatures, the x-amz-checksum-crc32c trailer through checksum.ts).
 *   2. fast-check properties against an independent encoder (chunked-helpers.ts): any body, any
 *      chunk sizes, any split of the encoded bytes into reads decodes to the body; any single
 *      flipped byte either fails or still yields exactly the original body and trailers (and a
 *      flip inside chunk data is always SignatureDoesNotMatch); any truncation is IncompleteBody.
 *   3. Table tests for framing errors and for the sha256 / unsigned pass-through modes.
 *   4. Bodies produced by the AWS SDK v3's own aws-chunked encoder (@smithy/core).
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { getAwsChunkedEncodingStream } from '@smithy/core/serde';
import test from 'ava';
import fc from 'fast-check';
import { authenticate, type AuthResult } from '../../../../src/s3/auth/authenticate.ts';
import { isS3AuthError } from '../../../../src/s3/auth/errors.ts';
import {
  AwsChunkedDecoder,
  type AwsChunkedDecoderOptions,
  type ChunkSigning,
  createPayloadVerifier,
} from '../../../../src/s3/auth/payload.ts';
import {
  canonicalTrailers,
  chunkStringToSign,
  sha256Hex,
  signature,
  signingKey,
  trailerStringToSign,
} from '../../../../src/s3/auth/sigv4.ts';
import {
  algorithmsToCompute,
  createBodyDigests,
  createHasher,
  parseChecksumRequest,
  resolveExpectedChecksums,
  verifyChecksums,
} from '../../../../src/s3/checksum.ts';
import { decodeAll, encodeChunked, splitAt } from './chunked-helpers.ts';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const AK = 'AKIAIOSFODNN7EXAMPLE';
const AMZ_DATE = '20130524T000000Z';
const SCOPE = '20130524/us-east-1/s3/aws4_request';
const NOW_MS = Date.UTC(2013, 4, 24, 0, 0, 0);
const KEY = signingKey(SECRET, '20130524', 'us-east-1', 's3');
const LIMITS = { maxChunkSizeBytes: 1 << 20, maxTrailerBytes: 4096 };

async function runVerifier(
  auth: AuthResult,
  headers: Record<string, string>,
  pieces: Buffer[],
): Promise<{ data: Buffer; trailers: ReadonlyMap<string, string> }> {
  const v = createPayloadVerifier(auth, headers, LIMITS);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    v.stream,
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  const r = v.result();
  if (!r.complete) throw new Error('not complete');
  return { data: Buffer.concat(out), trailers: r.trailers };
}

// ---------------------------------------------------------------------------------------------
// 1. AWS vectors

const CHUNKED_HEADERS = {
  host: 's3.amazonaws.com',
  'x-amz-date': AMZ_DATE,
  'x-amz-storage-class': 'REDUCED_REDUNDANCY',
  authorization:
    `AWS4-HMAC-SHA256 Credential=${AK}/${SCOPE},SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,` +
    'Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
  'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'content-encoding': 'aws-chunked',
  'x-amz-decoded-content-length': '66560',
  'content-length': '66824',
};

const AWS_CHUNK_SIGS = [
  'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
  '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
  'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
];

function awsChunkedBody(sigs: readonly string[]): Buffer {
  return Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
    Buffer.alloc(65536, 'a'),
    Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
    Buffer.alloc(1024, 'a'),
    Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n\r\n`),
  ]);
}

test('AWS chunked upload example: seed signature, chunk string to sign, chunk signatures', (t) => {
  const auth = authenticate(
    { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', headers: CHUNKED_HEADERS },
    { lookupSecret: (ak) => (ak === AK ? SECRET : undefined), region: 'us-east-1', nowMs: NOW_MS },
  );
  t.is(auth.seedSignature, '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');
  t.deepEqual(auth.payload, { kind: 'streaming-signed', decodedContentLengthBytes: 66560 });
  // The first chunk's string to sign, as published.
  const sts = chunkStringToSign(AMZ_DATE, SCOPE, auth.seedSignature, sha256Hex(Buffer.alloc(65536, 'a')));
  t.is(
    sts,
    [
      'AWS4-HMAC-SHA256-PAYLOAD',
      AMZ_DATE,
      SCOPE,
      '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a',
    ].join('\n'),
  );
  t.is(signature(KEY, sts), AWS_CHUNK_SIGS[0] as string);
  const body = awsChunkedBody(AWS_CHUNK_SIGS);
  t.is(body.length, 66824, 'Content-Length of the example');
});

test('AWS chunked upload example decodes through createPayloadVerifier, in odd-sized reads', async (t) => {
  const auth = authenticate(
    { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', headers: CHUNKED_HEADERS },
    { lookupSecret: () => SECRET, region: 'us-east-1', nowMs: NOW_MS },
  );
  const body = awsChunkedBody(AWS_CHUNK_SIGS);
  const pieces = splitAt(body, Array.from({ length: 700 }, (_, i) => i * 97));
  const { data } = await runVerifier(auth, CHUNKED_HEADERS, pieces);
  t.true(data.equals(Buffer.alloc(66560, 'a')));

  const [s0, s1, s2] = AWS_CHUNK_SIGS as [string, string, string];
  const bad = awsChunkedBody([s0, s2, s1]);
  const err = await t.throwsAsync(runVerifier(auth, CHUNKED_HEADERS, [bad]));
  t.true(isS3AuthError(err, 'SignatureDoesNotMatch'));
});

test('AWS trailer example (sigv4-streaming-trailers.html): chunk and trailer signatures chain from the seed', (t) => {
  const seed = '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e';
  const sigs = [
    'b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2',
    '1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7',
    '2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992',
  ];
  const trailerSig = 'd81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435';
  let prev = seed;
  for (const [i, data] of [Buffer.alloc(65536, 'a'), Buffer.alloc(1024, 'a'), Buffer.alloc(0)].entries()) {
    prev = signature(KEY, chunkStringToSign(AMZ_DATE, SCOPE, prev, sha256Hex(data)));
    t.is(prev, sigs[i] as string, `chunk ${i}`);
  }
  const trailers = new Map([['x-amz-checksum-crc32c', 'sOO8/Q==']]);
  t.is(canonicalTrailers(trailers), 'x-amz-checksum-crc32c:sOO8/Q==\n');
  t.is(signature(KEY, trailerStringToSign(AMZ_DATE, SCOPE, prev, sha256Hex(canonicalTrailers(trailers)))), trailerSig);

  const body = Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
    Buffer.alloc(65536, 'a'),
    Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
    Buffer.alloc(1024, 'a'),
    Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n`),
    Buffer.from(`x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:${trailerSig}\r\n\r\n`),
  ]);
  const decoder = new AwsChunkedDecoder({
    ...LIMITS,
    signing: { signingKey: KEY, amzDate: AMZ_DATE, scope: SCOPE, seedSignature: seed },
    trailers: true,
    decodedContentLengthBytes: 66560,
  });
  const data = decodeAll(decoder, splitAt(body, [1, 2, 50, 88, 89, 65630, 66700, 66800]));
  t.true(data.equals(Buffer.alloc(66560, 'a')));
  t.deepEqual([...decoder.trailers], [['x-amz-checksum-crc32c', 'sOO8/Q==']]);
});

test('AWS trailer example end to end: seed via authenticate(), body via createPayloadVerifier, CRC32C via checksum.ts', async (t) => {
  // The published canonical request signs these headers (content-length is not signed); the
  // combination reproduces the published seed signature.
  const headers = {
    host: 's3.amazonaws.com',
    'x-amz-date': AMZ_DATE,
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'x-amz-trailer': 'x-amz-checksum-crc32c',
    authorization:
      `AWS4-HMAC-SHA256 Credential=${AK}/${SCOPE}, SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer, ` +
      'Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e',
  };
  const auth = authenticate(
    { method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', headers },
    { lookupSecret: () => SECRET, region: 'us-east-1', nowMs: NOW_MS },
  );
  t.deepEqual(auth.payload, { kind: 'streaming-signed-trailer', decodedContentLengthBytes: 66560 });
  const body = Buffer.concat([
    Buffer.from('10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n'),
    Buffer.alloc(65536, 'a'),
    Buffer.from('\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n'),
    Buffer.alloc(1024, 'a'),
    Buffer.from('\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n'),
    Buffer.from('x-amz-checksum-crc32c:sOO8/Q==\r\n'),
    Buffer.from('x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n'),
  ]);
  const checksumReq = parseChecksumRequest(headers);
  const digests = createBodyDigests(algorithmsToCompute(checksumReq));
  const { data, trailers } = await runVerifier(auth, headers, splitAt(body, [7, 65600, 66700]));
  digests.update(data);
  t.true(data.equals(Buffer.alloc(66560, 'a')));
  t.notThrows(() => verifyChecksums(resolveExpectedChecksums(checksumReq, trailers), digests.result()));
});

// ---------------------------------------------------------------------------------------------
// 2. Properties

const SIGNING: ChunkSigning = {
  signingKey: KEY,
  amzDate: AMZ_DATE,
  scope: SCOPE,
  seedSignature: 'a'.repeat(64),
};

type Mode = 'signed' | 'signed-trailer' | 'unsigned-trailer';

function decoderFor(mode: Mode, length: number): AwsChunkedDecoder {
  const opts: AwsChunkedDecoderOptions = {
    ...LIMITS,
    signing: mode === 'unsigned-trailer' ? undefined : SIGNING,
    trailers: mode !== 'signed',
    decodedContentLengthBytes: length,
  };
  return new AwsChunkedDecoder(opts);
}

function encodeFor(mode: Mode, body: Buffer, sizes: number[], trailers: Map<string, string>) {
  return encodeChunked(body, sizes, {
    ...(mode === 'unsigned-trailer' ? {} : { signing: SIGNING }),
    ...(mode === 'signed' ? {} : { trailers }),
  });
}

const arbMode = fc.constantFrom<Mode>('signed', 'signed-trailer', 'unsigned-trailer');
const arbBody = fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a));
const arbSizes = fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 });
const arbCuts = fc.array(fc.nat({ max: 4000 }), { maxLength: 40 });
const arbTrailers = fc
  .uniqueArray(
    fc.tuple(
      fc.stringMatching(/^x-amz-[a-z0-9-]{1,12}$/),
      fc.stringMatching(/^[A-Za-z0-9+/=]{0,20}$/),
    ),
    { selector: ([k]) => k, maxLength: 3 },
  )
  .filter((kv) => kv.every(([k]) => k !== 'x-amz-trailer-signature'))
  .map((kv) => new Map(kv));

test('property: any body, chunk sizes and read splitting decodes to the body', (t) => {
  fc.assert(
    fc.property(arbMode, arbBody, arbSizes, arbCuts, arbTrailers, (mode, body, sizes, cuts, trailers) => {
      const enc = encodeFor(mode, body, sizes, trailers);
      const decoder = decoderFor(mode, body.length);
      const out = decodeAll(decoder, splitAt(enc.bytes, cuts));
      if (!out.equals(body)) return false;
      const expected = mode === 'signed' ? new Map() : trailers;
      return JSON.stringify([...decoder.trailers].sort()) === JSON.stringify([...expected].sort());
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: byte-at-a-time reads decode correctly', (t) => {
  fc.assert(
    fc.property(arbMode, fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), arbSizes, (mode, body, sizes) => {
      const enc = encodeFor(mode, body, sizes, new Map([['x-amz-checksum-crc32', 'AAAAAA==']]));
      const pieces = Array.from({ length: enc.bytes.length }, (_, i) => enc.bytes.subarray(i, i + 1));
      return decodeAll(decoderFor(mode, body.length), pieces).equals(body);
    }),
    { numRuns: 100 },
  );
  t.pass();
});

test('property: a flipped byte inside chunk data is SignatureDoesNotMatch', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom<Mode>('signed', 'signed-trailer'),
      fc.uint8Array({ minLength: 1, maxLength: 2000 }).map((a) => Buffer.from(a)),
      arbSizes,
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      arbCuts,
      (mode, body, sizes, where, mask, cuts) => {
        const enc = encodeFor(mode, body, sizes, new Map([['x-amz-checksum-crc32', 'AAAAAA==']]));
        const dataOffsets = enc.dataRanges.flatMap(([s, e]) => Array.from({ length: e - s }, (_, i) => s + i));
        const at = dataOffsets[where % dataOffsets.length] as number;
        const tampered = Buffer.from(enc.bytes);
        tampered[at] = (tampered[at] as number) ^ mask;
        try {
          decodeAll(decoderFor(mode, body.length), splitAt(tampered, cuts));
          return false;
        } catch (err) {
          return isS3AuthError(err, 'SignatureDoesNotMatch');
        }
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test('property: any single flipped byte anywhere fails or yields exactly the signed body and trailers', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom<Mode>('signed', 'signed-trailer'),
      arbBody,
      arbSizes,
      arbTrailers,
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (mode, body, sizes, trailers, where, mask) => {
        const enc = encodeFor(mode, body, sizes, trailers);
        const at = where % enc.bytes.length;
        const tampered = Buffer.from(enc.bytes);
        tampered[at] = (tampered[at] as number) ^ mask;
        const decoder = decoderFor(mode, body.length);
        try {
          const out = decodeAll(decoder, [tampered]);
          // Only harmless flips survive (e.g. hex case of a chunk size, case of a trailer name).
          const expected = mode === 'signed' ? new Map() : trailers;
          return (
            out.equals(body) &&
            JSON.stringify([...decoder.trailers].sort()) === JSON.stringify([...expected].sort())
          );
        } catch (err) {
          return isS3AuthError(err);
        }
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test('property: truncation is IncompleteBody, except a body cut right after its final chunk line', (t) => {
  fc.assert(
    fc.property(arbMode, arbBody, arbSizes, arbTrailers, fc.nat(), arbCuts, (mode, body, sizes, trailers, cut, cuts) => {
      const enc = encodeFor(mode, body, sizes, trailers);
      const len = cut % enc.bytes.length; // strictly shorter
      const prefix = enc.bytes.subarray(0, len);
      // Where the final chunk's line ends: the encoding minus the trailer section.
      const trailerSection = enc.bytes.length - encodeFor(mode, body, sizes, new Map()).bytes.length + 2;
      const afterFinalChunk = enc.bytes.length - (mode === 'signed' ? 2 : trailerSection);
      try {
        const decoder = decoderFor(mode, body.length);
        const out = decodeAll(decoder, splitAt(prefix, cuts));
        // Accepted only where the SDK ends trailer-less bodies, with every byte verified, and
        // never for signed trailers; the dropped trailers are visibly absent.
        return len === afterFinalChunk && mode !== 'signed-trailer' && out.equals(body) && decoder.trailers.size === 0;
      } catch (err) {
        return isS3AuthError(err, 'IncompleteBody');
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// 3. Tables

function decodeString(mode: Mode, length: number, body: string, limits = LIMITS): Buffer {
  const d = new AwsChunkedDecoder({
    ...limits,
    signing: mode === 'unsigned-trailer' ? undefined : SIGNING,
    trailers: mode !== 'signed',
    decodedContentLengthBytes: length,
  });
  return decodeAll(d, [Buffer.from(body, 'latin1')]);
}

test('unsigned trailer body: plain framing, trailers exposed', (t) => {
  const d = new AwsChunkedDecoder({ ...LIMITS, signing: undefined, trailers: true, decodedContentLengthBytes: 5 });
  const out = decodeAll(d, [Buffer.from('5\r\nhello\r\n0\r\nx-amz-checksum-crc32: NhCmhg== \r\n\r\n')]);
  t.is(out.toString(), 'hello');
  t.is(d.trailers.get('x-amz-checksum-crc32'), 'NhCmhg==');
  t.is(d.chunkCount, 2);
});

const FRAMING_ERRORS: Array<[string, Mode, number, string, string]> = [
  ['bad hex size', 'unsigned-trailer', 5, 'zz\r\nhello\r\n0\r\n\r\n', 'InvalidRequest'],
  ['empty size', 'unsigned-trailer', 0, '\r\n0\r\n\r\n', 'InvalidRequest'],
  ['size line without CR', 'unsigned-trailer', 5, '5\nhello\r\n0\r\n\r\n', 'InvalidRequest'],
  ['data not followed by CRLF', 'unsigned-trailer', 5, '5\r\nhelloX\r\n0\r\n\r\n', 'InvalidRequest'],
  ['more data than declared', 'unsigned-trailer', 4, '5\r\nhello\r\n0\r\n\r\n', 'InvalidRequest'],
  ['less data than declared', 'unsigned-trailer', 6, '5\r\nhello\r\n0\r\n\r\n', 'IncompleteBody'],
  ['bytes after the end', 'unsigned-trailer', 5, '5\r\nhello\r\n0\r\n\r\nX', 'InvalidRequest'],
  ['chunk-signature in unsigned mode', 'unsigned-trailer', 0, `0;chunk-signature=${'0'.repeat(64)}\r\n\r\n`, 'InvalidRequest'],
  ['missing chunk-signature in signed mode', 'signed', 5, '5\r\nhello\r\n0\r\n\r\n', 'InvalidRequest'],
  ['non-hex chunk-signature', 'signed', 0, '0;chunk-signature=xyz\r\n\r\n', 'SignatureDoesNotMatch'],
  ['wrong chunk-signature', 'signed', 0, `0;chunk-signature=${'0'.repeat(64)}\r\n\r\n`, 'SignatureDoesNotMatch'],
  ['trailer in non-trailer mode', 'unsigned-trailer', 0, '0\r\nx-amz-a:b\r\nbad\r\n\r\n', 'InvalidRequest'],
  ['duplicate trailer', 'unsigned-trailer', 0, '0\r\nx-amz-a:b\r\nx-amz-a:c\r\n\r\n', 'InvalidRequest'],
  ['truncated in size line', 'unsigned-trailer', 5, '5\r', 'IncompleteBody'],
  ['truncated in data', 'unsigned-trailer', 5, '5\r\nhel', 'IncompleteBody'],
  ['empty body', 'unsigned-trailer', 0, '', 'IncompleteBody'],
];

for (const [name, mode, length, body, code] of FRAMING_ERRORS) {
  test(`framing error: ${name} → ${code}`, (t) => {
    const err = t.throws(() => decodeString(mode, length, body));
    t.is((err as { code?: string }).code, code);
  });
}

test('signed-trailer mode requires x-amz-trailer-signature', (t) => {
  const enc = encodeChunked(Buffer.from('abc'), [3], { signing: SIGNING });
  // A non-trailer encoding offered to a trailer decoder: the trailer section is just CRLF.
  const err = t.throws(() => decodeAll(decoderFor('signed-trailer', 3), [enc.bytes]));
  t.is((err as { code?: string }).code, 'SignatureDoesNotMatch');
});

test('a trailer after x-amz-trailer-signature is rejected', (t) => {
  const enc = encodeChunked(Buffer.from('abc'), [3], { signing: SIGNING, trailers: new Map([['x-amz-a', '1']]) });
  const s = enc.bytes.toString('latin1').replace(/\r\n\r\n$/, '\r\nx-amz-b:2\r\n\r\n');
  const err = t.throws(() => decodeAll(decoderFor('signed-trailer', 3), [Buffer.from(s, 'latin1')]));
  t.is((err as { code?: string }).code, 'InvalidRequest');
});

test('chunk size and trailer size and size line length are bounded', (t) => {
  const big = t.throws(() =>
    decodeString('unsigned-trailer', 100, '64\r\n', { maxChunkSizeBytes: 99, maxTrailerBytes: 100 }),
  );
  t.is((big as { code?: string }).code, 'InvalidChunkSizeError');
  const longLine = t.throws(() => decodeString('unsigned-trailer', 0, `0;${'x'.repeat(5000)}`));
  t.is((longLine as { code?: string }).code, 'InvalidRequest');
  const bigTrailer = t.throws(() =>
    decodeString('unsigned-trailer', 0, `0\r\nx-amz-a:${'v'.repeat(200)}\r\n\r\n`, { maxChunkSizeBytes: 10, maxTrailerBytes: 64 }),
  );
  t.is((bigTrailer as { code?: string }).code, 'InvalidRequest');
  // Many small trailer lines add up against the same budget.
  const manyLines = Array.from({ length: 20 }, (_, i) => `x-amz-m${i}:v\r\n`).join('');
  const many = t.throws(() =>
    decodeString('unsigned-trailer', 0, `0\r\n${manyLines}\r\n`, { maxChunkSizeBytes: 10, maxTrailerBytes: 64 }),
  );
  t.is((many as { code?: string }).code, 'InvalidRequest');
});

function fakeAuth(payload: AuthResult['payload']): AuthResult {
  return {
    accessKeyId: AK,
    payload,
    signingKey: KEY,
    scope: SCOPE,
    amzDate: AMZ_DATE,
    requestTimeMs: NOW_MS,
    seedSignature: SIGNING.seedSignature,
    presigned: false,
    signedHeaders: ['host'],
    signatureVersion: 4,
  };
}

test('sha256 mode: pass-through, mismatch is XAmzContentSHA256Mismatch', async (t) => {
  const body = Buffer.from('Welcome to Amazon S3.');
  const hex = '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072';
  const ok = await runVerifier(fakeAuth({ kind: 'sha256', hex }), {}, [body.subarray(0, 5), body.subarray(5)]);
  t.true(ok.data.equals(body));
  const err = await t.throwsAsync(runVerifier(fakeAuth({ kind: 'sha256', hex }), {}, [Buffer.from('Welcome to Amazon S4.')]));
  t.true(isS3AuthError(err, 'XAmzContentSHA256Mismatch'));
});

test('unsigned mode: pass-through; fewer bytes than Content-Length is IncompleteBody', async (t) => {
  const ok = await runVerifier(fakeAuth({ kind: 'unsigned' }), { 'content-length': '3' }, [Buffer.from('abc')]);
  t.is(ok.data.toString(), 'abc');
  const err = await t.throwsAsync(
    runVerifier(fakeAuth({ kind: 'unsigned' }), { 'content-length': '4' }, [Buffer.from('abc')]),
  );
  t.true(isS3AuthError(err, 'IncompleteBody'));
});

test('streaming mode through createPayloadVerifier exposes trailers in result()', async (t) => {
  const trailers = new Map([['x-amz-checksum-crc32', 'NhCmhg==']]);
  const enc = encodeChunked(Buffer.from('hello'), [2], { signing: SIGNING, trailers });
  const auth = fakeAuth({ kind: 'streaming-signed-trailer', decodedContentLengthBytes: 5 });
  const r = await runVerifier(auth, {}, splitAt(enc.bytes, [3, 7, 30]));
  t.is(r.data.toString(), 'hello');
  t.is(r.trailers.get('x-amz-checksum-crc32'), 'NhCmhg==');
});

// ---------------------------------------------------------------------------------------------
// 4. What the AWS SDK for JavaScript v3 actually sends (STREAMING-UNSIGNED-PAYLOAD-TRAILER)

async function sdkChunked(pieces: Buffer[], withChecksum: boolean): Promise<Buffer> {
  const source = Readable.from(pieces, { objectMode: false });
  const options = withChecksum
    ? {
        base64Encoder: (b: Uint8Array) => Buffer.from(b).toString('base64'),
        bodyLengthChecker: (b: unknown) => (b as Buffer).length,
        checksumAlgorithmFn: class {} as never,
        checksumLocationName: 'x-amz-checksum-crc32',
        streamHasher: (_ctor: unknown, readable: Readable) =>
          new Promise<Uint8Array>((resolve, reject) => {
            const h = createHasher('CRC32');
            readable.on('data', (d: Buffer) => h.update(d));
            readable.on('end', () => resolve(h.digest()));
            readable.on('error', reject);
          }),
      }
    : { bodyLengthChecker: (b: unknown) => (b as Buffer).length };
  const encoded = getAwsChunkedEncodingStream(source, options as never) as unknown as Readable;
  const out: Buffer[] = [];
  for await (const c of encoded) out.push(Buffer.from(c as Buffer));
  return Buffer.concat(out);
}

test('@smithy getAwsChunkedEncodingStream output decodes, with and without a checksum trailer', async (t) => {
  const pieces = [Buffer.from('hello '), Buffer.alloc(70000, 'x'), Buffer.from('!')];
  const body = Buffer.concat(pieces);
  const auth = fakeAuth({ kind: 'streaming-unsigned-trailer', decodedContentLengthBytes: body.length });

  const withTrailer = await sdkChunked(pieces, true);
  const r1 = await runVerifier(auth, {}, splitAt(withTrailer, [1, 5, 9, 100, 70010]));
  t.true(r1.data.equals(body));
  const crc = createHasher('CRC32');
  crc.update(body);
  t.is(r1.trailers.get('x-amz-checksum-crc32'), crc.digestBase64());

  // Without a checksum the SDK ends the body with `0\r\n` and no final CRLF.
  const bare = await sdkChunked(pieces, false);
  t.true(bare.subarray(-3).equals(Buffer.from('0\r\n')));
  const r2 = await runVerifier(auth, {}, [bare]);
  t.true(r2.data.equals(body));
  t.is(r2.trailers.size, 0);
});
