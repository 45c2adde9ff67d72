/**
 * S3 object checksums (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html):
 * incremental hashers for the five algorithms S3 supports, one-pass body digests (MD5 for the
 * ETag plus the requested checksums), parsing of what a request declares (x-amz-checksum-<alg>
 * header, x-amz-trailer, x-amz-sdk-checksum-algorithm, Content-MD5), verification, and the two
 * multipart forms: FULL_OBJECT (CRCs combined from per-part CRCs and lengths, zlib's
 * crc32_combine in GF(2)) and COMPOSITE (checksum of the concatenated part checksums, "-N").
 *
 * Checksums travel as base64 of the big-endian digest, as in S3's headers and XML.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { assert, unreachable } from '../util/assert.ts';
import { S3AuthError } from './auth/errors.ts';

/** The checksum algorithms S3 supports. */
export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';
/** The CRC algorithms: the ones with a FULL_OBJECT multipart checksum. */
export type CrcAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME';

/** All supported algorithms, in AWS's documentation order. */
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/** Digest length in bytes of each algorithm. */
export const CHECKSUM_DIGEST_BYTES: Readonly<Record<ChecksumAlgorithm, number>> = {
  CRC32: 4,
  CRC32C: 4,
  CRC64NVME: 8,
  SHA1: 20,
  SHA256: 32,
};

/** Returns the header (and trailer) name of an algorithm, e.g. `x-amz-checksum-crc32`. */
export function checksumHeaderName(alg: ChecksumAlgorithm): string {
  return `x-amz-checksum-${alg.toLowerCase()}`;
}

/** Returns the algorithm of an `x-amz-checksum-<alg>` name (any case), or undefined. */
export function algorithmOfHeaderName(name: string): ChecksumAlgorithm | undefined {
  const lower = name.toLowerCase();
  return CHECKSUM_ALGORITHMS.find((alg) => checksumHeaderName(alg) === lower);
}

/** Returns the algorithm named by an x-amz-sdk-checksum-algorithm / x-amz-checksum-algorithm value, or undefined. */
export function parseChecksumAlgorithm(value: string): ChecksumAlgorithm | undefined {
  const upper = value.trim().toUpperCase();
  return CHECKSUM_ALGORITHMS.find((alg) => alg === upper);
}

/** An incremental checksum: feed bytes with update(), read the digest once at the end. */
export interface IncrementalHasher {
  readonly algorithm: ChecksumAlgorithm;
  update(data: Uint8Array): void;
  /** Big-endian digest bytes. Call once, after the last update(). */
  digest(): Buffer;
  /** base64 of digest(). Call once, after the last update(). */
  digestBase64(): string;
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

class Crc32Hasher implements IncrementalHasher {
  readonly algorithm = 'CRC32';
  #crc = 0;
  update(data: Uint8Array): void {
    this.#crc = crc32(data, this.#crc);
  }
  digest(): Buffer {
    return u32be(this.#crc);
  }
  digestBase64(): string {
    return this.digest().toString('base64');
  }
}

// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and xorout all ones;
// check("123456789") = 0xE3069283. Slice-by-8 tables: @aws-crypto/crc32c (the oracle in the tests)
// goes byte by byte at ~90 MB/s, which would bound PutObject throughput.
const CRC32C_POLY_REFLECTED = 0x82f63b78;
type Tables8 = [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
const CRC32C_TABLES: Uint32Array[] = [];
{
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CRC32C_POLY_REFLECTED : c >>> 1;
    t0[i] = c >>> 0;
  }
  CRC32C_TABLES.push(t0);
  for (let k = 1; k < 8; k++) {
    const prev = CRC32C_TABLES[k - 1] as Uint32Array;
    const t = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      const p = prev[i] as number;
      t[i] = ((p >>> 8) ^ (t0[p & 0xff] as number)) >>> 0;
    }
    CRC32C_TABLES.push(t);
  }
}

class Crc32cHasher implements IncrementalHasher {
  readonly algorithm = 'CRC32C';
  #crc = 0xffffffff;
  update(data: Uint8Array): void {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC32C_TABLES as Tables8;
    let crc = this.#crc;
    let i = 0;
    const n = data.length;
    for (; i + 8 <= n; i += 8) {
      const a =
        crc ^
        ((data[i] as number) |
          ((data[i + 1] as number) << 8) |
          ((data[i + 2] as number) << 16) |
          ((data[i + 3] as number) << 24));
      crc =
        (t7[a & 0xff] as number) ^
        (t6[(a >>> 8) & 0xff] as number) ^
        (t5[(a >>> 16) & 0xff] as number) ^
        (t4[a >>> 24] as number) ^
        (t3[data[i + 4] as number] as number) ^
        (t2[data[i + 5] as number] as number) ^
        (t1[data[i + 6] as number] as number) ^
        (t0[data[i + 7] as number] as number);
    }
    for (; i < n; i++) crc = (crc >>> 8) ^ (t0[(crc ^ (data[i] as number)) & 0xff] as number);
    this.#crc = crc >>> 0;
  }
  digest(): Buffer {
    return u32be(this.#crc ^ 0xffffffff);
  }
  digestBase64(): string {
    return this.digest().toString('base64');
  }
}

// CRC-64/NVME: reflected, polynomial 0xAD93D23594C93659 (reflected 0x9A6C9329AC4BC9B5), init and
// xorout all ones; check("123456789") = 0xAE8B14860A799888. Computed here, slice-by-8 on two
// 32-bit halves, because @aws-sdk/crc64-nvme only offers an async digest() (it is the oracle in
// the tests). S3 now gives every new object a CRC64NVME checksum by default, so speed matters.
const CRC64NVME_POLY_REFLECTED = 0x9a6c9329ac4bc9b5n;
const CRC64_LO: Uint32Array[] = [];
const CRC64_HI: Uint32Array[] = [];
{
  const polyLo = Number(CRC64NVME_POLY_REFLECTED & 0xffffffffn);
  const polyHi = Number(CRC64NVME_POLY_REFLECTED >> 32n);
  const lo0 = new Uint32Array(256);
  const hi0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let lo = i;
    let hi = 0;
    for (let k = 0; k < 8; k++) {
      const lsb = lo & 1;
      lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
      hi = hi >>> 1;
      if (lsb) {
        lo = (lo ^ polyLo) >>> 0;
        hi = (hi ^ polyHi) >>> 0;
      }
    }
    lo0[i] = lo;
    hi0[i] = hi;
  }
  CRC64_LO.push(lo0);
  CRC64_HI.push(hi0);
  for (let k = 1; k < 8; k++) {
    const pl = CRC64_LO[k - 1] as Uint32Array;
    const ph = CRC64_HI[k - 1] as Uint32Array;
    const tl = new Uint32Array(256);
    const th = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      // T[k][i] = (T[k-1][i] >> 8) ^ T[0][T[k-1][i] & 0xff], on 64 bits split in halves.
      const l = pl[i] as number;
      const h = ph[i] as number;
      const idx = l & 0xff;
      tl[i] = (((l >>> 8) | (h << 24)) ^ (lo0[idx] as number)) >>> 0;
      th[i] = ((h >>> 8) ^ (hi0[idx] as number)) >>> 0;
    }
    CRC64_LO.push(tl);
    CRC64_HI.push(th);
  }
}

class Crc64NvmeHasher implements IncrementalHasher {
  readonly algorithm = 'CRC64NVME';
  #lo = 0xffffffff;
  #hi = 0xffffffff;
  update(data: Uint8Array): void {
    const [l0, l1, l2, l3, l4, l5, l6, l7] = CRC64_LO as Tables8;
    const [h0, h1, h2, h3, h4, h5, h6, h7] = CRC64_HI as Tables8;
    let lo = this.#lo;
    let hi = this.#hi;
    let i = 0;
    const n = data.length;
    for (; i + 8 <= n; i += 8) {
      const a =
        lo ^
        ((data[i] as number) |
          ((data[i + 1] as number) << 8) |
          ((data[i + 2] as number) << 16) |
          ((data[i + 3] as number) << 24));
      const b =
        hi ^
        ((data[i + 4] as number) |
          ((data[i + 5] as number) << 8) |
          ((data[i + 6] as number) << 16) |
          ((data[i + 7] as number) << 24));
      const i7 = a & 0xff;
      const i6 = (a >>> 8) & 0xff;
      const i5 = (a >>> 16) & 0xff;
      const i4 = a >>> 24;
      const i3 = b & 0xff;
      const i2 = (b >>> 8) & 0xff;
      const i1 = (b >>> 16) & 0xff;
      const i0 = b >>> 24;
      lo =
        (l7[i7] as number) ^
        (l6[i6] as number) ^
        (l5[i5] as number) ^
        (l4[i4] as number) ^
        (l3[i3] as number) ^
        (l2[i2] as number) ^
        (l1[i1] as number) ^
        (l0[i0] as number);
      hi =
        (h7[i7] as number) ^
        (h6[i6] as number) ^
        (h5[i5] as number) ^
        (h4[i4] as number) ^
        (h3[i3] as number) ^
        (h2[i2] as number) ^
        (h1[i1] as number) ^
        (h0[i0] as number);
    }
    for (; i < n; i++) {
      const idx = (lo ^ (data[i] as number)) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ (l0[idx] as number);
      hi = (hi >>> 8) ^ (h0[idx] as number);
    }
    this.#lo = lo >>> 0;
    this.#hi = hi >>> 0;
  }
  digest(): Buffer {
    const b = Buffer.alloc(8);
    b.writeUInt32BE((this.#hi ^ 0xffffffff) >>> 0, 0);
    b.writeUInt32BE((this.#lo ^ 0xffffffff) >>> 0, 4);
    return b;
  }
  digestBase64(): string {
    return this.digest().toString('base64');
  }
}

class ShaHasher implements IncrementalHasher {
  readonly algorithm: 'SHA1' | 'SHA256';
  readonly #hash: Hash;
  constructor(algorithm: 'SHA1' | 'SHA256') {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm === 'SHA1' ? 'sha1' : 'sha256');
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  digest(): Buffer {
    return this.#hash.digest();
  }
  digestBase64(): string {
    return this.digest().toString('base64');
  }
}

/** createHasher returns a fresh incremental hasher for `alg`. */
export function createHasher(alg: ChecksumAlgorithm): IncrementalHasher {
  switch (alg) {
    case 'CRC32':
      return new Crc32Hasher();
    case 'CRC32C':
      return new Crc32cHasher();
    case 'CRC64NVME':
      return new Crc64NvmeHasher();
    case 'SHA1':
    case 'SHA256':
      return new ShaHasher(alg);
    default:
      return unreachable(alg);
  }
}

/** checksumOf returns the base64 checksum of a whole buffer (small inputs and tests). */
export function checksumOf(alg: ChecksumAlgorithm, data: Uint8Array): string {
  const h = createHasher(alg);
  h.update(data);
  return h.digestBase64();
}

// ---------------------------------------------------------------------------------------------
// One-pass body digests

/** Digests of a whole body. */
export interface ComputedDigests {
  sizeBytes: number;
  /** MD5 of the body: the ETag of a single-part object is its hex. */
  md5: Buffer;
  /** base64 checksum per requested algorithm. */
  checksums: ReadonlyMap<ChecksumAlgorithm, string>;
}

/**
 * BodyDigests computes MD5 (always, for the ETag) and the requested checksums of a body in one
 * pass. Use it as an observer (`update()` per piece) or as a pass-through stream (`transform()`).
 * `result()` may be called once, after the last byte.
 */
export class BodyDigests {
  readonly #md5 = createHash('md5');
  readonly #hashers: IncrementalHasher[];
  #sizeBytes = 0;
  #finished = false;

  constructor(algorithms: readonly ChecksumAlgorithm[]) {
    this.#hashers = [...new Set(algorithms)].map(createHasher);
  }

  /** Feeds the next piece of the body. */
  update(data: Uint8Array): void {
    assert(!this.#finished, 'update after result');
    this.#sizeBytes += data.length;
    this.#md5.update(data);
    for (const h of this.#hashers) h.update(data);
  }

  /** Returns the digests; ends the computation. */
  result(): ComputedDigests {
    assert(!this.#finished, 'result called twice');
    this.#finished = true;
    return {
      sizeBytes: this.#sizeBytes,
      md5: this.#md5.digest(),
      checksums: new Map(this.#hashers.map((h) => [h.algorithm, h.digestBase64()])),
    };
  }

  /** Returns a pass-through Transform that feeds every piece to update(). */
  transform(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) => {
        this.update(chunk);
        cb(null, chunk);
      },
    });
  }
}

/** createBodyDigests returns a BodyDigests computing MD5 plus `algorithms`. */
export function createBodyDigests(algorithms: readonly ChecksumAlgorithm[]): BodyDigests {
  return new BodyDigests(algorithms);
}

// ---------------------------------------------------------------------------------------------
// What a request declares

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** The integrity checks a request asks for, parsed from its headers before the body is read. */
export interface ChecksumRequest {
  /** Decoded Content-MD5, when sent. */
  contentMd5: Buffer | undefined;
  /**
   * The flexible checksum, if any: `header` carries its value up front, `trailer` names the trailer
   * that will carry it after an aws-chunked body.
   */
  checksum:
    | { algorithm: ChecksumAlgorithm; source: 'header'; base64: string }
    | { algorithm: ChecksumAlgorithm; source: 'trailer'; trailerName: string }
    | undefined;
}

function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes strict base64 of exactly `bytes` bytes, or returns undefined. */
function decodeBase64(value: string, bytes: number): Buffer | undefined {
  if (!BASE64_RE.test(value)) return undefined;
  const buf = Buffer.from(value, 'base64');
  return buf.length === bytes ? buf : undefined;
}

function multipleChecksums(): S3AuthError {
  return new S3AuthError(
    'InvalidRequest',
    'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.',
  );
}

/**
 * parseChecksumRequest reads Content-MD5, `x-amz-checksum-<alg>`, `x-amz-trailer` and
 * `x-amz-sdk-checksum-algorithm`. Throws InvalidDigest for a malformed Content-MD5 and
 * InvalidRequest for a malformed or conflicting checksum declaration. (x-amz-checksum-mode,
 * -type and -algorithm are other headers and are ignored.)
 */
export function parseChecksumRequest(headers: Headers): ChecksumRequest {
  let contentMd5: Buffer | undefined;
  const md5 = headerValue(headers, 'content-md5');
  if (md5 !== undefined) {
    contentMd5 = decodeBase64(md5.trim(), 16);
    if (contentMd5 === undefined) throw new S3AuthError('InvalidDigest', 'The Content-MD5 you specified was invalid.');
  }

  let checksum: ChecksumRequest['checksum'];
  for (const alg of CHECKSUM_ALGORITHMS) {
    const value = headerValue(headers, checksumHeaderName(alg));
    if (value === undefined) continue;
    if (checksum !== undefined) throw multipleChecksums();
    if (decodeBase64(value.trim(), CHECKSUM_DIGEST_BYTES[alg]) === undefined) {
      throw new S3AuthError('InvalidRequest', `Value for ${checksumHeaderName(alg)} header is invalid.`);
    }
    checksum = { algorithm: alg, source: 'header', base64: value.trim() };
  }

  const trailer = headerValue(headers, 'x-amz-trailer');
  if (trailer !== undefined) {
    for (const raw of trailer.split(',')) {
      const name = raw.trim().toLowerCase();
      if (name === '') continue;
      if (!name.startsWith('x-amz-checksum-')) continue;
      const alg = algorithmOfHeaderName(name);
      if (alg === undefined) {
        throw new S3AuthError('InvalidRequest', 'The value specified in the x-amz-trailer header is not supported');
      }
      if (checksum !== undefined) throw multipleChecksums();
      checksum = { algorithm: alg, source: 'trailer', trailerName: name };
    }
  }

  const sdk = headerValue(headers, 'x-amz-sdk-checksum-algorithm');
  if (sdk !== undefined) {
    const alg = parseChecksumAlgorithm(sdk);
    if (alg === undefined) {
      throw new S3AuthError('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
    }
    if (checksum === undefined) {
      throw new S3AuthError(
        'InvalidRequest',
        'x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.',
      );
    }
    if (checksum.algorithm !== alg) {
      throw new S3AuthError('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
    }
  }
  return { contentMd5, checksum };
}

/** The checks to run once the body is complete. */
export interface ExpectedChecksums {
  contentMd5: Buffer | undefined;
  checksum: { algorithm: ChecksumAlgorithm; base64: string } | undefined;
}

/** Returns the algorithms the body must be hashed with for `req` (MD5 is always computed). */
export function algorithmsToCompute(req: ChecksumRequest): ChecksumAlgorithm[] {
  return req.checksum === undefined ? [] : [req.checksum.algorithm];
}

/**
 * resolveExpectedChecksums completes a ChecksumRequest with the trailers received after an
 * aws-chunked body (payload.ts PayloadResult.trailers). Throws InvalidRequest when a declared
 * checksum trailer is missing or malformed.
 */
export function resolveExpectedChecksums(
  req: ChecksumRequest,
  trailers: ReadonlyMap<string, string> = new Map(),
): ExpectedChecksums {
  const c = req.checksum;
  if (c === undefined) return { contentMd5: req.contentMd5, checksum: undefined };
  if (c.source === 'header') return { contentMd5: req.contentMd5, checksum: { algorithm: c.algorithm, base64: c.base64 } };
  const value = trailers.get(c.trailerName);
  if (value === undefined) {
    throw new S3AuthError('InvalidRequest', `The trailer ${c.trailerName} declared in x-amz-trailer was not received.`);
  }
  if (decodeBase64(value, CHECKSUM_DIGEST_BYTES[c.algorithm]) === undefined) {
    throw new S3AuthError('InvalidRequest', `Value for ${c.trailerName} trailing header is invalid.`);
  }
  return { contentMd5: req.contentMd5, checksum: { algorithm: c.algorithm, base64: value } };
}

/**
 * verifyChecksums compares what the client declared with what the body hashed to. Throws
 * BadDigest ("The CRC32 you specified did not match the calculated checksum." /
 * "The Content-MD5 you specified did not match what we received."). The caller must have
 * computed every algorithm in `expected` (assert).
 */
export function verifyChecksums(expected: ExpectedChecksums, computed: ComputedDigests): void {
  if (expected.contentMd5 !== undefined && !expected.contentMd5.equals(computed.md5)) {
    throw new S3AuthError('BadDigest', 'The Content-MD5 you specified did not match what we received.', {
      ExpectedDigest: expected.contentMd5.toString('hex'),
      CalculatedDigest: computed.md5.toString('hex'),
    });
  }
  const c = expected.checksum;
  if (c !== undefined) {
    const actual = computed.checksums.get(c.algorithm);
    assert(actual !== undefined, `checksum ${c.algorithm} was not computed`);
    if (actual !== c.base64) {
      throw new S3AuthError('BadDigest', `The ${c.algorithm} you specified did not match the calculated checksum.`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Multipart: FULL_OBJECT (CRC combine) and COMPOSITE

/** Reflected generator polynomials, as BigInt, of the combinable CRCs. */
const CRC_SPEC: Readonly<Record<CrcAlgorithm, { width: number; poly: bigint }>> = {
  CRC32: { width: 32, poly: 0xedb88320n },
  CRC32C: { width: 32, poly: BigInt(CRC32C_POLY_REFLECTED) },
  CRC64NVME: { width: 64, poly: CRC64NVME_POLY_REFLECTED },
};

function gf2Times(mat: readonly bigint[], vec: bigint): bigint {
  let sum = 0n;
  let i = 0;
  while (vec !== 0n) {
    if (vec & 1n) sum ^= mat[i] as bigint;
    vec >>= 1n;
    i++;
  }
  return sum;
}

function gf2Square(mat: readonly bigint[]): bigint[] {
  return mat.map((row) => gf2Times(mat, row));
}

// zeroByteOperators[alg][k] is the GF(2) matrix that appends 2^k zero bytes to a CRC register.
// They depend only on the polynomial, so they are built once per algorithm (lazily, 53 matrices
// of `width` rows: enough for any safe-integer length) and a combine costs one matrix-vector
// product per set bit of the length instead of zlib's O(log n) matrix squarings per call.
const ZERO_BYTE_OPERATORS_COUNT = 53;
const zeroByteOperators = new Map<CrcAlgorithm, bigint[][]>();

function operatorsOf(alg: CrcAlgorithm): bigint[][] {
  const cached = zeroByteOperators.get(alg);
  if (cached !== undefined) return cached;
  const { width, poly } = CRC_SPEC[alg];
  // One zero bit: shift right, folding the polynomial back in for the low bit (reflected CRC).
  let op: bigint[] = [poly];
  for (let n = 1, row = 1n; n < width; n++, row <<= 1n) op.push(row);
  for (let i = 0; i < 3; i++) op = gf2Square(op); // 2, 4, 8 zero bits: one zero byte
  const ops: bigint[][] = [op];
  for (let k = 1; k < ZERO_BYTE_OPERATORS_COUNT; k++) ops.push(gf2Square(ops[k - 1] as bigint[]));
  zeroByteOperators.set(alg, ops);
  return ops;
}

/**
 * crcCombine returns crc(A ‖ B) from crc(A), crc(B) and len(B), zlib's crc32_combine
 * (crc(A) advanced over len(B) zero bytes, xor crc(B)) generalized to any reflected CRC whose
 * init and xorout are equal, which holds for CRC32, CRC32C and CRC64NVME. Values are final CRCs.
 */
export function crcCombine(alg: CrcAlgorithm, crc1: bigint, crc2: bigint, len2Bytes: number): bigint {
  assert(Number.isSafeInteger(len2Bytes) && len2Bytes >= 0, 'length is a non-negative safe integer');
  const ops = operatorsOf(alg);
  let crc = crc1;
  let len = len2Bytes;
  for (let k = 0; len !== 0; k++, len = Math.floor(len / 2)) {
    if (len % 2 === 1) crc = gf2Times(ops[k] as bigint[], crc);
  }
  return crc ^ crc2;
}

function toBigInt(digest: Buffer): bigint {
  return BigInt(`0x${digest.toString('hex') || '0'}`);
}

function fromBigInt(value: bigint, bytes: number): Buffer {
  return Buffer.from(value.toString(16).padStart(bytes * 2, '0'), 'hex');
}

/** One part of a multipart upload as the checksum helpers need it. */
export interface PartChecksum {
  /** base64 checksum of the part. */
  checksum: string;
  sizeBytes: number;
}

/**
 * fullObjectChecksum returns the base64 FULL_OBJECT checksum of a multipart object: the CRC of
 * the whole object, combined from the parts' CRCs and sizes without reading any data.
 * Throws InvalidRequest for a malformed part checksum.
 */
export function fullObjectChecksum(alg: CrcAlgorithm, parts: readonly PartChecksum[]): string {
  const bytes = CHECKSUM_DIGEST_BYTES[alg];
  let crc = toBigInt(createHasher(alg).digest()); // CRC of the empty string (0)
  for (const p of parts) {
    const digest = decodeBase64(p.checksum, bytes);
    if (digest === undefined) throw new S3AuthError('InvalidRequest', `Value for part ${alg} checksum is invalid.`);
    crc = crcCombine(alg, crc, toBigInt(digest), p.sizeBytes);
  }
  return fromBigInt(crc, bytes).toString('base64');
}

/**
 * compositeChecksum returns the COMPOSITE checksum of a multipart object: the checksum of the
 * concatenated binary part checksums, base64, followed by `-<number of parts>`
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html#large-object-checksums).
 * Throws InvalidRequest for a malformed part checksum.
 */
export function compositeChecksum(alg: ChecksumAlgorithm, partChecksums: readonly string[]): string {
  const h = createHasher(alg);
  for (const c of partChecksums) {
    const digest = decodeBase64(c, CHECKSUM_DIGEST_BYTES[alg]);
    if (digest === undefined) throw new S3AuthError('InvalidRequest', `Value for part ${alg} checksum is invalid.`);
    h.update(digest);
  }
  return `${h.digestBase64()}-${partChecksums.length}`;
}

/**
 * multipartEtag returns the ETag of a completed multipart upload (without quotes): hex MD5 of the
 * concatenated binary part MD5s, followed by `-<number of parts>`, as S3 computes it.
 */
export function multipartEtag(partMd5Hex: readonly string[]): string {
  const h = createHash('md5');
  for (const hex of partMd5Hex) {
    assert(/^[0-9a-f]{32}$/.test(hex), 'part MD5 is 32 lower-case hex digits');
    h.update(Buffer.from(hex, 'hex'));
  }
  return `${h.digest('hex')}-${partMd5Hex.length}`;
}
