/**
 * Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { evaluateReadConditions, type ReadConditions, unquote } from '../../objects/conditions.ts';
import type { ObjectRecord, WriteCondition } from '../../objects/types.ts';
import { readObjectBody, readXmlBody } from '../body.ts';
import { parseChecksumRequest } from '../checksum.ts';
import { drained } from '../../util/drained.ts';
import { type RequestContext, dateHeader, header, httpDate, isoDate } from '../context.ts';
import { S3Error, toS3Error } from '../errors.ts';
import { validateKey } from '../names.ts';
import { children, childText, renderXml, type XmlNode } from '../xml.ts';
import { tagsFromHeader } from './tagging.ts';

/** System headers stored with an object and returned on GET/HEAD. */
const STORED_HEADERS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'] as const;

/** response-* query parameters that override GET/HEAD response headers. */
const RESPONSE_OVERRIDES: Record<string, string> = {
  'response-cache-control': 'Cache-Control',
  'response-content-disposition': 'Content-Disposition',
  'response-content-encoding': 'Content-Encoding',
  'response-content-language': 'Content-Language',
  'response-content-type': 'Content-Type',
  'response-expires': 'Expires',
};

/** Most keys in one DeleteObjects request. */
export const DELETE_OBJECTS_KEYS_MAX = 1000;

/** PUT /bucket/key */
export async function putObject(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  const meta = objectMetaFromHeaders(ctx);
  const condition = writeCondition(ctx);
  const tags = tagsFromHeader(ctx);
  const { owner, acl } = await ctx.access.newObject(bucket, key, ctx.req.headers);
  const body = readObjectBody(ctx);
  const object = await ctx.deps.objects.putObject({
    bucket,
    key,
    owner,
    ...(acl ? { acl } : {}),
    body: body.stream,
    declaredSizeBytes: body.declaredSizeBytes,
    ...meta,
    ...(tags ? { tags } : {}),
    ...(condition ? { condition } : {}),
    finalize: body.finalize,
  });
  ctx.reply.header('ETag', `"${object.etag}"`);
  if (object.checksum) {
    ctx.reply.header(`x-amz-checksum-${object.checksum.algorithm.toLowerCase()}`, object.checksum.value);
    ctx.reply.header('x-amz-checksum-type', object.checksum.type);
  }
  ctx.reply.send();
}

/** GET /bucket/key and HEAD /bucket/key */
export async function getObject(ctx: RequestContext, bucket: string, key: string, head: boolean): Promise<void> {
  const object = await ctx.access.readObject(bucket, key, 'READ');
  const outcome = evaluateReadConditions(readConditions(ctx), object.etag, object.lastModifiedMs);
  if (outcome === 'precondition-failed') throw new S3Error('PreconditionFailed', undefined, { Condition: 'If-Match' });
  if (outcome === 'not-modified') {
    ctx.reply.code(304).header('ETag', `"${object.etag}"`).header('Last-Modified', httpDate(object.lastModifiedMs)).send();
    return;
  }
  const part = partRange(ctx, object);
  const range = part?.range ?? parseRange(header(ctx.req, 'range'), object.sizeBytes);
  setObjectHeaders(ctx, object, range === undefined);
  const [start, end] = range ?? [0, object.sizeBytes - 1];
  ctx.reply.header('Content-Length', String(end - start + 1));
  if (range) ctx.reply.code(206).header('Content-Range', `bytes ${start}-${end}/${object.sizeBytes}`);
  if (part) {
    if (object.parts) ctx.reply.header('x-amz-mp-parts-count', String(object.parts.length));
    if (part.checksum && object.checksum && header(ctx.req, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED') {
      ctx.reply.header(`x-amz-checksum-${object.checksum.algorithm.toLowerCase()}`, part.checksum).header('x-amz-checksum-type', object.checksum.type);
    }
  }
  if (head || end < start) {
    ctx.reply.send();
    return;
  }
  await sendObjectBody(ctx, ctx.deps.objects.readObjectPieces(object, start, end), { bucket, key });
}

/**
 * Writes an object's pieces as the response body, giving each piece's buffer back to the chunk
 * store once its socket write completed (a fresh 4 MiB buffer per chunk cost this VM about three
 * times the CPU of the whole read). The first piece is read before the status line, so an object
 * whose first chunk cannot be read at all gets a proper S3 error; after that, headers are gone
 * and a failure (a chunk that cannot be read or verified) can only cut the connection, so the
 * client sees a short body rather than wrong bytes.
 */
async function sendObjectBody(ctx: RequestContext, pieces: AsyncGenerator<{ bytes: Buffer; release(): void }>, where: { bucket: string; key: string }): Promise<void> {
  let next = await pieces.next();
  // From here the body is written by hand (onResponse hooks still run on 'finish').
  ctx.reply.hijack();
  const res = ctx.reply.raw;
  res.writeHead(ctx.reply.statusCode, ctx.reply.getHeaders() as OutgoingHttpHeaders);
  try {
    for (; !next.done; next = await pieces.next()) {
      const piece = next.value;
      // An aborted write may still point into the buffer: only a completed one releases it.
      const more = res.write(piece.bytes, (err) => {
        if (!err) piece.release();
      });
      if (!more) await drained(res);
    }
    res.end();
  } catch (err) {
    // A client that left is not a failure of ours; a chunk that failed mid-body is.
    if (res.destroyed) ctx.req.log.debug({ ...where }, 'client left during the body');
    else {
      ctx.req.log.error({ err, ...where }, 'object read failed mid-stream');
      res.destroy(toS3Error(err));
    }
    await pieces.return(undefined);
  }
}


/** DELETE /bucket/key — succeeds for a missing key, as S3 does. */
export async function deleteObject(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  await ctx.deps.objects.deleteObject(bucket, key);
  ctx.reply.code(204).send();
}

/** How many DeleteObjects key decisions run between two yields to the event loop. */
const DECISIONS_PER_YIELD = 100;

/**
 * POST /bucket?delete. AWS requires an integrity check of the body, Content-MD5 or a flexible
 * checksum (header or trailer), and refuses the request before reading it otherwise
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html).
 */
export async function deleteObjects(ctx: RequestContext, bucket: string): Promise<void> {
  const declared = parseChecksumRequest(ctx.req.headers);
  if (declared.contentMd5 === undefined && declared.checksum === undefined) {
    throw new S3Error('InvalidRequest', 'Missing required header for this request: Content-MD5');
  }
  const body = await readXmlBody(ctx, { optional: false });
  const doc = body!.parse('Delete');
  const quiet = childText(doc, 'Quiet')?.trim().toLowerCase() === 'true';
  const entries = children(doc, 'Object');
  if (entries.length === 0 || entries.length > DELETE_OBJECTS_KEYS_MAX) throw new S3Error('MalformedXML');
  const valid: string[] = [];
  const errors: XmlNode[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'object' || entry === null) throw new S3Error('MalformedXML');
    const key = childText(entry as Record<string, unknown>, 'Key');
    if (key === undefined) throw new S3Error('MalformedXML');
    try {
      validateKey(key);
      if (key === '') throw new S3Error('InvalidArgument', 'Object key must not be empty.');
      valid.push(key);
    } catch (err) {
      const s3err = toS3Error(err);
      errors.push({ Key: key, Code: s3err.code, Message: s3err.message });
    }
  }
  // Each key is authorized as its own DeleteObject would be: refused keys are AccessDenied
  // entries, the others are deleted. A crafted policy can make one decision cost a while, so the
  // loop yields now and then rather than hold the event loop for the whole batch.
  const record = await ctx.access.bucket(bucket);
  const refused = new Set<string>();
  let decided = 0;
  for (const key of new Set(valid)) {
    if (++decided % DECISIONS_PER_YIELD === 0) await yieldToEventLoop();
    if (ctx.access.deletesObject(record, key)) continue;
    refused.add(key);
    errors.push({ Key: key, Code: 'AccessDenied', Message: 'Access Denied' });
  }
  const allowed = valid.filter((k) => !refused.has(k));
  await ctx.deps.objects.deleteObjects(bucket, [...new Set(allowed)]);
  const result: XmlNode = {
    ...(quiet ? {} : { Deleted: allowed.map((k) => ({ Key: k })) }),
    Error: errors,
  };
  ctx.reply.type('application/xml').send(renderXml('DeleteResult', result));
}

/** PUT /bucket/key with x-amz-copy-source */
export async function copyObject(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  const source = parseCopySource(header(ctx.req, 'x-amz-copy-source') ?? '');
  const directive = (header(ctx.req, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw new S3Error('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive', ArgumentValue: directive });
  }
  const sourceObject = await ctx.access.readObject(source.bucket, source.key, 'READ');
  const outcome = evaluateReadConditions(copySourceConditions(ctx), sourceObject.etag, sourceObject.lastModifiedMs);
  // For copy sources every failed condition is a 412, If-None-Match included (API_CopyObject).
  if (outcome !== 'ok') throw new S3Error('PreconditionFailed', undefined, { Condition: 'x-amz-copy-source-If-Match' });
  if (source.bucket === bucket && source.key === key && directive === 'COPY') {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const condition = writeCondition(ctx);
  const tagDirective = (header(ctx.req, 'x-amz-tagging-directive') ?? 'COPY').toUpperCase();
  if (tagDirective !== 'COPY' && tagDirective !== 'REPLACE') {
    throw new S3Error('InvalidArgument', 'Unknown tagging directive.', { ArgumentName: 'x-amz-tagging-directive', ArgumentValue: tagDirective });
  }
  const tags = tagDirective === 'REPLACE' ? (tagsFromHeader(ctx) ?? []) : undefined;
  // ACLs are not copied: the copy gets this request's (private by default), as in S3.
  const { owner, acl } = await ctx.access.newObject(bucket, key, ctx.req.headers);
  const object = await ctx.deps.objects.copyObject({
    source: sourceObject,
    sourceBucket: source.bucket,
    sourceKey: source.key,
    bucket,
    key,
    owner,
    ...(acl ? { acl } : {}),
    ...(directive === 'REPLACE' ? { replace: objectMetaFromHeaders(ctx) } : {}),
    ...(tags ? { tags } : {}),
    ...(condition ? { condition } : {}),
  });
  const checksum: XmlNode = object.checksum ? { [`Checksum${object.checksum.algorithm}`]: object.checksum.value, ChecksumType: object.checksum.type } : {};
  ctx.reply.type('application/xml').send(renderXml('CopyObjectResult', { LastModified: isoDate(object.lastModifiedMs), ETag: `"${object.etag}"`, ...checksum }));
}

/** Content-Type, stored system headers and x-amz-meta-* of a PUT or REPLACE copy. */
export function objectMetaFromHeaders(ctx: RequestContext): { contentType: string; headers: Record<string, string>; userMeta: Record<string, string> } {
  rejectUnsupportedWriteHeaders(ctx);
  const headers: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    const value = header(ctx.req, name);
    if (value !== undefined) headers[name] = value;
  }
  // aws-chunked is a transfer detail of SigV4 streaming, not a stored content coding.
  if (headers['content-encoding'] !== undefined) {
    const codings = headers['content-encoding'].split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'aws-chunked');
    if (codings.length === 0) delete headers['content-encoding'];
    else headers['content-encoding'] = codings.join(', ');
  }
  const userMeta: Record<string, string> = {};
  let metaBytes = 0;
  for (const [name, value] of Object.entries(ctx.req.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const v = Array.isArray(value) ? value.join(',') : value;
    const short = name.slice('x-amz-meta-'.length);
    userMeta[short] = v;
    metaBytes += Buffer.byteLength(short) + Buffer.byteLength(v);
  }
  if (metaBytes > ctx.options.limits.userMetaBytesMax) throw new S3Error('MetadataTooLarge');
  return { contentType: header(ctx.req, 'content-type') ?? 'application/octet-stream', headers, userMeta };
}

/** Headers asking for features this server does not have: 501, never accept-and-ignore. */
function rejectUnsupportedWriteHeaders(ctx: RequestContext): void {
  const sse = header(ctx.req, 'x-amz-server-side-encryption') ?? header(ctx.req, 'x-amz-server-side-encryption-customer-algorithm');
  if (sse !== undefined) throw notImplemented('server-side encryption');
  if (header(ctx.req, 'x-amz-object-lock-mode') !== undefined) throw notImplemented('object lock');
  if (header(ctx.req, 'x-amz-website-redirect-location') !== undefined) throw notImplemented('x-amz-website-redirect-location');
  const storageClass = header(ctx.req, 'x-amz-storage-class');
  if (storageClass !== undefined && storageClass !== 'STANDARD') {
    throw new S3Error('InvalidStorageClass', 'The storage class you specified is not valid', { StorageClassRequested: storageClass });
  }
}

function notImplemented(what: string): S3Error {
  return new S3Error('NotImplemented', `${what} is not implemented by this server.`);
}

/** If-None-Match: * and If-Match on PUT, checked atomically at apply time. */
export function writeCondition(ctx: RequestContext): WriteCondition | undefined {
  const ifNoneMatch = header(ctx.req, 'if-none-match');
  const ifMatch = header(ctx.req, 'if-match');
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
    throw new S3Error('NotImplemented', 'A header you provided implies functionality that is not implemented (If-None-Match other than *).');
  }
  return {
    ...(ifNoneMatch !== undefined ? { ifNoneMatchAny: true } : {}),
    ...(ifMatch !== undefined ? { ifMatchEtag: unquote(ifMatch.trim()) } : {}),
  };
}

function readConditions(ctx: RequestContext): ReadConditions {
  return compact({
    ifMatch: header(ctx.req, 'if-match'),
    ifNoneMatch: header(ctx.req, 'if-none-match'),
    ifModifiedSinceMs: dateHeader(ctx.req, 'if-modified-since'),
    ifUnmodifiedSinceMs: dateHeader(ctx.req, 'if-unmodified-since'),
  });
}

export function copySourceConditions(ctx: RequestContext): ReadConditions {
  return compact({
    ifMatch: header(ctx.req, 'x-amz-copy-source-if-match'),
    ifNoneMatch: header(ctx.req, 'x-amz-copy-source-if-none-match'),
    ifModifiedSinceMs: dateHeader(ctx.req, 'x-amz-copy-source-if-modified-since'),
    ifUnmodifiedSinceMs: dateHeader(ctx.req, 'x-amz-copy-source-if-unmodified-since'),
  });
}

function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Parses x-amz-copy-source: `[/]bucket/key[?versionId=…]`, URL-encoded. */
export function parseCopySource(raw: string): { bucket: string; key: string } {
  const q = raw.indexOf('?');
  if (q >= 0 && !/^versionId=null$/.test(raw.slice(q + 1))) throw notImplemented('copy of a specific version');
  let path: string;
  try {
    path = decodeURIComponent(q >= 0 ? raw.slice(0, q) : raw);
  } catch {
    throw new S3Error('InvalidArgument', 'Invalid copy source encoding.', { ArgumentName: 'x-amz-copy-source' });
  }
  if (path.startsWith('/')) path = path.slice(1);
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source' });
  }
  const key = path.slice(slash + 1);
  validateKey(key);
  return { bucket: path.slice(0, slash), key };
}

/**
 * ?partNumber=N of GET/HEAD: the byte range of the N-th part of a multipart object (N counts the
 * parts in object order, as S3 does), or the whole object for part 1 of a single-part object.
 * InvalidPartNumber (416) past the last part.
 */
function partRange(ctx: RequestContext, object: ObjectRecord): { range: [number, number] | undefined; checksum?: string } | undefined {
  const raw = ctx.target.query.get('partNumber');
  if (raw === null) return undefined;
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= 10_000)) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: raw });
  }
  if (header(ctx.req, 'range') !== undefined) throw new S3Error('InvalidRequest', 'Cannot specify both Range header and partNumber query parameter');
  const parts = object.parts ?? [{ partNumber: 1, sizeBytes: object.sizeBytes }];
  if (n > parts.length) throw new S3Error('InvalidPartNumber', undefined, { PartNumberRequested: raw, ActualPartCount: String(parts.length) });
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += parts[i]!.sizeBytes;
  const part = parts[n - 1]!;
  if (part.sizeBytes === 0) return { range: undefined };
  return { range: [start, start + part.sizeBytes - 1], ...(part.checksum ? { checksum: part.checksum } : {}) };
}

/**
 * Parses a single `bytes=` range against the object size: [start, endInclusive], or undefined to
 * serve the whole object (no header, a syntax S3 ignores, or several ranges). Throws InvalidRange
 * (416) when the range cannot be satisfied.
 */
export function parseRange(value: string | undefined, size: number): [number, number] | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const unsatisfiable = () => new S3Error('InvalidRange', undefined, { RangeRequested: value, ActualObjectSize: String(size) });
  if (m[1] === '') {
    // Suffix range: the last N bytes.
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw unsatisfiable();
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) throw unsatisfiable();
  return [start, end];
}

/** Response headers of GET/HEAD; checksums only for the whole object and when asked. */
function setObjectHeaders(ctx: RequestContext, object: ObjectRecord, whole: boolean): void {
  const reply = ctx.reply;
  reply.header('Content-Type', object.contentType);
  reply.header('ETag', `"${object.etag}"`);
  reply.header('Last-Modified', httpDate(object.lastModifiedMs));
  reply.header('Accept-Ranges', 'bytes');
  for (const [name, value] of Object.entries(object.headers)) reply.header(name, value);
  for (const [name, value] of Object.entries(object.userMeta)) reply.header(`x-amz-meta-${name}`, value);
  if (object.tags && object.tags.length > 0) reply.header('x-amz-tagging-count', String(object.tags.length));
  if (object.checksum && whole && header(ctx.req, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED') {
    reply.header(`x-amz-checksum-${object.checksum.algorithm.toLowerCase()}`, object.checksum.value);
    reply.header('x-amz-checksum-type', object.checksum.type);
  }
  for (const [param, name] of Object.entries(RESPONSE_OVERRIDES)) {
    const value = ctx.target.query.get(param);
    if (value === null) continue;
    // Only what an HTTP header can carry (RFC 9110 field-value: visible ASCII, space, tab, obs-text).
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new S3Error('InvalidArgument', `The value of ${param} contains characters a header cannot carry.`, { ArgumentName: param });
    }
    reply.header(name, value);
  }
}
