/**
 * AWS Signature Version 4 for S3, one pure function per step of the algorithm, in the shape of
 * Arsenal's `auth/v4/`. Each step is unit-tested against the examples AWS publishes in
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html,
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html.
 *
 *   canonicalRequest(method, canonicalUri(rawPath), canonicalQueryString(rawQuery),
 *                    canonicalHeaders(headers, signed), signedHeaders, hashedPayload)
 *        │ sha256 hex
 *        ▼
 *   stringToSign(amzDate, scope, hash) ──HMAC(signingKey(secret, date, region, service))──▶ signature
 *        │
 *        └── compared with the client's signature by constantTimeEqualHex()
 *
 * Only `node:crypto` is used; nothing here reads a clock or does I/O except the bounded
 * signing-key cache.
 */
import { createHash, createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';
import { assert } from '../../util/assert.ts';

/** The only SigV4 algorithm S3 accepts with HMAC (SigV4a uses AWS4-ECDSA-P256-SHA256). */
export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
/** The last element of every credential scope. */
export const SIGV4_TERMINATOR = 'aws4_request';
/** sha256('') in hex: the payload hash of an empty body, and the "previous hash" of every chunk string to sign. */
export const EMPTY_SHA256_HEX = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** The hashed-payload literal of presigned URLs and of unsigned single-chunk uploads. */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** Algorithm line of the string to sign of one aws-chunked chunk (sigv4-streaming.html). */
export const CHUNK_ALGORITHM = 'AWS4-HMAC-SHA256-PAYLOAD';
/** Algorithm line of the string to sign of the trailing headers (sigv4-streaming-trailers.html). */
export const TRAILER_ALGORITHM = 'AWS4-HMAC-SHA256-TRAILER';
/** Bound on the signing-key cache: a key per (secret, day, region, service), so a few per user per day. */
export const SIGNING_KEY_CACHE_MAX = 1024;

const HEX = '0123456789ABCDEF';

function isUnreserved(b: number): boolean {
  // RFC 3986 unreserved: A-Z a-z 0-9 - . _ ~
  return (
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x2d ||
    b === 0x2e ||
    b === 0x5f ||
    b === 0x7e
  );
}

/**
 * uriEncodeBytes returns the AWS UriEncode() of raw bytes: unreserved characters are kept, every
 * other byte becomes %XX with upper-case hex, and '/' is kept only when `encodeSlash` is false
 * (object key paths) and encoded otherwise (query keys and values).
 */
export function uriEncodeBytes(bytes: Uint8Array, encodeSlash: boolean): string {
  let out = '';
  for (const b of bytes) {
    if (isUnreserved(b) || (b === 0x2f && !encodeSlash)) out += String.fromCharCode(b);
    else out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/** uriEncode returns the AWS UriEncode() of a string, encoded as UTF-8 first. See uriEncodeBytes. */
export function uriEncode(s: string, encodeSlash: boolean): string {
  return uriEncodeBytes(Buffer.from(s, 'utf8'), encodeSlash);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/**
 * percentDecodeBytes returns the bytes a wire string stands for: each valid `%XX` becomes one byte
 * and everything else is kept as its UTF-8 bytes. It never throws: a stray '%' is a literal '%',
 * which re-encodes to %25 (what a signer that encoded a literal '%' would have signed).
 * With `plusIsSpace`, '+' decodes to a space, as in application/x-www-form-urlencoded query strings
 * (Go's url.ParseQuery and Node's querystring, which MinIO and Arsenal use, do the same).
 */
export function percentDecodeBytes(s: string, plusIsSpace: boolean): Buffer {
  const src = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === 0x25 && i + 2 < src.length) {
      const hi = hexValue(src[i + 1] as number);
      const lo = hexValue(src[i + 2] as number);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = b === 0x2b && plusIsSpace ? 0x20 : b;
  }
  return out.subarray(0, n);
}

/**
 * canonicalUri returns the CanonicalURI of an S3 request from its path as sent on the wire
 * (percent-encoded, no query). S3 does not normalize the path and does not double-encode it: each
 * '/'-separated segment is percent-decoded and then URI-encoded once, so `/test$file.text` and
 * `/test%24file.text` both canonicalize to `/test%24file.text`, and an encoded slash inside a key
 * (%2F) stays %2F. An empty path is '/'.
 */
export function canonicalUri(rawPath: string): string {
  if (rawPath === '') return '/';
  return rawPath
    .split('/')
    .map((segment) => uriEncodeBytes(percentDecodeBytes(segment, false), true))
    .join('/');
}

/** One decoded query parameter; `hasValue` is false for `?lifecycle` (no '='). */
export interface QueryParam {
  key: string;
  value: string;
  hasValue: boolean;
}

/**
 * parseQuery splits a raw query string (after '?', as on the wire) into decoded parameters, in wire
 * order, keeping duplicates. Decoding is lenient (see percentDecodeBytes) and treats '+' as space.
 */
export function parseQuery(rawQuery: string): QueryParam[] {
  const params: QueryParam[] = [];
  if (rawQuery === '') return params;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? '' : part.slice(eq + 1);
    params.push({
      key: percentDecodeBytes(rawKey, true).toString('utf8'),
      value: percentDecodeBytes(rawValue, true).toString('utf8'),
      hasValue: eq !== -1,
    });
  }
  return params;
}

/**
 * canonicalQueryString returns the CanonicalQueryString: every parameter's key and value
 * URI-encoded (with '/' encoded), `key=value` (a key without value gets `key=`), sorted by encoded
 * key and then encoded value in byte order, joined with '&'. For presigned URLs pass
 * `excludeSignature` so that X-Amz-Signature, which cannot sign itself, is left out.
 */
export function canonicalQueryString(rawQuery: string, excludeSignature = false): string {
  const pairs: Array<[string, string]> = [];
  if (rawQuery === '') return '';
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawKey = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? '' : part.slice(eq + 1);
    const keyBytes = percentDecodeBytes(rawKey, true);
    if (excludeSignature && keyBytes.toString('latin1') === 'X-Amz-Signature') continue;
    pairs.push([uriEncodeBytes(keyBytes, true), uriEncodeBytes(percentDecodeBytes(rawValue, true), true)]);
  }
  // Encoded strings are pure ASCII, so UTF-16 code unit order is byte order.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/**
 * canonicalHeaderValue returns a header value as SigV4 canonicalizes it: leading and trailing
 * whitespace trimmed and every run of inner whitespace collapsed to one space. Node joins repeated headers
 * with ', ' already; an array value (set-cookie-like) is joined with ','.
 */
export function canonicalHeaderValue(value: string | string[] | undefined): string {
  if (value === undefined) return '';
  const joined = Array.isArray(value) ? value.map((v) => v.trim()).join(',') : value;
  // Any whitespace run, as the SDKs canonicalize (smithy `/\s+/g`, botocore `' '.join(v.split())`).
  return joined.trim().replace(/\s+/g, ' ');
}

/**
 * signedHeadersList parses the SignedHeaders value (`host;range;x-amz-date`) into header names.
 * Names are kept as given: the canonical request must use exactly the client's string.
 */
export function signedHeadersList(signedHeaders: string): string[] {
  return signedHeaders.split(';');
}

/**
 * signedHeadersOf returns the SignedHeaders string a signer would produce for a set of header
 * names: lower-cased, sorted, ';'-joined. Used by tests and by anything that signs.
 */
export function signedHeadersOf(names: Iterable<string>): string {
  return [...new Set([...names].map((n) => n.toLowerCase()))].sort().join(';');
}

/**
 * canonicalHeaders returns the CanonicalHeaders block: `name:value\n` for each signed header, in
 * the order of `names` (already lower-case and sorted by the signer). `headers` is keyed by
 * lower-case name, like node's IncomingMessage.headers. A missing header canonicalizes to an
 * empty value; the signature then fails to match, which is the right outcome.
 */
export function canonicalHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  names: readonly string[],
): string {
  let out = '';
  for (const name of names) out += `${name}:${canonicalHeaderValue(headers[name])}\n`;
  return out;
}

/**
 * canonicalRequest joins the six parts of the CanonicalRequest with '\n'. `canonicalHeadersBlock`
 * already ends with '\n', which is why the AWS examples show an empty line before SignedHeaders.
 */
export function canonicalRequest(
  method: string,
  canonicalUriValue: string,
  canonicalQuery: string,
  canonicalHeadersBlock: string,
  signedHeaders: string,
  hashedPayload: string,
): string {
  return `${method}\n${canonicalUriValue}\n${canonicalQuery}\n${canonicalHeadersBlock}\n${signedHeaders}\n${hashedPayload}`;
}

/** sha256Hex returns the lower-case hex SHA-256 of a string (UTF-8) or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** credentialScope returns `date/region/service/aws4_request`. */
export function credentialScope(date: string, region: string, service: string): string {
  return `${date}/${region}/${service}/${SIGV4_TERMINATOR}`;
}

/** stringToSign returns `AWS4-HMAC-SHA256\n<amzDate>\n<scope>\n<hex(sha256(canonicalRequest))>`. */
export function stringToSign(amzDate: string, scope: string, canonicalRequestHashHex: string): string {
  return `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${canonicalRequestHashHex}`;
}

/**
 * chunkStringToSign returns the string to sign of one aws-chunked chunk:
 * `AWS4-HMAC-SHA256-PAYLOAD\n<amzDate>\n<scope>\n<previousSignature>\n<sha256("")>\n<sha256(chunk)>`.
 */
export function chunkStringToSign(
  amzDate: string,
  scope: string,
  previousSignature: string,
  chunkSha256Hex: string,
): string {
  return `${CHUNK_ALGORITHM}\n${amzDate}\n${scope}\n${previousSignature}\n${EMPTY_SHA256_HEX}\n${chunkSha256Hex}`;
}

/**
 * trailerStringToSign returns the string to sign of the trailing headers:
 * `AWS4-HMAC-SHA256-TRAILER\n<amzDate>\n<scope>\n<previousSignature>\n<sha256(canonicalTrailers)>`,
 * where canonical trailers are `name:value\n` lines (see canonicalTrailers).
 */
export function trailerStringToSign(
  amzDate: string,
  scope: string,
  previousSignature: string,
  trailersSha256Hex: string,
): string {
  return `${TRAILER_ALGORITHM}\n${amzDate}\n${scope}\n${previousSignature}\n${trailersSha256Hex}`;
}

/** canonicalTrailers returns the trailing headers as signed: `name:value\n` per header, sorted by name. */
export function canonicalTrailers(trailers: ReadonlyMap<string, string>): string {
  const names = [...trailers.keys()].sort();
  let out = '';
  for (const name of names) out += `${name}:${trailers.get(name)}\n`;
  return out;
}

function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** deriveSigningKey computes HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request") without caching. */
export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, SIGV4_TERMINATOR);
}

// Insertion-ordered Map used as a small LRU: a hit is re-inserted at the end, and the oldest entry
// is evicted at SIGNING_KEY_CACHE_MAX. The key includes a hash of the secret, not the secret, so a
// rotated secret misses and the cache holds no secret text.
const signingKeyCache = new Map<string, Buffer>();

/**
 * signingKey returns the SigV4 signing key for (secret, date, region, service), cached in a bounded
 * LRU of SIGNING_KEY_CACHE_MAX entries. The returned buffer is shared: callers must not mutate it.
 */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${sha256Hex(secret)}\0${date}\0${region}\0${service}`;
  const hit = signingKeyCache.get(cacheKey);
  if (hit !== undefined) {
    signingKeyCache.delete(cacheKey);
    signingKeyCache.set(cacheKey, hit);
    return hit;
  }
  const key = deriveSigningKey(secret, date, region, service);
  if (signingKeyCache.size >= SIGNING_KEY_CACHE_MAX) {
    const oldest = signingKeyCache.keys().next();
    assert(oldest.done !== true, 'non-empty cache has an oldest key');
    signingKeyCache.delete(oldest.value);
  }
  signingKeyCache.set(cacheKey, key);
  assert(signingKeyCache.size <= SIGNING_KEY_CACHE_MAX, 'signing key cache is bounded');
  return key;
}

/** signingKeyCacheSize returns the number of cached signing keys (for tests and metrics). */
export function signingKeyCacheSize(): number {
  return signingKeyCache.size;
}

/**
 * Signing keys as KeyObjects, one per key buffer (the cached ones live as long as the cache holds
 * them). createHmac given raw key bytes builds a KeyObject on every call: on Node 24 here that
 * made an HMAC of a string to sign cost ~14 µs of CPU instead of ~2.5 µs, on every request and on
 * every aws-chunked chunk.
 */
const hmacKeys = new WeakMap<Uint8Array, KeyObject>();

function hmacKeyOf(key: Uint8Array): KeyObject {
  let keyObject = hmacKeys.get(key);
  if (keyObject === undefined) {
    keyObject = createSecretKey(key);
    hmacKeys.set(key, keyObject);
  }
  return keyObject;
}

/** signature returns hex(HMAC-SHA256(signingKey, stringToSign)). The key bytes must not change after a first use. */
export function signature(key: Uint8Array, stringToSignValue: string): string {
  return createHmac('sha256', hmacKeyOf(key)).update(stringToSignValue, 'utf8').digest('hex');
}

/**
 * constantTimeEqualHex compares a computed signature with a client-supplied one without leaking
 * through timing where they differ. Strings of different length are unequal (their length is not
 * secret: a signature is always 64 hex characters); otherwise crypto.timingSafeEqual decides.
 */
export function constantTimeEqualHex(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, 'latin1');
  const b = Buffer.from(actual, 'latin1');
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}
