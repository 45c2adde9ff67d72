/**
 * Goal: requests route to the right S3 operation without HTTP, and operations we do not have
 * route to NotImplemented rather than to a neighbour (GET ?acl must never list a bucket).
 */
import test from 'ava';
import { parseEndpoint } from '../../../src/s3/endpoint.ts';
import { parseTarget } from '../../../src/s3/names.ts';
import { parseRange } from '../../../src/s3/handlers/object.ts';

const route = (method: string, url: string, headers: Record<string, string> = {}, host?: string, domain?: string) => {
  const t = parseTarget(url, host, domain);
  return parseEndpoint(method, t.bucket, t.key, t.query, headers);
};

test('service, bucket and object operations', (t) => {
  t.deepEqual(route('GET', '/'), { kind: 'ListBuckets' });
  t.deepEqual(route('PUT', '/bkt'), { kind: 'CreateBucket', bucket: 'bkt' });
  t.deepEqual(route('PUT', '/bkt/'), { kind: 'CreateBucket', bucket: 'bkt' });
  t.deepEqual(route('GET', '/bkt?list-type=2&prefix=a'), { kind: 'ListObjectsV2', bucket: 'bkt' });
  t.deepEqual(route('GET', '/bkt?prefix=a'), { kind: 'ListObjects', bucket: 'bkt' });
  t.deepEqual(route('GET', '/bkt?location'), { kind: 'GetBucketLocation', bucket: 'bkt' });
  t.deepEqual(route('POST', '/bkt?delete'), { kind: 'DeleteObjects', bucket: 'bkt' });
  t.deepEqual(route('PUT', '/bkt/a/b'), { kind: 'PutObject', bucket: 'bkt', key: 'a/b' });
  t.deepEqual(route('PUT', '/bkt/a', { 'x-amz-copy-source': '/s/k' }), { kind: 'CopyObject', bucket: 'bkt', key: 'a' });
  t.deepEqual(route('HEAD', '/bkt/a%20b'), { kind: 'HeadObject', bucket: 'bkt', key: 'a b' });
  t.deepEqual(route('DELETE', '/bkt/k'), { kind: 'DeleteObject', bucket: 'bkt', key: 'k' });
});

test('unimplemented subresources are NotImplemented, named', (t) => {
  t.deepEqual(route('PUT', '/bkt?lifecycle'), { kind: 'NotImplemented', operation: 'PutBucketLifecycleConfiguration' });
  t.deepEqual(route('GET', '/bkt/k?torrent'), { kind: 'NotImplemented', operation: 'GetObjectTorrent' });
  t.throws(() => route('POST', '/bkt?acl'), { message: /not allowed/ });
});

test('ACL and ownership-control routes', (t) => {
  t.deepEqual(route('GET', '/bkt?acl'), { kind: 'GetBucketAcl', bucket: 'bkt' });
  t.deepEqual(route('PUT', '/bkt?acl'), { kind: 'PutBucketAcl', bucket: 'bkt' });
  t.deepEqual(route('GET', '/bkt/k?acl'), { kind: 'GetObjectAcl', bucket: 'bkt', key: 'k' });
  t.deepEqual(route('PUT', '/bkt/k?acl'), { kind: 'PutObjectAcl', bucket: 'bkt', key: 'k' });
  t.deepEqual(route('GET', '/bkt?ownershipControls'), { kind: 'GetBucketOwnershipControls', bucket: 'bkt' });
  t.deepEqual(route('PUT', '/bkt?ownershipControls'), { kind: 'PutBucketOwnershipControls', bucket: 'bkt' });
  t.deepEqual(route('DELETE', '/bkt?ownershipControls'), { kind: 'DeleteBucketOwnershipControls', bucket: 'bkt' });
  t.deepEqual(route('PUT', '/bkt?policy'), { kind: 'PutBucketPolicy', bucket: 'bkt' });
  t.deepEqual(route('GET', '/bkt?policy'), { kind: 'GetBucketPolicy', bucket: 'bkt' });
  t.deepEqual(route('DELETE', '/bkt?policy'), { kind: 'DeleteBucketPolicy', bucket: 'bkt' });
});

test('multipart, tagging, attributes, CORS and browser POST routes', (t) => {
  t.deepEqual(route('GET', '/bkt?uploads'), { kind: 'ListMultipartUploads', bucket: 'bkt' });
  t.deepEqual(route('POST', '/bkt/k?uploads'), { kind: 'CreateMultipartUpload', bucket: 'bkt', key: 'k' });
  t.deepEqual(route('PUT', '/bkt/k?partNumber=1&uploadId=x'), { kind: 'UploadPart', bucket: 'bkt', key: 'k', uploadId: 'x' });
  t.deepEqual(route('PUT', '/bkt/k?partNumber=1&uploadId=x', { 'x-amz-copy-source': 's/k' }), { kind: 'UploadPartCopy', bucket: 'bkt', key: 'k', uploadId: 'x' });
  t.deepEqual(route('POST', '/bkt/k?uploadId=x'), { kind: 'CompleteMultipartUpload', bucket: 'bkt', key: 'k', uploadId: 'x' });
  t.deepEqual(route('DELETE', '/bkt/k?uploadId=x'), { kind: 'AbortMultipartUpload', bucket: 'bkt', key: 'k', uploadId: 'x' });
  t.deepEqual(route('GET', '/bkt/k?uploadId=x'), { kind: 'ListParts', bucket: 'bkt', key: 'k', uploadId: 'x' });
  t.deepEqual(route('GET', '/bkt/k?tagging'), { kind: 'GetObjectTagging', bucket: 'bkt', key: 'k' });
  t.deepEqual(route('DELETE', '/bkt?tagging'), { kind: 'DeleteBucketTagging', bucket: 'bkt' });
  t.deepEqual(route('GET', '/bkt/k?attributes'), { kind: 'GetObjectAttributes', bucket: 'bkt', key: 'k' });
  t.deepEqual(route('PUT', '/bkt?cors'), { kind: 'PutBucketCors', bucket: 'bkt' });
  t.deepEqual(route('POST', '/bkt', { 'content-type': 'multipart/form-data; boundary=x' }), { kind: 'PostObject', bucket: 'bkt' });
  t.throws(() => route('POST', '/bkt'), { message: /multipart\/form-data/ });
});

test('keys keep dots, double slashes and encoded characters verbatim', (t) => {
  t.deepEqual(route('GET', '/bkt//lead'), { kind: 'GetObject', bucket: 'bkt', key: '/lead' });
  t.deepEqual(route('GET', '/bkt/../x'), { kind: 'GetObject', bucket: 'bkt', key: '../x' });
  t.deepEqual(route('GET', '/bkt/%2e%2e%2fetc'), { kind: 'GetObject', bucket: 'bkt', key: '../etc' });
  t.throws(() => route('GET', '/bkt/%E0%A4%A'), { message: /parse/ });
});

test('virtual-hosted style takes the bucket from the Host under the configured domain', (t) => {
  t.deepEqual(route('GET', '/k/x', {}, 'photos.s3.local:9000', 's3.local'), { kind: 'GetObject', bucket: 'photos', key: 'k/x' });
  t.deepEqual(route('GET', '/', {}, 'photos.s3.local', 's3.local'), { kind: 'ListObjects', bucket: 'photos' });
  t.deepEqual(route('GET', '/', {}, 's3.local', 's3.local'), { kind: 'ListBuckets' });
  t.deepEqual(route('GET', '/photos/k', {}, '127.0.0.1:9000', 's3.local'), { kind: 'GetObject', bucket: 'photos', key: 'k' });
});

test('ranges: single, open, suffix; unsatisfiable throws InvalidRange; odd syntax serves all', (t) => {
  t.deepEqual(parseRange('bytes=0-9', 100), [0, 9]);
  t.deepEqual(parseRange('bytes=90-', 100), [90, 99]);
  t.deepEqual(parseRange('bytes=-10', 100), [90, 99]);
  t.deepEqual(parseRange('bytes=-1000', 100), [0, 99]);
  t.deepEqual(parseRange('bytes=50-1000', 100), [50, 99]);
  t.is(parseRange(undefined, 100), undefined);
  t.is(parseRange('bytes=0-1,5-6', 100), undefined);
  t.is(parseRange('items=0-1', 100), undefined);
  t.is(parseRange('bytes=9-3', 100), undefined);
  t.throws(() => parseRange('bytes=100-', 100), { message: /not satisfiable/ });
  t.throws(() => parseRange('bytes=-0', 100), { message: /not satisfiable/ });
  t.throws(() => parseRange('bytes=0-', 0), { message: /not satisfiable/ });
});
