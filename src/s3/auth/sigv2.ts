/**
 * AWS Signature Version 2 for S3, one pure function per step, unit-tested against the examples
 * AWS publishes in https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html
 * (header and query-string authentication) and
 * https://docs.aws.amazon.com/AmazonS3/latest/API/HTTPPOSTForms.html (POST policies).
 *
 *   StringToSign = Method \n Content-MD5 \n Content-Type \n Date-or-Expires \n
 *                  canonicalizedAmzHeaders(headers) + canonicalizedResource(path, query, hostBucket)
 *        │ HMAC-SHA1(secret), base64
 *        ▼
 *   signatureV2 ── compared with the client's by constantTimeEqual()
 *
 * SigV2 signs no payload: Content-MD5, when sent, is what protects the body (the body reader
 * checks it). Only `node:crypto` is used; nothing here reads a clock or does I/O.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parseQuery } from './sigv4.ts';

/** The algorithm word of a SigV2 Authorization header: `AWS AKID:signature`. */
export const SIGV2_ALGORITHM = 'AWS';

/**
 * Query parameters that are part of the CanonicalizedResource. AWS's document lists acl,
 * lifecycle, location, logging, notification, partNumber, policy, requestPayment, torrent,
 * uploadId, uploads, versionId, versioning, versions, website, delete and the response-*
 * overrides; the sub-resources added to S3 since (tagging, cors, restore, …) are signed by the
 * SigV2 signers still in use (botocore's HmacV1Auth, s3cmd, aws-sdk-js v2) and checked by MinIO
 * and Arsenal, so they are here too.
 */
export const SIGV2_SUB_RESOURCES: ReadonlySet<string> = new Set([
  'accelerate',
  'acl',
  'analytics',
  'cors',
  'delete',
  'encryption',
  'inventory',
  'legal-hold',
  'lifecycle',
  'location',
  'logging',
  'metrics',
  'notification',
  'object-lock',
  'partNumber',
  'policy',
  'replication',
  'requestPayment',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'response-content-language',
  'response-content-type',
  'response-expires',
  'restore',
  'retention',
  'select',
  'select-type',
  'tagging',
  'torrent',
  'uploadId',
  'uploads',
  'versionId',
  'versioning',
  'versions',
  'website',
]);

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** Trims a header value and unfolds obsolete line folding (RFC 2616 §4.2) into one space. */
function amzHeaderValue(value: string): string {
  return value.replace(/\r?\n[ \t]+/g, ' ').trim();
}

/**
 * canonicalizedAmzHeaders returns the CanonicalizedAmzHeaders element: every `x-amz-*` header,
 * name lower-cased, sorted by name, values trimmed (inner whitespace is kept, as the signers do),
 * repeated headers joined with ',' without spaces, each line ending in '\n'. `exclude` names
 * headers to leave out (x-amz-date in AWS's "Date alternative" example). Empty when there is none.
 */
export function canonicalizedAmzHeaders(headers: Headers, exclude: ReadonlySet<string> = new Set()): string {
  const lines = new Map<string, string>();
  for (const [rawName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (!name.startsWith('x-amz-') || exclude.has(name)) continue;
    const joined = (Array.isArray(value) ? value : [value]).map(amzHeaderValue).join(',');
    const prev = lines.get(name);
    lines.set(name, prev === undefined ? joined : `${prev},${joined}`);
  }
  // Names are ASCII (HTTP tokens), so code unit order is byte order.
  return [...lines.keys()]
    .sort()
    .map((name) => `${name}:${lines.get(name)}\n`)
    .join('');
}

/**
 * canonicalizedResource returns the CanonicalizedResource element: `/bucket` when the bucket was
 * named by the Host header (virtual-hosted style), then the request path exactly as on the wire
 * (un-decoded, case kept), then the sub-resources present in the query, sorted by name, as
 * `?name` or `?name=value` joined by '&', with values decoded (AWS: "When signing, you do not
 * encode these values"). Other query parameters are not signed. An empty value signs as the bare
 * name (`?acl=` like `?acl`), as MinIO and Arsenal do.
 */
export function canonicalizedResource(rawPath: string, rawQuery: string, virtualHostBucket?: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  let resource = virtualHostBucket === undefined ? path : `/${virtualHostBucket}${path}`;
  const subs = parseQuery(rawQuery).filter((p) => SIGV2_SUB_RESOURCES.has(p.key));
  if (subs.length > 0) {
    // Array.prototype.sort is stable: repeated names keep their wire order.
    subs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    resource += `?${subs.map((p) => (p.value === '' ? p.key : `${p.key}=${p.value}`)).join('&')}`;
  }
  return resource;
}

/** The parts of a SigV2 string to sign; `date` is the Date (header auth) or Expires (query auth). */
export interface StringToSignV2Parts {
  method: string;
  contentMd5: string;
  contentType: string;
  date: string;
  amzHeaders: string;
  resource: string;
}

/** stringToSignV2 joins `method\nContent-MD5\nContent-Type\ndate\n` + amz headers + resource. */
export function stringToSignV2(p: StringToSignV2Parts): string {
  return `${p.method}\n${p.contentMd5}\n${p.contentType}\n${p.date}\n${p.amzHeaders}${p.resource}`;
}

/** signatureV2 returns base64(HMAC-SHA1(secret, UTF-8(stringToSign))): request and POST policy signatures alike. */
export function signatureV2(secret: string, stringToSign: string): string {
  return createHmac('sha1', secret).update(stringToSign, 'utf8').digest('base64');
}

/**
 * stringToSignBytes returns the string to sign as AWS shows it in SignatureDoesNotMatch errors
 * (`<StringToSignBytes>47 45 54 0a …`): its UTF-8 bytes as two-digit hex, space-separated.
 */
export function stringToSignBytes(stringToSign: string): string {
  return [...Buffer.from(stringToSign, 'utf8')].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/**
 * constantTimeEqual compares a computed signature with a client-supplied one without leaking
 * through timing where they differ. Different lengths are unequal (a SigV2 signature is always
 * 28 base64 characters, so its length is no secret).
 */
export function constantTimeEqual(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(actual, 'utf8');
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/**
 * parseAuthorizationV2 splits `AWS AKID:signature` into its access key id and signature, or
 * returns undefined when the value does not have that shape (no key, no signature, no colon).
 * The access key id is everything before the first ':'; base64 has no ':' either.
 */
export function parseAuthorizationV2(value: string): { accessKeyId: string; signature: string } | undefined {
  if (!value.startsWith(`${SIGV2_ALGORITHM} `)) return undefined;
  const rest = value.slice(SIGV2_ALGORITHM.length + 1).trim();
  const colon = rest.indexOf(':');
  if (colon <= 0 || colon === rest.length - 1) return undefined;
  const accessKeyId = rest.slice(0, colon);
  const signature = rest.slice(colon + 1);
  if (/\s/.test(accessKeyId) || /\s/.test(signature)) return undefined;
  return { accessKeyId, signature };
}

/**
 * requestStringsToSignV2 returns the strings a SigV2 client may have signed for a request, the
 * one AWS's text describes first. They differ only in how a request that carries both x-amz-date
 * and Date is read, where signers and AWS's own document disagree:
 *   1. Date position = the Date header ('' when absent), x-amz-date among the amz headers
 *      (s3cmd, aws-sdk-js v2, botocore, MinIO, Arsenal);
 *   2. with x-amz-date: Date position '' (AWS's text: "use the empty string for the Date");
 *   3. with x-amz-date: Date position = x-amz-date, x-amz-date not among the amz headers (AWS's
 *      published "Delete" example, whose signature verifies only this way).
 * Each is a deterministic function of the signed request, so accepting any of them lets no one
 * without the secret sign anything. For query authentication `expires` replaces the date and
 * only the first form exists.
 */
export function requestStringsToSignV2(
  method: string,
  headers: Headers,
  rawPath: string,
  rawQuery: string,
  virtualHostBucket: string | undefined,
  expires?: string,
): string[] {
  const one = (name: string): string => {
    const v = headers[name];
    return v === undefined ? '' : (Array.isArray(v) ? v.join(',') : v).trim();
  };
  const base = {
    method,
    contentMd5: one('content-md5'),
    contentType: one('content-type'),
    resource: canonicalizedResource(rawPath, rawQuery, virtualHostBucket),
  };
  const amzHeaders = canonicalizedAmzHeaders(headers);
  if (expires !== undefined) return [stringToSignV2({ ...base, date: expires, amzHeaders })];
  const out = [stringToSignV2({ ...base, date: one('date'), amzHeaders })];
  if (headers['x-amz-date'] !== undefined) {
    const alt = stringToSignV2({ ...base, date: '', amzHeaders });
    if (alt !== out[0]) out.push(alt);
    out.push(
      stringToSignV2({ ...base, date: one('x-amz-date'), amzHeaders: canonicalizedAmzHeaders(headers, new Set(['x-amz-date'])) }),
    );
  }
  return out;
}
