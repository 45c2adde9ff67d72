/**
 * Multipart upload: CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
 * AbortMultipartUpload, ListParts, ListMultipartUploads.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html
 *
 * Checksums: an upload created with x-amz-checksum-algorithm makes every part carry that checksum
 * (verified when the client sends it, computed when it does not); the object's checksum is then
 * COMPOSITE (checksum of the binary part checksums, "-N") or FULL_OBJECT (CRC combine), as chosen
 * by x-amz-checksum-type.
 */
import type { BodyDigests as ObjectDigests } from '../../objects/object-service.ts';
import {
  type ChecksumAlgorithm,
  type CompletePart,
  PART_NUMBER_MAX,
  type PartRecord,
  type StoredChecksum,
  type UploadRecord,
} from '../../objects/types.ts';
import { evaluateReadConditions } from '../../objects/conditions.ts';
import { readObjectBody, readXmlBody } from '../body.ts';
import {
  CHECKSUM_ALGORITHMS,
  compositeChecksum,
  createBodyDigests,
  type CrcAlgorithm,
  createHasher,
  fullObjectChecksum,
  multipartEtag,
  parseChecksumAlgorithm,
  parseChecksumRequest,
} from '../checksum.ts';
import { header, intParam, isoDate, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { validateKey } from '../names.ts';
import { children, childText, renderXml, type XmlNode } from '../xml.ts';
import { copySourceConditions, objectMetaFromHeaders, parseCopySource, writeCondition } from './object.ts';
import { tagsFromHeader } from './tagging.ts';

/** S3's page size limit for ListParts and ListMultipartUploads. */
export const LIST_PARTS_MAX = 1000;
export const LIST_UPLOADS_MAX = 1000;

const CRC_ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME'];

/** POST /bucket/key?uploads */
export async function createMultipartUpload(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  const meta = objectMetaFromHeaders(ctx);
  const tags = tagsFromHeader(ctx);
  const { algorithm, type } = uploadChecksum(ctx);
  // The ACL and owner of the object the upload completes into, decided now as S3 does.
  const { owner, acl } = await ctx.access.newObject(bucket, key, ctx.req.headers);
  const upload = await ctx.deps.objects.createMultipartUpload({
    bucket,
    key,
    owner,
    ...(acl ? { acl } : {}),
    ...meta,
    ...(tags ? { tags } : {}),
    ...(algorithm ? { checksumAlgorithm: algorithm } : {}),
    ...(type ? { checksumType: type } : {}),
  });
  if (upload.checksumAlgorithm) {
    ctx.reply.header('x-amz-checksum-algorithm', upload.checksumAlgorithm).header('x-amz-checksum-type', upload.checksumType);
  }
  ctx.reply.type('application/xml').send(renderXml('InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: upload.uploadId }));
}

/** x-amz-checksum-algorithm and x-amz-checksum-type of CreateMultipartUpload, checked as AWS does. */
function uploadChecksum(ctx: RequestContext): { algorithm?: ChecksumAlgorithm; type?: 'FULL_OBJECT' | 'COMPOSITE' } {
  const rawAlg = header(ctx.req, 'x-amz-checksum-algorithm');
  const rawType = header(ctx.req, 'x-amz-checksum-type');
  if (rawAlg === undefined) {
    if (rawType !== undefined) throw new S3Error('InvalidRequest', 'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.');
    return {};
  }
  const algorithm = parseChecksumAlgorithm(rawAlg);
  if (!algorithm) {
    throw new S3Error('InvalidRequest', `Checksum algorithm provided is unsupported. Please try again with any of the valid types: [${CHECKSUM_ALGORITHMS.join(', ')}]`);
  }
  // AWS's default type: FULL_OBJECT for CRC64NVME (it has no composite form), COMPOSITE otherwise.
  const type = rawType === undefined ? (algorithm === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE') : rawType.toUpperCase();
  if (type !== 'FULL_OBJECT' && type !== 'COMPOSITE') throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-type header is invalid.');
  if (type === 'FULL_OBJECT' && !CRC_ALGORITHMS.includes(algorithm)) {
    throw new S3Error('InvalidRequest', `The FULL_OBJECT checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`);
  }
  if (type === 'COMPOSITE' && algorithm === 'CRC64NVME') {
    throw new S3Error('InvalidRequest', 'The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.');
  }
  return { algorithm, type };
}

/** partNumber in 1..10000, or InvalidArgument. */
function partNumberOf(ctx: RequestContext): number {
  const raw = ctx.target.query.get('partNumber');
  const n = raw !== null && /^\d{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= PART_NUMBER_MAX)) {
    throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: raw ?? '' });
  }
  return n;
}

/** The checksum algorithm a part must carry: the upload's, and the client's must agree with it. */
function partAlgorithm(ctx: RequestContext, upload: UploadRecord): ChecksumAlgorithm | undefined {
  const declared = parseChecksumRequest(ctx.req.headers).checksum;
  if (upload.checksumAlgorithm && declared && declared.algorithm !== upload.checksumAlgorithm) {
    throw new S3Error(
      'InvalidRequest',
      `Checksum Type mismatch occurred, expected checksum Type: ${upload.checksumAlgorithm.toLowerCase()}, actual checksum Type: ${declared.algorithm.toLowerCase()}`,
    );
  }
  return upload.checksumAlgorithm;
}

function setPartChecksumHeader(ctx: RequestContext, part: PartRecord): void {
  if (part.checksum) ctx.reply.header(`x-amz-checksum-${part.checksum.algorithm.toLowerCase()}`, part.checksum.value);
}

/** PUT /bucket/key?partNumber=N&uploadId=… */
export async function uploadPart(ctx: RequestContext, bucket: string, key: string, uploadId: string): Promise<void> {
  const partNumber = partNumberOf(ctx);
  // Read first so a wrong upload id fails before the body is read, and the part's algorithm is known.
  const upload = await ctx.deps.objects.getUpload(bucket, key, uploadId);
  const required = partAlgorithm(ctx, upload);
  const body = readObjectBody(ctx);
  // When the client sends no checksum of the upload's algorithm, compute it here.
  const extra = required && !parseChecksumRequest(ctx.req.headers).checksum ? createHasher(required) : undefined;
  const stream = extra
    ? (async function* () {
        for await (const piece of body.stream) {
          extra.update(piece);
          yield piece;
        }
      })()
    : body.stream;
  const part = await ctx.deps.objects.uploadPart({
    bucket,
    key,
    uploadId,
    partNumber,
    body: stream,
    declaredSizeBytes: body.declaredSizeBytes,
    finalize: (sizeBytes): ObjectDigests => {
      const digests = body.finalize(sizeBytes);
      if (extra) return { etag: digests.etag, checksum: { algorithm: extra.algorithm, value: extra.digestBase64(), type: 'COMPOSITE' } };
      return digests;
    },
  });
  ctx.reply.header('ETag', `"${part.etag}"`);
  setPartChecksumHeader(ctx, part);
  ctx.reply.send();
}

/** PUT /bucket/key?partNumber=N&uploadId=… with x-amz-copy-source (and -range). */
export async function uploadPartCopy(ctx: RequestContext, bucket: string, key: string, uploadId: string): Promise<void> {
  const partNumber = partNumberOf(ctx);
  const source = parseCopySource(header(ctx.req, 'x-amz-copy-source') ?? '');
  const upload = await ctx.deps.objects.getUpload(bucket, key, uploadId);
  const sourceObject = await ctx.access.readObject(source.bucket, source.key, 'READ');
  const outcome = evaluateReadConditions(copySourceConditions(ctx), sourceObject.etag, sourceObject.lastModifiedMs);
  if (outcome !== 'ok') throw new S3Error('PreconditionFailed', undefined, { Condition: 'x-amz-copy-source-If-Match' });
  const [start, end] = copySourceRange(header(ctx.req, 'x-amz-copy-source-range'), sourceObject.sizeBytes);
  // The range streams through the chunker like an upload: bounded memory, and chunks that line up
  // with the source's are deduplicated by their content address.
  const digests = createBodyDigests(upload.checksumAlgorithm ? [upload.checksumAlgorithm] : []);
  const objects = ctx.deps.objects;
  const stream = (async function* () {
    for await (const piece of objects.readObject(sourceObject, start, end)) {
      digests.update(piece);
      yield piece;
    }
  })();
  const part = await objects.uploadPart({
    bucket,
    key,
    uploadId,
    partNumber,
    body: stream,
    declaredSizeBytes: end - start + 1,
    finalize: (): ObjectDigests => {
      const computed = digests.result();
      const alg = upload.checksumAlgorithm;
      const value = alg ? computed.checksums.get(alg) : undefined;
      return { etag: computed.md5.toString('hex'), ...(alg && value ? { checksum: { algorithm: alg, value, type: 'COMPOSITE' } } : {}) };
    },
  });
  const checksum: XmlNode = part.checksum ? { [`Checksum${part.checksum.algorithm}`]: part.checksum.value } : {};
  ctx.reply.type('application/xml').send(renderXml('CopyPartResult', { ETag: `"${part.etag}"`, LastModified: isoDate(part.lastModifiedMs), ...checksum }));
}

/** x-amz-copy-source-range `bytes=first-last` → [first, last]; the whole object without it. */
export function copySourceRange(value: string | undefined, size: number): [number, number] {
  if (value === undefined) return [0, size - 1];
  const m = /^bytes=(\d{1,16})-(\d{1,16})$/.exec(value.trim());
  if (!m) {
    throw new S3Error(
      'InvalidArgument',
      'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
      { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: value },
    );
  }
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (first > last || last >= size) {
    throw new S3Error('InvalidRange', `Range specified is not valid for source object of size: ${size}`, { RangeRequested: value, ActualObjectSize: String(size) });
  }
  return [first, last];
}

/** POST /bucket/key?uploadId=… */
export async function completeMultipartUpload(ctx: RequestContext, bucket: string, key: string, uploadId: string): Promise<void> {
  const condition = writeCondition(ctx);
  const expected = completionChecksum(ctx);
  const body = await readXmlBody(ctx, { optional: true, checksumHeadersNameObject: true });
  if (!body) throw new S3Error('MalformedXML');
  const doc = body.parse('CompleteMultipartUpload');
  const parts: CompletePart[] = [];
  for (const entry of children(doc, 'Part')) {
    if (typeof entry !== 'object' || entry === null) throw new S3Error('MalformedXML');
    const node = entry as Record<string, unknown>;
    const number = childText(node, 'PartNumber')?.trim();
    const etag = childText(node, 'ETag')?.trim();
    if (number === undefined || etag === undefined || !/^\d{1,5}$/.test(number)) throw new S3Error('MalformedXML');
    const partNumber = Number(number);
    if (partNumber < 1 || partNumber > PART_NUMBER_MAX) {
      throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', { ArgumentName: 'partNumber', ArgumentValue: number });
    }
    let checksum: string | undefined;
    for (const alg of CHECKSUM_ALGORITHMS) checksum ??= childText(node, `Checksum${alg}`)?.trim();
    parts.push({ partNumber, etag: etag.replace(/^"|"$/g, ''), ...(checksum !== undefined ? { checksum } : {}) });
  }
  if (parts.length === 0) throw new S3Error('MalformedXML', 'The XML you provided was not well-formed or did not validate against our published schema');
  const done = await ctx.deps.objects.completeMultipartUpload({
    bucket,
    key,
    uploadId,
    parts,
    ...(condition ? { condition } : {}),
    summarize: (upload, stored) => summarizeCompletion(upload, parts, stored, expected),
  });
  const checksum: XmlNode = done.checksum ? { [`Checksum${done.checksum.algorithm}`]: done.checksum.value, ChecksumType: done.checksum.type } : {};
  const location = `${ctx.req.protocol}://${ctx.req.headers.host ?? 'localhost'}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
  ctx.reply
    .type('application/xml')
    .send(renderXml('CompleteMultipartUploadResult', { Location: location, Bucket: bucket, Key: key, ETag: `"${done.etag}"`, ...checksum }));
}

/** What a CompleteMultipartUpload's headers say the object must be. */
interface CompletionExpectation {
  /** x-amz-checksum-<alg>: the object's checksum (COMPOSITE values may end in "-N"). */
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
  /** x-amz-checksum-type. */
  type?: 'FULL_OBJECT' | 'COMPOSITE';
  /** x-amz-mp-object-size. */
  objectSizeBytes?: number;
}

/**
 * Parses the headers with which CompleteMultipartUpload states the object's checksum, checksum
 * type and size (API_CompleteMultipartUpload); they are checked once the parts are known.
 */
function completionChecksum(ctx: RequestContext): CompletionExpectation {
  const out: CompletionExpectation = {};
  for (const alg of CHECKSUM_ALGORITHMS) {
    const value = header(ctx.req, `x-amz-checksum-${alg.toLowerCase()}`);
    if (value === undefined) continue;
    if (out.checksum) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    out.checksum = { algorithm: alg, value: value.trim() };
  }
  const type = header(ctx.req, 'x-amz-checksum-type')?.trim().toUpperCase();
  if (type !== undefined) {
    if (type !== 'FULL_OBJECT' && type !== 'COMPOSITE') throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-type header is invalid.');
    out.type = type;
  }
  const size = header(ctx.req, 'x-amz-mp-object-size');
  if (size !== undefined) {
    if (!/^\d{1,16}$/.test(size.trim())) {
      throw new S3Error('InvalidArgument', 'x-amz-mp-object-size must be a non-negative integer.', { ArgumentName: 'x-amz-mp-object-size', ArgumentValue: size });
    }
    out.objectSizeBytes = Number(size.trim());
  }
  return out;
}

/**
 * The completed object's ETag and checksum, checked against what the request states:
 *
 * - an upload created with a checksum algorithm keeps it; a different x-amz-checksum-type or
 *   x-amz-checksum-<alg> is InvalidRequest, and a COMPOSITE upload needs every part's checksum
 *   in the part list (AWS: "The complete request must include the checksum for each part");
 * - an upload created without one gets the checksum the request names, computed from the
 *   parts' checksums when every part has one of that algorithm (the SDKs send a CRC32 with
 *   each part by default), FULL_OBJECT for CRCs unless COMPOSITE is asked; InvalidRequest when
 *   a part has none, since an accepted checksum must never go unchecked;
 * - a stated checksum that differs from the computed one is BadDigest, a stated size that
 *   differs from the parts' total InvalidRequest. Nothing is stored in either case.
 */
function summarizeCompletion(
  upload: UploadRecord,
  requested: readonly CompletePart[],
  stored: readonly PartRecord[],
  expected: CompletionExpectation,
): { etag: string; checksum?: StoredChecksum } {
  let effective = upload;
  const alg = upload.checksumAlgorithm;
  if (alg) {
    if (expected.type !== undefined && expected.type !== upload.checksumType) {
      throw new S3Error('InvalidRequest', `The upload was created using the ${upload.checksumType} checksum mode. The complete request must use the same checksum mode.`);
    }
    if (expected.checksum && expected.checksum.algorithm !== alg) {
      throw new S3Error('InvalidRequest', `The upload was created using a ${alg.toLowerCase()} checksum. The complete request must use the same checksum algorithm.`);
    }
    if (upload.checksumType === 'COMPOSITE') {
      const missing = requested.find((p) => p.checksum === undefined);
      if (missing) {
        throw new S3Error(
          'InvalidRequest',
          `The upload was created using a ${alg.toLowerCase()} checksum. The complete request must include the checksum for each part. It was missing for part ${missing.partNumber} in the request.`,
        );
      }
    }
  } else if (expected.checksum) {
    const named = expected.checksum.algorithm;
    const type = expected.type ?? (CRC_ALGORITHMS.includes(named) ? 'FULL_OBJECT' : 'COMPOSITE');
    if (type === 'FULL_OBJECT' && !CRC_ALGORITHMS.includes(named)) {
      throw new S3Error('InvalidRequest', `The FULL_OBJECT checksum type cannot be used with the ${named.toLowerCase()} checksum algorithm.`);
    }
    if (type === 'COMPOSITE' && named === 'CRC64NVME') {
      throw new S3Error('InvalidRequest', 'The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.');
    }
    effective = { ...upload, checksumAlgorithm: named, checksumType: type };
  } else if (expected.type !== undefined) {
    throw new S3Error('InvalidRequest', 'The upload was created without a checksum algorithm: x-amz-checksum-type needs an x-amz-checksum-<algorithm> header with the object checksum.');
  }
  const summary = summarizeParts(effective, stored);
  if (expected.checksum && summary.checksum && !sameObjectChecksum(expected.checksum.value, summary.checksum, stored.length)) {
    throw new S3Error('BadDigest', `The ${summary.checksum.algorithm} you specified did not match the calculated checksum.`);
  }
  if (expected.objectSizeBytes !== undefined) {
    const total = stored.reduce((n, p) => n + p.sizeBytes, 0);
    if (total !== expected.objectSizeBytes) {
      throw new S3Error('InvalidRequest', `The provided x-amz-mp-object-size (${expected.objectSizeBytes}) does not match the object size (${total}).`);
    }
  }
  return summary;
}

/** A stated object checksum against the computed one; a COMPOSITE value may omit its "-N". */
function sameObjectChecksum(stated: string, computed: StoredChecksum, partsCount: number): boolean {
  if (computed.type === 'FULL_OBJECT') return stated === computed.value;
  const base = computed.value.replace(/-\d+$/, '');
  return stated === base || stated === `${base}-${partsCount}`;
}

/** The completed object's ETag and checksum from its parts, as S3 computes them. */
export function summarizeParts(upload: UploadRecord, parts: readonly PartRecord[]): { etag: string; checksum?: StoredChecksum } {
  const etag = multipartEtag(parts.map((p) => p.etag));
  const alg = upload.checksumAlgorithm;
  if (!alg) return { etag };
  const values: string[] = [];
  for (const p of parts) {
    if (p.checksum?.algorithm !== alg) {
      throw new S3Error('InvalidRequest', `The upload was created using a ${alg.toLowerCase()} checksum. Part ${p.partNumber} has no ${alg.toLowerCase()} checksum.`);
    }
    values.push(p.checksum.value);
  }
  if (upload.checksumType === 'FULL_OBJECT') {
    const value = fullObjectChecksum(alg as CrcAlgorithm, parts.map((p, i) => ({ checksum: values[i]!, sizeBytes: p.sizeBytes })));
    return { etag, checksum: { algorithm: alg, value, type: 'FULL_OBJECT' } };
  }
  return { etag, checksum: { algorithm: alg, value: compositeChecksum(alg, values), type: 'COMPOSITE' } };
}

/** DELETE /bucket/key?uploadId=… */
export async function abortMultipartUpload(ctx: RequestContext, bucket: string, key: string, uploadId: string): Promise<void> {
  await ctx.deps.objects.abortMultipartUpload(bucket, key, uploadId);
  ctx.reply.code(204).send();
}

/** GET /bucket/key?uploadId=… — pages by part-number-marker. */
export async function listParts(ctx: RequestContext, bucket: string, key: string, uploadId: string): Promise<void> {
  const q = ctx.target.query;
  const marker = intParam(q, 'part-number-marker', 0, PART_NUMBER_MAX);
  const maxParts = intParam(q, 'max-parts', LIST_PARTS_MAX, LIST_PARTS_MAX);
  const page = await ctx.deps.objects.listParts(bucket, key, uploadId, marker, maxParts);
  const u = page.upload;
  const last = page.parts.at(-1);
  ctx.reply.type('application/xml').send(
    renderXml('ListPartsResult', {
      Bucket: bucket,
      Key: key,
      UploadId: uploadId,
      Initiator: { ID: u.owner, DisplayName: u.owner },
      Owner: { ID: u.owner, DisplayName: u.owner },
      StorageClass: 'STANDARD',
      PartNumberMarker: marker,
      ...(last ? { NextPartNumberMarker: last.partNumber } : {}),
      MaxParts: maxParts,
      IsTruncated: page.isTruncated,
      ...(u.checksumAlgorithm ? { ChecksumAlgorithm: u.checksumAlgorithm, ChecksumType: u.checksumType } : {}),
      Part: page.parts.map((p) => ({
        PartNumber: p.partNumber,
        LastModified: isoDate(p.lastModifiedMs),
        ETag: `"${p.etag}"`,
        Size: p.sizeBytes,
        ...(p.checksum ? { [`Checksum${p.checksum.algorithm}`]: p.checksum.value } : {}),
      })),
    }),
  );
}

/** GET /bucket?uploads — prefix, delimiter, key-marker, upload-id-marker, max-uploads. */
export async function listMultipartUploads(ctx: RequestContext, bucket: string): Promise<void> {
  const q = ctx.target.query;
  const encoding = q.get('encoding-type');
  if (encoding !== null && encoding !== 'url') {
    throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type', ArgumentValue: encoding });
  }
  const enc = encoding === 'url' ? (s: string) => encodeURIComponent(s).replace(/%2F/g, '/') : (s: string) => s;
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const keyMarker = q.get('key-marker') ?? '';
  // AWS ignores upload-id-marker without key-marker.
  const uploadIdMarker = keyMarker === '' ? '' : (q.get('upload-id-marker') ?? '');
  const maxUploads = intParam(q, 'max-uploads', LIST_UPLOADS_MAX, LIST_UPLOADS_MAX);
  const page = await ctx.deps.objects.listUploads(bucket, { prefix, delimiter, keyMarker, uploadIdMarker, maxUploads });
  ctx.reply.type('application/xml').send(
    renderXml('ListMultipartUploadsResult', {
      Bucket: bucket,
      KeyMarker: enc(keyMarker),
      UploadIdMarker: uploadIdMarker,
      ...(page.isTruncated ? { NextKeyMarker: enc(page.nextKeyMarker ?? ''), NextUploadIdMarker: page.nextUploadIdMarker ?? '' } : {}),
      ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
      Prefix: enc(prefix),
      MaxUploads: maxUploads,
      IsTruncated: page.isTruncated,
      ...(encoding === 'url' ? { EncodingType: 'url' } : {}),
      Upload: page.uploads.map(({ key, upload }) => ({
        Key: enc(key),
        UploadId: upload.uploadId,
        Initiator: { ID: upload.owner, DisplayName: upload.owner },
        Owner: { ID: upload.owner, DisplayName: upload.owner },
        StorageClass: 'STANDARD',
        Initiated: isoDate(upload.initiatedMs),
        ...(upload.checksumAlgorithm ? { ChecksumAlgorithm: upload.checksumAlgorithm, ChecksumType: upload.checksumType } : {}),
      })),
      CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
    }),
  );
}
