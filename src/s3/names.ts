/**
 * Bucket and key names: the request target's parsing (path-style and virtual-hosted-style) and
 * the naming rules of https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
 * and object-keys.html.
 */
import { S3Error } from './errors.ts';

/** S3's object key limit: 1024 bytes of UTF-8. */
export const KEY_BYTES_MAX = 1024;

/** Where a request points: its bucket and key (decoded), and the raw path and query for SigV4. */
export interface RequestTarget {
  bucket?: string;
  key?: string;
  rawPath: string;
  rawQuery: string;
  query: URLSearchParams;
}

/**
 * Splits the request-target. With `domain` set, a Host of `<bucket>.<domain>` selects
 * virtual-hosted style and the whole path is the key; otherwise the first path segment is the
 * bucket. Keys are taken verbatim after percent-decoding: `..`, `./` and `//` are ordinary key
 * characters in S3 (keys are database keys here, never file paths).
 */
export function parseTarget(rawUrl: string, host: string | undefined, domain: string | undefined): RequestTarget {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
  if (!rawPath.startsWith('/')) throw new S3Error('InvalidURI');
  const query = new URLSearchParams(rawQuery);
  const hostBucket = bucketFromHost(host, domain);
  if (hostBucket !== undefined) {
    const key = decodePath(rawPath).slice(1);
    return { bucket: hostBucket, ...(key === '' ? {} : { key }), rawPath, rawQuery, query };
  }
  // Split at the first literal '/' of the RAW path, then decode each part: an encoded slash
  // (%2F) inside the first segment belongs to the bucket name (and makes it invalid), it never
  // moves bytes from the bucket into the key.
  const slash = rawPath.indexOf('/', 1);
  const bucket = decodePath(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
  const key = slash < 0 ? '' : decodePath(rawPath.slice(slash + 1));
  return { ...(bucket === '' ? {} : { bucket }), ...(key === '' ? {} : { key }), rawPath, rawQuery, query };
}

function decodePath(rawPath: string): string {
  try {
    return decodeURIComponent(rawPath);
  } catch {
    throw new S3Error('InvalidURI', "Couldn't parse the specified URI.");
  }
}

/** The bucket a virtual-hosted-style Host header names (`bucket.<domain>`), or undefined. */
export function bucketFromHost(host: string | undefined, domain: string | undefined): string | undefined {
  if (!host || !domain) return undefined;
  const name = host.replace(/:\d+$/, '').toLowerCase();
  const suffix = `.${domain.toLowerCase()}`;
  if (!name.endsWith(suffix) || name.length === suffix.length) return undefined;
  return name.slice(0, -suffix.length);
}

/** Checks a bucket name for creation; InvalidBucketName with the broken rule otherwise. */
export function validateBucketName(name: string): void {
  const problem = bucketNameProblem(name);
  if (problem) throw new S3Error('InvalidBucketName', `The specified bucket is not valid: ${problem}`, { BucketName: name });
}

/** The first naming rule `name` breaks, or undefined. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long';
  if (!/^[a-z0-9.-]+$/.test(name)) return 'may contain only lowercase letters, digits, dots and hyphens';
  if (!/^[a-z0-9].*[a-z0-9]$/.test(name)) return 'must begin and end with a letter or digit';
  if (name.includes('..')) return 'must not contain two adjacent dots';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'must not be formatted as an IP address';
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return 'uses a reserved prefix';
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return 'uses a reserved suffix';
  return undefined;
}

/** Checks an object key: at most 1024 UTF-8 bytes (KeyTooLongError) and no NUL (InvalidArgument). */
export function validateKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') > KEY_BYTES_MAX) throw new S3Error('KeyTooLongError');
  // NUL cannot be stored (it separates key parts) nor sent in XML 1.0 listings.
  if (key.includes('\0')) throw new S3Error('InvalidArgument', 'Object key must not contain the NUL character.', { ArgumentName: 'key' });
  if (key.isWellFormed && !key.isWellFormed()) throw new S3Error('InvalidArgument', 'Object key must be valid UTF-8.');
}
