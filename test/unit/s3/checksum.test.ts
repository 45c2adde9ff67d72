/**
 * Goal: checksums are bit-exact with what AWS SDKs compute, and the multipart combinations are
 * consistent with hashing the whole object.
 * Method: published check values ("123456789"), @aws-sdk/crc64-nvme and node:zlib as oracles under
 * fast-check, the combine property crcCombine(crc(A), crc(B), |B|) == crc(A‖B), a full-object
 * checksum from random part splits equal to the checksum of the concatenation, and table tests of
 * header parsing and verification errors.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import test from 'ava';
import fc from 'fast-check';
import {
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  type CrcAlgorithm,
  checksumOf,
  compositeChecksum,
  crcCombine,
  createBodyDigests,
  createHasher,
  fullObjectChecksum,
  multipartEtag,
  parseChecksumRequest,
  resolveExpectedChecksums,
  verifyChecksums,
} from '../../../src/s3/checksum.ts';
import { S3AuthError } from '../../../src/s3/auth/errors.ts';

const CHECK = Buffer.from('123456789');

function hexOf(alg: ChecksumAlgorithm, data: Uint8Array): string {
  const h = createHasher(alg);
  h.update(data);
  return h.digest().toString('hex');
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof S3AuthError) return err.code;
    throw err;
  }
  return undefined;
}

test('check values of "123456789"', (t) => {
  t.is(hexOf('CRC32', CHECK), 'cbf43926');
  t.is(hexOf('CRC32C', CHECK), 'e3069283');
  t.is(hexOf('CRC64NVME', CHECK), 'ae8b14860a799888');
  t.is(hexOf('SHA1', CHECK), 'f7c3bc1d808e04732adf679965ccc34ca7ae3441');
  t.is(hexOf('SHA256', CHECK), '15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225');
});

test('empty input and AWS-style base64', (t) => {
  t.is(checksumOf('CRC32', Buffer.alloc(0)), 'AAAAAA==');
  t.is(checksumOf('CRC64NVME', Buffer.alloc(0)), 'AAAAAAAAAAA=');
  // "Hello world" with CRC32 as shown by S3 examples: base64 of the big-endian value.
  t.is(checksumOf('CRC32', Buffer.from('hello')), Buffer.from('3610a686', 'hex').toString('base64'));
});

test('property: CRC64NVME matches @aws-sdk/crc64-nvme across arbitrary update splits', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat({ max: 2000 }), { maxLength: 5 }), async (data, cuts) => {
      const oracle = new Crc64Nvme();
      oracle.update(data);
      const expected = Buffer.from(await oracle.digest()).toString('hex');
      const h = createHasher('CRC64NVME');
      let prev = 0;
      for (const c of [...cuts.map((x) => Math.min(x, data.length))].sort((a, b) => a - b)) {
        h.update(data.subarray(prev, c));
        prev = c;
      }
      h.update(data.subarray(prev));
      return h.digest().toString('hex') === expected;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('property: CRC32C matches @aws-crypto/crc32c across arbitrary update splits', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat({ max: 2000 }), { maxLength: 5 }), (data, cuts) => {
      const expected = new Crc32c().update(data).digest().toString(16).padStart(8, '0');
      const h = createHasher('CRC32C');
      let prev = 0;
      for (const c of [...cuts.map((x) => Math.min(x, data.length))].sort((a, b) => a - b)) {
        h.update(data.subarray(prev, c));
        prev = c;
      }
      h.update(data.subarray(prev));
      return h.digest().toString('hex') === expected;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('property: CRC32 matches zlib.crc32 one-shot', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (data) => hexOf('CRC32', data) === crc32(data).toString(16).padStart(8, '0')),
  );
  t.pass();
});

const CRCS: CrcAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME'];

test('property: crcCombine(crc(A), crc(B), |B|) == crc(A‖B)', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...CRCS), fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 600 }), (alg, a, b) => {
      const big = (d: Uint8Array) => BigInt(`0x${hexOf(alg, d)}`);
      return crcCombine(alg, big(a), big(b), b.length) === big(Buffer.concat([a, b]));
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('crcCombine with a large length matches hashing zeros', (t) => {
  const zeros = Buffer.alloc(5 * 1024 * 1024 + 3);
  for (const alg of CRCS) {
    const a = Buffer.from('prefix');
    const big = (d: Uint8Array) => BigInt(`0x${hexOf(alg, d)}`);
    t.is(crcCombine(alg, big(a), big(zeros), zeros.length), big(Buffer.concat([a, zeros])), alg);
  }
});

test('property: fullObjectChecksum of any part split equals the checksum of the whole object', (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(...CRCS),
      fc.uint8Array({ maxLength: 3000 }),
      fc.array(fc.nat({ max: 3000 }), { maxLength: 6 }),
      (alg, data, cuts) => {
        const points = [...new Set([0, ...cuts.map((c) => Math.min(c, data.length)), data.length])].sort((a, b) => a - b);
        const parts = [];
        for (let i = 1; i < points.length; i++) {
          const part = data.subarray(points[i - 1], points[i]);
          parts.push({ checksum: checksumOf(alg, part), sizeBytes: part.length });
        }
        return fullObjectChecksum(alg, parts) === checksumOf(alg, data);
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('compositeChecksum hashes the concatenated binary part checksums and appends -N', (t) => {
  const p1 = checksumOf('SHA256', Buffer.from('part one'));
  const p2 = checksumOf('SHA256', Buffer.from('part two'));
  const expected = createHash('sha256')
    .update(Buffer.concat([Buffer.from(p1, 'base64'), Buffer.from(p2, 'base64')]))
    .digest('base64');
  t.is(compositeChecksum('SHA256', [p1, p2]), `${expected}-2`);
  const c1 = checksumOf('CRC32', Buffer.from('a'));
  t.is(compositeChecksum('CRC32', [c1]), `${checksumOf('CRC32', Buffer.from(c1, 'base64'))}-1`);
  t.is(codeOf(() => compositeChecksum('CRC32', ['nope'])), 'InvalidRequest');
});

test('multipartEtag', (t) => {
  const m1 = createHash('md5').update('a').digest('hex');
  const m2 = createHash('md5').update('b').digest('hex');
  const expected = createHash('md5').update(Buffer.from(m1 + m2, 'hex')).digest('hex');
  t.is(multipartEtag([m1, m2]), `${expected}-2`);
});

test('BodyDigests: one pass, observer and stream forms agree', async (t) => {
  const data = Buffer.from('The quick brown fox jumps over the lazy dog');
  const d1 = createBodyDigests(['CRC32', 'SHA256']);
  d1.update(data.subarray(0, 10));
  d1.update(data.subarray(10));
  const r1 = d1.result();
  t.is(r1.sizeBytes, data.length);
  t.is(r1.md5.toString('hex'), '9e107d9d372bb6826bd81d3542a419d6');
  t.is(r1.checksums.get('CRC32'), checksumOf('CRC32', data));
  t.is(r1.checksums.get('SHA256'), checksumOf('SHA256', data));
  t.false(r1.checksums.has('CRC32C'));

  const d2 = createBodyDigests(CHECKSUM_ALGORITHMS);
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([data.subarray(0, 3), data.subarray(3)]),
    d2.transform(),
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  t.true(Buffer.concat(out).equals(data));
  const r2 = d2.result();
  for (const alg of CHECKSUM_ALGORITHMS) t.is(r2.checksums.get(alg), checksumOf(alg, data), alg);
});

const BODY = Buffer.from('hello');
const MD5_B64 = createHash('md5').update(BODY).digest('base64');

test('parseChecksumRequest: headers, trailers, sdk algorithm, Content-MD5', (t) => {
  t.deepEqual(parseChecksumRequest({}), { contentMd5: undefined, checksum: undefined });
  const crc = checksumOf('CRC32', BODY);
  t.deepEqual(parseChecksumRequest({ 'x-amz-checksum-crc32': crc, 'x-amz-sdk-checksum-algorithm': 'CRC32' }).checksum, {
    algorithm: 'CRC32',
    source: 'header',
    base64: crc,
  });
  t.deepEqual(
    parseChecksumRequest({ 'x-amz-trailer': 'x-amz-checksum-crc64nvme', 'x-amz-sdk-checksum-algorithm': 'crc64nvme' }).checksum,
    { algorithm: 'CRC64NVME', source: 'trailer', trailerName: 'x-amz-checksum-crc64nvme' },
  );
  t.true(parseChecksumRequest({ 'content-md5': MD5_B64 }).contentMd5?.equals(Buffer.from(MD5_B64, 'base64')));
  // x-amz-checksum-mode is GetObject's ChecksumMode, not a checksum.
  t.is(parseChecksumRequest({ 'x-amz-checksum-mode': 'ENABLED' }).checksum, undefined);
});

const PARSE_ERRORS: Array<[string, Record<string, string>, string]> = [
  ['Content-MD5 not base64', { 'content-md5': 'zzz' }, 'InvalidDigest'],
  ['Content-MD5 wrong length', { 'content-md5': Buffer.alloc(15).toString('base64') }, 'InvalidDigest'],
  ['two checksum headers', { 'x-amz-checksum-crc32': 'AAAAAA==', 'x-amz-checksum-sha1': Buffer.alloc(20).toString('base64') }, 'InvalidRequest'],
  ['header and trailer', { 'x-amz-checksum-crc32': 'AAAAAA==', 'x-amz-trailer': 'x-amz-checksum-crc32c' }, 'InvalidRequest'],
  ['checksum of the wrong length', { 'x-amz-checksum-crc32': 'AAAAAAAA' }, 'InvalidRequest'],
  ['checksum not base64', { 'x-amz-checksum-sha256': '!!!' }, 'InvalidRequest'],
  ['unknown trailer checksum', { 'x-amz-trailer': 'x-amz-checksum-md5' }, 'InvalidRequest'],
  ['unknown sdk algorithm', { 'x-amz-sdk-checksum-algorithm': 'MD5', 'x-amz-checksum-crc32': 'AAAAAA==' }, 'InvalidRequest'],
  ['sdk algorithm without checksum', { 'x-amz-sdk-checksum-algorithm': 'CRC32' }, 'InvalidRequest'],
  ['sdk algorithm disagrees', { 'x-amz-sdk-checksum-algorithm': 'CRC32C', 'x-amz-checksum-crc32': 'AAAAAA==' }, 'InvalidRequest'],
];

for (const [name, headers, code] of PARSE_ERRORS) {
  test(`parseChecksumRequest error: ${name} → ${code}`, (t) => {
    t.is(codeOf(() => parseChecksumRequest(headers)), code);
  });
}

test('verifyChecksums: match passes, mismatches are BadDigest with the AWS message', (t) => {
  const computedFor = (algs: ChecksumAlgorithm[]) => {
    const d = createBodyDigests(algs);
    d.update(BODY);
    return d.result();
  };
  const crc = checksumOf('CRC32', BODY);
  t.notThrows(() =>
    verifyChecksums(resolveExpectedChecksums(parseChecksumRequest({ 'x-amz-checksum-crc32': crc, 'content-md5': MD5_B64 })), computedFor(['CRC32'])),
  );
  const wrongCrc = checksumOf('CRC32', Buffer.from('hellp'));
  const err = t.throws(() =>
    verifyChecksums(resolveExpectedChecksums(parseChecksumRequest({ 'x-amz-checksum-crc32': wrongCrc })), computedFor(['CRC32'])),
  );
  t.is((err as S3AuthError).code, 'BadDigest');
  t.is((err as S3AuthError).message, 'The CRC32 you specified did not match the calculated checksum.');
  const md5Err = t.throws(() =>
    verifyChecksums(
      resolveExpectedChecksums(parseChecksumRequest({ 'content-md5': createHash('md5').update('x').digest('base64') })),
      computedFor([]),
    ),
  );
  t.is((md5Err as S3AuthError).code, 'BadDigest');
});

test('trailer checksums resolve from the received trailers', (t) => {
  const req = parseChecksumRequest({ 'x-amz-trailer': 'x-amz-checksum-crc32c' });
  const value = checksumOf('CRC32C', BODY);
  t.deepEqual(resolveExpectedChecksums(req, new Map([['x-amz-checksum-crc32c', value]])).checksum, {
    algorithm: 'CRC32C',
    base64: value,
  });
  t.is(codeOf(() => resolveExpectedChecksums(req, new Map())), 'InvalidRequest');
  t.is(codeOf(() => resolveExpectedChecksums(req, new Map([['x-amz-checksum-crc32c', 'bad']]))), 'InvalidRequest');
  const d = createBodyDigests(['CRC32C']);
  d.update(BODY);
  t.notThrows(() => verifyChecksums(resolveExpectedChecksums(req, new Map([['x-amz-checksum-crc32c', value]])), d.result()));
});

test('AWS trailer example: x-amz-checksum-crc32c of 66560 "a" bytes is sOO8/Q==', (t) => {
  t.is(checksumOf('CRC32C', Buffer.alloc(66560, 'a')), 'sOO8/Q==');
});
