/**
 * parseEndpoint(): an S3 request's method, bucket, key and query → one S3Endpoint, the way
 * Garage's Endpoint enum works. Handlers switch on `kind` exhaustively; operations that exist in
 * S3 but not here come back as `NotImplemented` naming the operation, so they answer 501 instead
 * of being mistaken for a neighbouring operation (GET ?acl must never list the bucket).
 */
import { S3Error } from './errors.ts';

/** Every S3 operation this server routes. */
export type S3Endpoint =
  | { kind: 'ListBuckets' }
  | { kind: 'CreateBucket'; bucket: string }
  | { kind: 'HeadBucket'; bucket: string }
  | { kind: 'DeleteBucket'; bucket: string }
  | { kind: 'GetBucketLocation'; bucket: string }
  | { kind: 'ListObjects'; bucket: string }
  | { kind: 'ListObjectsV2'; bucket: string }
  | { kind: 'DeleteObjects'; bucket: string }
  | { kind: 'PutObject'; bucket: string; key: string }
  | { kind: 'CopyObject'; bucket: string; key: string }
  | { kind: 'GetObject'; bucket: string; key: string }
  | { kind: 'HeadObject'; bucket: string; key: string }
  | { kind: 'DeleteObject'; bucket: string; key: string }
  | { kind: 'PostObject'; bucket: string }
  | { kind: BucketOperation; bucket: string }
  | { kind: ObjectOperation; bucket: string; key: string }
  | { kind: UploadOperation; bucket: string; key: string; uploadId: string }
  | { kind: 'NotImplemented'; operation: string };

/** Implemented bucket subresource operations: the endpoint carries the bucket. */
const BUCKET_OPERATIONS = [
  'ListMultipartUploads',
  'GetBucketTagging',
  'PutBucketTagging',
  'DeleteBucketTagging',
  'GetBucketCors',
  'PutBucketCors',
  'DeleteBucketCors',
  'GetBucketAcl',
  'PutBucketAcl',
  'GetBucketOwnershipControls',
  'PutBucketOwnershipControls',
  'DeleteBucketOwnershipControls',
  'GetBucketPolicy',
  'PutBucketPolicy',
  'DeleteBucketPolicy',
] as const;
type BucketOperation = (typeof BUCKET_OPERATIONS)[number];

/** Implemented object subresource operations: the endpoint carries bucket and key. */
const OBJECT_OPERATIONS = [
  'CreateMultipartUpload',
  'GetObjectTagging',
  'PutObjectTagging',
  'DeleteObjectTagging',
  'GetObjectAttributes',
  'GetObjectAcl',
  'PutObjectAcl',
] as const;
type ObjectOperation = (typeof OBJECT_OPERATIONS)[number];

/** Operations on one multipart upload (?uploadId=…). */
type UploadOperation = 'ListParts' | 'UploadPart' | 'UploadPartCopy' | 'CompleteMultipartUpload' | 'AbortMultipartUpload';

/** Bucket subresources (query parameters) and the operation each names, per method. */
const BUCKET_SUBRESOURCES: Record<string, Partial<Record<string, string>>> = {
  accelerate: { GET: 'GetBucketAccelerateConfiguration', PUT: 'PutBucketAccelerateConfiguration' },
  acl: { GET: 'GetBucketAcl', PUT: 'PutBucketAcl' },
  analytics: { GET: 'GetBucketAnalyticsConfiguration', PUT: 'PutBucketAnalyticsConfiguration', DELETE: 'DeleteBucketAnalyticsConfiguration' },
  cors: { GET: 'GetBucketCors', PUT: 'PutBucketCors', DELETE: 'DeleteBucketCors' },
  encryption: { GET: 'GetBucketEncryption', PUT: 'PutBucketEncryption', DELETE: 'DeleteBucketEncryption' },
  'intelligent-tiering': { GET: 'GetBucketIntelligentTieringConfiguration', PUT: 'PutBucketIntelligentTieringConfiguration' },
  inventory: { GET: 'GetBucketInventoryConfiguration', PUT: 'PutBucketInventoryConfiguration', DELETE: 'DeleteBucketInventoryConfiguration' },
  lifecycle: { GET: 'GetBucketLifecycleConfiguration', PUT: 'PutBucketLifecycleConfiguration', DELETE: 'DeleteBucketLifecycle' },
  logging: { GET: 'GetBucketLogging', PUT: 'PutBucketLogging' },
  metrics: { GET: 'GetBucketMetricsConfiguration', PUT: 'PutBucketMetricsConfiguration', DELETE: 'DeleteBucketMetricsConfiguration' },
  notification: { GET: 'GetBucketNotificationConfiguration', PUT: 'PutBucketNotificationConfiguration' },
  'object-lock': { GET: 'GetObjectLockConfiguration', PUT: 'PutObjectLockConfiguration' },
  ownershipControls: { GET: 'GetBucketOwnershipControls', PUT: 'PutBucketOwnershipControls', DELETE: 'DeleteBucketOwnershipControls' },
  policy: { GET: 'GetBucketPolicy', PUT: 'PutBucketPolicy', DELETE: 'DeleteBucketPolicy' },
  policyStatus: { GET: 'GetBucketPolicyStatus' },
  publicAccessBlock: { GET: 'GetPublicAccessBlock', PUT: 'PutPublicAccessBlock', DELETE: 'DeletePublicAccessBlock' },
  replication: { GET: 'GetBucketReplication', PUT: 'PutBucketReplication', DELETE: 'DeleteBucketReplication' },
  requestPayment: { GET: 'GetBucketRequestPayment', PUT: 'PutBucketRequestPayment' },
  tagging: { GET: 'GetBucketTagging', PUT: 'PutBucketTagging', DELETE: 'DeleteBucketTagging' },
  uploads: { GET: 'ListMultipartUploads' },
  versioning: { GET: 'GetBucketVersioning', PUT: 'PutBucketVersioning' },
  versions: { GET: 'ListObjectVersions' },
  website: { GET: 'GetBucketWebsite', PUT: 'PutBucketWebsite', DELETE: 'DeleteBucketWebsite' },
};

/** Object subresources and the operation each names, per method. */
const OBJECT_SUBRESOURCES: Record<string, Partial<Record<string, string>>> = {
  acl: { GET: 'GetObjectAcl', PUT: 'PutObjectAcl' },
  attributes: { GET: 'GetObjectAttributes' },
  'legal-hold': { GET: 'GetObjectLegalHold', PUT: 'PutObjectLegalHold' },
  restore: { POST: 'RestoreObject' },
  retention: { GET: 'GetObjectRetention', PUT: 'PutObjectRetention' },
  select: { POST: 'SelectObjectContent' },
  tagging: { GET: 'GetObjectTagging', PUT: 'PutObjectTagging', DELETE: 'DeleteObjectTagging' },
  torrent: { GET: 'GetObjectTorrent' },
  uploads: { POST: 'CreateMultipartUpload' },
};

/** Parses the operation. `bucket`/`key` are decoded; `key` is undefined for bucket requests. */
export function parseEndpoint(
  method: string,
  bucket: string | undefined,
  key: string | undefined,
  query: URLSearchParams,
  headers: Record<string, string | string[] | undefined>,
): S3Endpoint {
  if (bucket === undefined) {
    if (method === 'GET') return { kind: 'ListBuckets' };
    throw methodNotAllowed('GET');
  }
  if (key === undefined) return parseBucketEndpoint(method, bucket, query, headers);
  return parseObjectEndpoint(method, bucket, key, query, headers);
}

function parseBucketEndpoint(method: string, bucket: string, query: URLSearchParams, headers: Record<string, string | string[] | undefined>): S3Endpoint {
  const sub = subresource(query, BUCKET_SUBRESOURCES, method);
  if (sub) {
    if (sub.kind === 'NotImplemented' && (BUCKET_OPERATIONS as readonly string[]).includes(sub.operation)) return { kind: sub.operation as BucketOperation, bucket };
    return sub;
  }
  switch (method) {
    case 'GET':
      if (query.has('location')) return { kind: 'GetBucketLocation', bucket };
      if (query.get('list-type') === '2') return { kind: 'ListObjectsV2', bucket };
      return { kind: 'ListObjects', bucket };
    case 'HEAD':
      return { kind: 'HeadBucket', bucket };
    case 'PUT':
      return { kind: 'CreateBucket', bucket };
    case 'DELETE':
      return { kind: 'DeleteBucket', bucket };
    case 'POST':
      if (query.has('delete')) return { kind: 'DeleteObjects', bucket };
      if (isFormData(headers['content-type'])) return { kind: 'PostObject', bucket };
      throw new S3Error('InvalidRequest', 'POST to a bucket needs ?delete or a multipart/form-data body (browser upload).');
    default:
      throw methodNotAllowed('GET, HEAD, PUT, DELETE, POST');
  }
}

function parseObjectEndpoint(
  method: string,
  bucket: string,
  key: string,
  query: URLSearchParams,
  headers: Record<string, string | string[] | undefined>,
): S3Endpoint {
  const uploadId = query.get('uploadId');
  if (uploadId !== null) {
    const ops: Record<string, UploadOperation> = {
      GET: 'ListParts',
      PUT: headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart',
      POST: 'CompleteMultipartUpload',
      DELETE: 'AbortMultipartUpload',
    };
    const op = ops[method];
    if (op) return { kind: op, bucket, key, uploadId };
    throw methodNotAllowed('GET, PUT, POST, DELETE');
  }
  const sub = subresource(query, OBJECT_SUBRESOURCES, method);
  if (sub) {
    if (sub.kind === 'NotImplemented' && (OBJECT_OPERATIONS as readonly string[]).includes(sub.operation)) return { kind: sub.operation as ObjectOperation, bucket, key };
    return sub;
  }
  switch (method) {
    case 'GET':
      return { kind: 'GetObject', bucket, key };
    case 'HEAD':
      return { kind: 'HeadObject', bucket, key };
    case 'PUT':
      return headers['x-amz-copy-source'] !== undefined ? { kind: 'CopyObject', bucket, key } : { kind: 'PutObject', bucket, key };
    case 'DELETE':
      return { kind: 'DeleteObject', bucket, key };
    default:
      throw methodNotAllowed('GET, HEAD, PUT, DELETE');
  }
}

function subresource(query: URLSearchParams, table: Record<string, Partial<Record<string, string>>>, method: string): S3Endpoint | undefined {
  for (const name of query.keys()) {
    const ops = table[name];
    if (!ops) continue;
    const operation = ops[method];
    if (operation) return { kind: 'NotImplemented', operation };
    throw methodNotAllowed(Object.keys(ops).join(', '));
  }
  return undefined;
}

/** True for a multipart/form-data Content-Type (a browser POST upload). */
export function isFormData(contentType: string | string[] | undefined): boolean {
  const value = Array.isArray(contentType) ? contentType[0] : contentType;
  return value !== undefined && /^\s*multipart\/form-data\s*(;|$)/i.test(value);
}

function methodNotAllowed(allow: string): S3Error {
  return new S3Error('MethodNotAllowed', undefined, {}, { Allow: allow });
}

/**
 * The operation a request names, for metrics: the S3Endpoint kind (NotImplemented ones by their
 * own name), `Internal` for node-to-node and operator paths (/_ts3gw/…), `Metrics`/`Health` for
 * those endpoints, and `Invalid` when the request names no operation. A bounded set of values,
 * so it can be a label.
 */
export function operationOf(method: string, target: { bucket?: string | undefined; key?: string | undefined; query: URLSearchParams }, headers: Record<string, string | string[] | undefined>): string {
  if (target.bucket === '_ts3gw') return 'Internal';
  if (target.bucket === 'metrics' && target.key === undefined) return 'Metrics';
  if (target.bucket === 'health') return 'Health';
  try {
    const endpoint = parseEndpoint(method, target.bucket, target.key, target.query, headers);
    return endpoint.kind === 'NotImplemented' ? `NotImplemented` : endpoint.kind;
  } catch {
    return 'Invalid';
  }
}
