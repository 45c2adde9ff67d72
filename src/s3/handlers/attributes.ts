/**
 * GetObjectAttributes: ETag, Checksum, ObjectParts, StorageClass and ObjectSize, each only when
 * asked for in x-amz-object-attributes.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObjectAttributes.html
 */
import { PART_NUMBER_MAX } from '../../objects/types.ts';
import { header, httpDate, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { renderXml, type XmlNode } from '../xml.ts';

/** Attribute names S3 accepts in x-amz-object-attributes. */
const ATTRIBUTES = ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'] as const;
/** Default and largest x-amz-max-parts. */
export const ATTRIBUTE_PARTS_MAX = 1000;

/** GET /bucket/key?attributes */
export async function getObjectAttributes(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  const raw = ctx.req.headers['x-amz-object-attributes'];
  const names = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) {
    throw new S3Error('InvalidArgument', 'The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty', {
      ArgumentName: 'x-amz-object-attributes',
    });
  }
  for (const name of names) {
    if (!(ATTRIBUTES as readonly string[]).includes(name)) {
      throw new S3Error('InvalidArgument', 'Invalid attribute name specified.', { ArgumentName: 'x-amz-object-attributes', ArgumentValue: name });
    }
  }
  const want = new Set(names);
  const maxParts = numberHeader(ctx, 'x-amz-max-parts', ATTRIBUTE_PARTS_MAX);
  const marker = numberHeader(ctx, 'x-amz-part-number-marker', 0);
  const object = await ctx.access.readObject(bucket, key, 'READ');
  const body: XmlNode = {};
  if (want.has('ETag')) body['ETag'] = object.etag;
  if (want.has('Checksum') && object.checksum) {
    body['Checksum'] = { [`Checksum${object.checksum.algorithm}`]: object.checksum.value, ChecksumType: object.checksum.type };
  }
  if (want.has('ObjectParts') && object.parts) {
    const after = object.parts.filter((p) => p.partNumber > marker);
    const page = after.slice(0, maxParts);
    const alg = object.checksum?.algorithm;
    body['ObjectParts'] = {
      PartsCount: object.parts.length,
      PartNumberMarker: marker,
      ...(page.length > 0 ? { NextPartNumberMarker: page.at(-1)!.partNumber } : {}),
      MaxParts: maxParts,
      IsTruncated: after.length > page.length,
      Part: page.map((p) => ({ PartNumber: p.partNumber, Size: p.sizeBytes, ...(p.checksum && alg ? { [`Checksum${alg}`]: p.checksum } : {}) })),
    };
  }
  if (want.has('StorageClass')) body['StorageClass'] = 'STANDARD';
  if (want.has('ObjectSize')) body['ObjectSize'] = object.sizeBytes;
  ctx.reply.header('Last-Modified', httpDate(object.lastModifiedMs)).type('application/xml').send(renderXml('GetObjectAttributesResponse', body));
}

function numberHeader(ctx: RequestContext, name: string, fallback: number): number {
  const raw = header(ctx.req, name);
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`, { ArgumentName: name, ArgumentValue: raw });
  return Math.min(Number(raw), name === 'x-amz-max-parts' ? ATTRIBUTE_PARTS_MAX : PART_NUMBER_MAX);
}
