/**
 * Bucket policy operations: Get/Put/DeleteBucketPolicy. The document is checked and parsed
 * when put (authz/policy.ts), stored verbatim with its parsed statements, and returned verbatim.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html
 */
import { readXmlBody } from '../body.ts';
import type { RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { parsePolicy } from '../authz/policy.ts';

/** GET /bucket?policy — the JSON as put; NoSuchBucketPolicy when there is none. */
export async function getBucketPolicy(ctx: RequestContext, bucket: string): Promise<void> {
  const record = await ctx.access.bucket(bucket);
  if (!record.policy) throw new S3Error('NoSuchBucketPolicy');
  ctx.reply.type('application/json').send(record.policy.text);
}

/** PUT /bucket?policy — 204, as S3 answers. */
export async function putBucketPolicy(ctx: RequestContext, bucket: string): Promise<void> {
  const body = await readXmlBody(ctx, { optional: false });
  const policy = parsePolicy(body!.text, bucket);
  await ctx.deps.objects.putBucketPolicy(bucket, policy);
  ctx.reply.code(204).send();
}

/** DELETE /bucket?policy — 204 whether or not there was one. */
export async function deleteBucketPolicy(ctx: RequestContext, bucket: string): Promise<void> {
  await ctx.deps.objects.putBucketPolicy(bucket, null);
  ctx.reply.code(204).send();
}
