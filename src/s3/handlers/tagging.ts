/**
 * Object and bucket tagging: Get/Put/DeleteObjectTagging, Get/Put/DeleteBucketTagging, and the
 * x-amz-tagging header of PutObject, CopyObject and CreateMultipartUpload, with AWS's limits.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-tagging.html
 */
import type { Tag } from '../../objects/types.ts';
import { readXmlBody } from '../body.ts';
import { header, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { validateKey } from '../names.ts';
import { children, childText, renderXml } from '../xml.ts';

/** Most tags on one object. */
export const OBJECT_TAGS_MAX = 10;
/** Most tags on one bucket. */
export const BUCKET_TAGS_MAX = 50;
/** Longest tag key, in characters (Unicode code points). */
export const TAG_KEY_CHARS_MAX = 128;
/** Longest tag value, in characters. */
export const TAG_VALUE_CHARS_MAX = 256;

/** Checks a tag set against AWS's rules; InvalidTag (or BadRequest-like InvalidTag for counts) otherwise. */
export function validateTags(tags: readonly Tag[], max: number): void {
  if (tags.length > max) throw new S3Error('InvalidTag', `Object tags cannot be greater than ${max}`);
  const seen = new Set<string>();
  for (const { key, value } of tags) {
    const keyChars = [...key].length;
    if (keyChars === 0 || keyChars > TAG_KEY_CHARS_MAX) throw new S3Error('InvalidTag', 'The TagKey you have provided is too long, max 128', { TagKey: key });
    if ([...value].length > TAG_VALUE_CHARS_MAX) throw new S3Error('InvalidTag', 'The TagValue you have provided is too long, max 256', { TagKey: key });
    if (key.toLowerCase().startsWith('aws:')) throw new S3Error('InvalidTag', 'Your TagKey cannot be prefixed with aws:', { TagKey: key });
    if (!/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u.test(key) || !/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u.test(value)) {
      throw new S3Error('InvalidTag', 'The TagKey or TagValue you have provided is invalid', { TagKey: key });
    }
    if (seen.has(key)) throw new S3Error('InvalidTag', 'Cannot provide multiple Tags with the same key', { TagKey: key });
    seen.add(key);
  }
}

/** Parses x-amz-tagging (`k1=v1&k2=v2`, URL-encoded); undefined when the header is absent. */
export function tagsFromHeader(ctx: RequestContext): Tag[] | undefined {
  const raw = header(ctx.req, 'x-amz-tagging');
  if (raw === undefined) return undefined;
  const tags: Tag[] = [];
  for (const [key, value] of new URLSearchParams(raw)) tags.push({ key, value });
  validateTags(tags, OBJECT_TAGS_MAX);
  return tags;
}

async function readTagSet(ctx: RequestContext, max: number): Promise<Tag[]> {
  const body = await readXmlBody(ctx, { optional: false });
  const doc = body!.parse('Tagging');
  const set = doc['TagSet'];
  if (set === undefined) throw new S3Error('MalformedXML');
  const tags: Tag[] = [];
  if (set !== '' && set !== null) {
    if (typeof set !== 'object') throw new S3Error('MalformedXML');
    for (const tag of children(set as Record<string, unknown>, 'Tag')) {
      if (typeof tag !== 'object' || tag === null) throw new S3Error('MalformedXML');
      const key = childText(tag as Record<string, unknown>, 'Key');
      const value = childText(tag as Record<string, unknown>, 'Value');
      if (key === undefined || value === undefined) throw new S3Error('MalformedXML');
      tags.push({ key, value });
    }
  }
  validateTags(tags, max);
  return tags;
}

function renderTagging(tags: readonly Tag[]): string {
  return renderXml('Tagging', { TagSet: { Tag: tags.map((t) => ({ Key: t.key, Value: t.value })) } });
}

/** GET /bucket/key?tagging */
export async function getObjectTagging(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  const object = await ctx.deps.objects.getObject(bucket, key);
  ctx.reply.type('application/xml').send(renderTagging(object.tags ?? []));
}

/** PUT /bucket/key?tagging — replaces the whole tag set. */
export async function putObjectTagging(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  const tags = await readTagSet(ctx, OBJECT_TAGS_MAX);
  await ctx.deps.objects.putObjectTagging(bucket, key, tags);
  ctx.reply.send();
}

/** DELETE /bucket/key?tagging */
export async function deleteObjectTagging(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  await ctx.deps.objects.putObjectTagging(bucket, key, []);
  ctx.reply.code(204).send();
}

/** GET /bucket?tagging — NoSuchTagSet when the bucket has none. */
export async function getBucketTagging(ctx: RequestContext, bucket: string): Promise<void> {
  const record = await ctx.deps.objects.getBucket(bucket);
  if (!record.tags) throw new S3Error('NoSuchTagSet');
  ctx.reply.type('application/xml').send(renderTagging(record.tags));
}

/** PUT /bucket?tagging */
export async function putBucketTagging(ctx: RequestContext, bucket: string): Promise<void> {
  const tags = await readTagSet(ctx, BUCKET_TAGS_MAX);
  await ctx.deps.objects.putBucketTagging(bucket, tags);
  ctx.reply.code(204).send();
}

/** DELETE /bucket?tagging */
export async function deleteBucketTagging(ctx: RequestContext, bucket: string): Promise<void> {
  await ctx.deps.objects.putBucketTagging(bucket, null);
  ctx.reply.code(204).send();
}
