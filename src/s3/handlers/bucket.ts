/**
 * Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.
 */
import { S3Error } from '../errors.ts';
import { readXmlBody } from '../body.ts';
import { type RequestContext, isoDate } from '../context.ts';
import { validateBucketName } from '../names.ts';
import { childText, renderXml } from '../xml.ts';

/** GET / — every bucket, oldest first by name as S3 sorts them. */
export async function listBuckets(ctx: RequestContext): Promise<void> {
  const buckets = await ctx.deps.objects.listBuckets();
  buckets.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  ctx.reply.type('application/xml').send(
    renderXml('ListAllMyBucketsResult', {
      Owner: { ID: ctx.owner, DisplayName: ctx.owner },
      Buckets: {
        Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: isoDate(b.createdMs), BucketRegion: b.region })),
      },
    }),
  );
}

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
  await ctx.deps.objects.createBucket({ name: bucket, createdMs: ctx.deps.clock.nowMs(), region, owner: ctx.owner });
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
