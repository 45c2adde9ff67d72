/**
 * ListObjects (v1) and ListObjectsV2 over the object layer's key-bounded pages.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
 */
import type { ListPage, ObjectRecord } from '../../objects/types.ts';
import { S3Error } from '../errors.ts';
import { type RequestContext, intParam, isoDate } from '../context.ts';
import { renderXml, type XmlNode } from '../xml.ts';

/** S3's page size limit and default. */
export const LIST_KEYS_MAX = 1000;

interface ListParams {
  prefix: string;
  delimiter: string;
  maxKeys: number;
  encodeUrl: boolean;
}

function listParams(query: URLSearchParams): ListParams {
  const encoding = query.get('encoding-type');
  if (encoding !== null && encoding !== 'url') {
    throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type', ArgumentValue: encoding });
  }
  return {
    prefix: query.get('prefix') ?? '',
    delimiter: query.get('delimiter') ?? '',
    maxKeys: intParam(query, 'max-keys', LIST_KEYS_MAX, LIST_KEYS_MAX),
    encodeUrl: encoding === 'url',
  };
}

/** GET /bucket — ListObjects v1 with marker pagination. */
export async function listObjectsV1(ctx: RequestContext, bucket: string): Promise<void> {
  const p = listParams(ctx.target.query);
  const marker = ctx.target.query.get('marker') ?? '';
  const page = await ctx.deps.objects.listObjects(bucket, { prefix: p.prefix, delimiter: p.delimiter, startAfter: marker, maxKeys: p.maxKeys });
  const enc = encoder(p.encodeUrl);
  const body: XmlNode = {
    Name: bucket,
    Prefix: enc(p.prefix),
    Marker: enc(marker),
    MaxKeys: p.maxKeys,
    ...(p.delimiter ? { Delimiter: enc(p.delimiter) } : {}),
    IsTruncated: page.isTruncated,
    // S3 sends NextMarker only with a delimiter; without one, clients use the last key.
    ...(page.isTruncated && p.delimiter && page.lastReturned !== undefined ? { NextMarker: enc(page.lastReturned) } : {}),
    ...(p.encodeUrl ? { EncodingType: 'url' } : {}),
    ...entries(page, enc, true),
  };
  ctx.reply.type('application/xml').send(renderXml('ListBucketResult', body));
}

/** GET /bucket?list-type=2 — ListObjectsV2 with continuation tokens that name a key. */
export async function listObjectsV2(ctx: RequestContext, bucket: string): Promise<void> {
  const q = ctx.target.query;
  const p = listParams(q);
  const token = q.get('continuation-token');
  const startAfter = q.get('start-after') ?? '';
  const after = token !== null ? decodeToken(token) : startAfter;
  const page = await ctx.deps.objects.listObjects(bucket, { prefix: p.prefix, delimiter: p.delimiter, startAfter: after, maxKeys: p.maxKeys });
  const enc = encoder(p.encodeUrl);
  const body: XmlNode = {
    Name: bucket,
    Prefix: enc(p.prefix),
    MaxKeys: p.maxKeys,
    KeyCount: page.objects.length + page.commonPrefixes.length,
    ...(p.delimiter ? { Delimiter: enc(p.delimiter) } : {}),
    IsTruncated: page.isTruncated,
    ...(token !== null ? { ContinuationToken: token } : {}),
    ...(page.isTruncated && page.lastReturned !== undefined ? { NextContinuationToken: encodeToken(page.lastReturned) } : {}),
    ...(startAfter !== '' ? { StartAfter: enc(startAfter) } : {}),
    ...(p.encodeUrl ? { EncodingType: 'url' } : {}),
    ...entries(page, enc, q.get('fetch-owner') === 'true'),
  };
  ctx.reply.type('application/xml').send(renderXml('ListBucketResult', body));
}

function entries(page: ListPage, enc: (s: string) => string, withOwner: boolean): XmlNode {
  return {
    Contents: page.objects.map(({ key, object }) => contents(key, object, enc, withOwner)),
    CommonPrefixes: page.commonPrefixes.map((prefix) => ({ Prefix: enc(prefix) })),
  };
}

function contents(key: string, o: ObjectRecord, enc: (s: string) => string, withOwner: boolean): XmlNode {
  return {
    Key: enc(key),
    LastModified: isoDate(o.lastModifiedMs),
    ETag: `"${o.etag}"`,
    ...(o.checksum ? { ChecksumAlgorithm: o.checksum.algorithm, ChecksumType: o.checksum.type } : {}),
    Size: o.sizeBytes,
    ...(withOwner ? { Owner: { ID: o.owner, DisplayName: o.owner } } : {}),
    StorageClass: 'STANDARD',
  };
}

/** encoding-type=url: percent-encode like encodeURIComponent but keep '/' readable, as S3 does. */
function encoder(encodeUrl: boolean): (s: string) => string {
  return encodeUrl ? (s) => encodeURIComponent(s).replace(/%2F/g, '/') : (s) => s;
}

/** Continuation tokens are the last returned key, base64url-encoded: any node can resume them. */
export function encodeToken(lastReturned: string): string {
  return Buffer.from(lastReturned, 'utf8').toString('base64url');
}

/** Decodes a continuation token; InvalidArgument when it is not one of ours. */
export function decodeToken(token: string): string {
  const decoded = Buffer.from(token, 'base64url');
  if (token === '' || decoded.toString('base64url') !== token) {
    throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
  }
  return decoded.toString('utf8');
}
