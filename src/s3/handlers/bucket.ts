/**
 * Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.
 */
import { META_ERR_BUCKET_OWNED_BY_YOU } from '../../objects/errors.ts';
import { errorCode } from '../../util/errors.ts';
import { S3Error } from '../errors.ts';
import { readXmlBody } from '../body.ts';
import { type RequestContext, isoDate } from '../context.ts';
import { validateBucketName } from '../names.ts';
import { childText, renderXml } from '../xml.ts';
import { aclOfNewBucket, ownershipOfNewBucket } from './acl.ts';
import { decodeToken, encodeToken } from './list.ts';

/** ListBuckets' max-buckets bounds (AWS: 1 to 10000). */
export const LIST_BUCKETS_MAX = 10_000;

/**
 * GET / — buckets in name order (UTF-8 bytes), as S3 sorts them, with ListBuckets' pagination:
 * max-buckets, continuation-token (the last name of the previous page, as ListObjectsV2's
 * tokens), prefix and bucket-region filters; ContinuationToken names the next page while more
 * buckets follow. https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html
 */
export async function listBuckets(ctx: RequestContext): Promise<void> {
  const q = ctx.target.query;
  const rawMax = q.get('max-buckets');
  let maxBuckets = LIST_BUCKETS_MAX;
  if (rawMax !== null) {
    maxBuckets = /^\d{1,5}$/.test(rawMax) ? Number(rawMax) : Number.NaN;
    if (!(maxBuckets >= 1 && maxBuckets <= LIST_BUCKETS_MAX)) {
      throw new S3Error('InvalidArgument', `max-buckets must be an integer between 1 and ${LIST_BUCKETS_MAX}`, { ArgumentName: 'max-buckets', ArgumentValue: rawMax });
    }
  }
  const token = q.get('continuation-token');
  const after = token !== null ? Buffer.from(decodeToken(token), 'utf8') : undefined;
  const prefix = q.get('prefix') ?? '';
  const region = q.get('bucket-region');
  // A key sees the buckets it owns; the root and admin keys see every bucket (operators).
  const buckets = (await ctx.deps.objects.listBuckets())
    .filter((b) => ctx.access.lists(b))
    .filter((b) => b.name.startsWith(prefix) && (region === null || b.region === region))
    .filter((b) => after === undefined || Buffer.compare(Buffer.from(b.name), after) > 0);
  buckets.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  const page = buckets.slice(0, maxBuckets);
  const last = page.at(-1);
  ctx.reply.type('application/xml').send(
    renderXml('ListAllMyBucketsResult', {
      Owner: { ID: ctx.owner, DisplayName: ctx.owner },
      Buckets: {
        Bucket: page.map((b) => ({ Name: b.name, CreationDate: isoDate(b.createdMs), BucketRegion: b.region })),
      },
      ...(buckets.length > page.length && last !== undefined ? { ContinuationToken: encodeToken(last.name) } : {}),
      ...(q.has('prefix') ? { Prefix: prefix } : {}),
    }),
  );
}

/** The region where re-creating one's own bucket succeeds (S3's legacy behaviour). */
const LEGACY_REGION = 'us-east-1';

/** PUT /bucket — with an optional CreateBucketConfiguration naming this server's region. */
export async function createBucket(ctx: RequestContext, bucket: string): Promise<void> {
  validateBucketName(bucket);
  const region = ctx.options.region;
  const body = await readXmlBody(ctx, { optional: true });
  if (body !== undefined) {
    const config = body.parse('CreateBucketConfiguration');
    const constraint = childText(config, 'LocationConstraint');
    if (constraint !== undefined && constraint !== '' && constraint !== region) {
      throw new S3Error(
        'IllegalLocationConstraintException',
        `The ${constraint} location constraint is incompatible for the region specific endpoint this request was sent to.`,
      );
    }
  }
  const ownership = ownershipOfNewBucket(ctx);
  const acl = aclOfNewBucket(ctx, ctx.owner, ownership);
  try {
    await ctx.deps.objects.createBucket({ name: bucket, createdMs: ctx.deps.clock.nowMs(), region, owner: ctx.owner, ownership, ...(acl ? { acl } : {}) });
  } catch (err) {
    // "For legacy compatibility, if you re-create an existing bucket that you already own in the
    // North Virginia Region, Amazon S3 returns 200 OK" (API_CreateBucket, BucketAlreadyOwnedByYou);
    // every other region answers 409 BucketAlreadyOwnedByYou, and another owner's bucket is 409
    // BucketAlreadyExists everywhere. The existing bucket is left as it is.
    if (!(region === LEGACY_REGION && errorCode(err) === META_ERR_BUCKET_OWNED_BY_YOU)) throw err;
  }
  ctx.reply.header('Location', `/${bucket}`).send();
}

/** HEAD /bucket — 200 with the region, 404 without a body when missing (HEAD has none). */
export async function headBucket(ctx: RequestContext, bucket: string): Promise<void> {
  const record = await ctx.deps.objects.getBucket(bucket);
  ctx.reply.header('x-amz-bucket-region', record.region).send();
}

/** DELETE /bucket — only when empty (BucketNotEmpty otherwise). */
export async function deleteBucket(ctx: RequestContext, bucket: string): Promise<void> {
  await ctx.deps.objects.deleteBucket(bucket);
  ctx.reply.code(204).send();
}

/** GET /bucket?location — empty for us-east-1, as S3 answers. */
export async function getBucketLocation(ctx: RequestContext, bucket: string): Promise<void> {
  const record = await ctx.deps.objects.getBucket(bucket);
  const region = record.region === 'us-east-1' ? '' : record.region;
  ctx.reply.type('application/xml').send(renderXml('LocationConstraint', { '#text': region }));
}
