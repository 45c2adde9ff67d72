/**
 * ACL and Object Ownership operations: Get/PutBucketAcl, Get/PutObjectAcl,
 * Get/Put/DeleteBucketOwnershipControls, and the ACL and ownership headers of CreateBucket.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketAcl.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketOwnershipControls.html
 */
import type { AclGrant, BucketRecord, ObjectOwnership } from '../../objects/types.ts';
import { readXmlBody } from '../body.ts';
import { header, type RequestContext } from '../context.ts';
import { S3Error } from '../errors.ts';
import { validateKey } from '../names.ts';
import { childText, children, renderXml } from '../xml.ts';
import { type AclRequest, aclFromHeaders, cannedAcl, grantsOnlyTo, parseAccessControlPolicy, privateAcl, renderAccessControlPolicy } from '../authz/acl.ts';

const OWNERSHIPS: readonly ObjectOwnership[] = ['BucketOwnerEnforced', 'BucketOwnerPreferred', 'ObjectWriter'];

/**
 * The Object Ownership a new bucket gets: x-amz-object-ownership, else BucketOwnerEnforced
 * (ACLs disabled), S3's default for new buckets since April 2023
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html).
 */
export function ownershipOfNewBucket(ctx: RequestContext): ObjectOwnership {
  const raw = header(ctx.req, 'x-amz-object-ownership');
  if (raw === undefined) return 'BucketOwnerEnforced';
  const value = raw.trim();
  if (!(OWNERSHIPS as readonly string[]).includes(value)) {
    throw new S3Error('InvalidArgument', 'Invalid x-amz-object-ownership header', { ArgumentName: 'x-amz-object-ownership', ArgumentValue: raw });
  }
  return value as ObjectOwnership;
}

/**
 * The ACL a new bucket gets from CreateBucket's headers (absent: private). With
 * BucketOwnerEnforced only the owner's full control is allowed: InvalidBucketAclWithObjectOwnership.
 */
export function aclOfNewBucket(ctx: RequestContext, owner: string, ownership: ObjectOwnership): AclGrant[] | undefined {
  const request = aclFromHeaders(ctx.req.headers);
  const acl = grantsOf(request, owner, owner);
  if (acl === undefined) return undefined;
  if (ownership === 'BucketOwnerEnforced' && !grantsOnlyTo(acl, owner)) throw new S3Error('InvalidBucketAclWithObjectOwnership');
  return request.kind === 'canned' && request.name === 'private' ? undefined : acl;
}

/** GET /bucket?acl — under BucketOwnerEnforced always the owner's full control, as S3 answers. */
export async function getBucketAcl(ctx: RequestContext, bucket: string): Promise<void> {
  const record = await ctx.access.bucket(bucket);
  const grants = record.ownership === 'BucketOwnerEnforced' ? privateAcl(record.owner) : (record.acl ?? privateAcl(record.owner));
  ctx.reply.type('application/xml').send(renderXml('AccessControlPolicy', renderAccessControlPolicy(record.owner, grants)));
}

/** PUT /bucket?acl — canned ACL, grant headers or an AccessControlPolicy body (one of them). */
export async function putBucketAcl(ctx: RequestContext, bucket: string): Promise<void> {
  const record = await ctx.access.bucket(bucket);
  const acl = await requestedAcl(ctx, record.owner, record.owner);
  if (record.ownership === 'BucketOwnerEnforced' && !grantsOnlyTo(acl, record.owner)) throw new S3Error('AccessControlListNotSupported');
  await ctx.deps.objects.putBucketAcl(bucket, acl);
  ctx.reply.send();
}

/** GET /bucket/key?acl */
export async function getObjectAcl(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  const object = await ctx.access.readObject(bucket, key, 'READ_ACP');
  const record = await ctx.access.bucket(bucket);
  const enforced = record.ownership === 'BucketOwnerEnforced';
  const owner = enforced ? record.owner : object.owner;
  const grants = enforced ? privateAcl(owner) : (object.acl ?? privateAcl(owner));
  ctx.reply.type('application/xml').send(renderXml('AccessControlPolicy', renderAccessControlPolicy(owner, grants)));
}

/** PUT /bucket/key?acl — replaces the object's ACL; its bytes and ETag stay. */
export async function putObjectAcl(ctx: RequestContext, bucket: string, key: string): Promise<void> {
  validateKey(key);
  const object = await ctx.access.readObject(bucket, key, 'WRITE_ACP');
  const record = await ctx.access.bucket(bucket);
  const enforced = record.ownership === 'BucketOwnerEnforced';
  const owner = enforced ? record.owner : object.owner;
  const acl = await requestedAcl(ctx, owner, record.owner);
  if (enforced && !grantsOnlyTo(acl, record.owner)) throw new S3Error('AccessControlListNotSupported');
  await ctx.deps.objects.putObjectAcl(bucket, key, acl);
  ctx.reply.send();
}

/**
 * The ACL a PUT ?acl asks for. Headers and a body together are refused (UnexpectedContent, as
 * S3 answers); neither is a malformed ACL.
 */
async function requestedAcl(ctx: RequestContext, owner: string, bucketOwner: string): Promise<AclGrant[]> {
  const fromHeaders = aclFromHeaders(ctx.req.headers);
  const body = await readXmlBody(ctx, { optional: true });
  if (body !== undefined && fromHeaders.kind !== 'none') throw new S3Error('UnexpectedContent');
  if (body !== undefined) return parseAccessControlPolicy(body.parse('AccessControlPolicy'), owner);
  const acl = grantsOf(fromHeaders, owner, bucketOwner);
  if (acl === undefined) throw new S3Error('MalformedACLError', 'Send an x-amz-acl or x-amz-grant-* header, or an AccessControlPolicy body.');
  return acl;
}

/** The grants a header request stands for; undefined when it names no ACL. */
function grantsOf(request: AclRequest, owner: string, bucketOwner: string): AclGrant[] | undefined {
  switch (request.kind) {
    case 'none':
      return undefined;
    case 'canned':
      return cannedAcl(request.name, owner, bucketOwner);
    case 'grants':
      return request.grants;
  }
}

/** GET /bucket?ownershipControls */
export async function getBucketOwnershipControls(ctx: RequestContext, bucket: string): Promise<void> {
  const record: BucketRecord = await ctx.access.bucket(bucket);
  if (record.ownership === undefined) throw new S3Error('OwnershipControlsNotFoundError');
  ctx.reply.type('application/xml').send(renderXml('OwnershipControls', { Rule: { ObjectOwnership: record.ownership } }));
}

/** PUT /bucket?ownershipControls — exactly one rule naming one of the three settings. */
export async function putBucketOwnershipControls(ctx: RequestContext, bucket: string): Promise<void> {
  const body = await readXmlBody(ctx, { optional: false });
  const doc = body!.parse('OwnershipControls');
  const rules = children(doc, 'Rule');
  if (rules.length !== 1 || typeof rules[0] !== 'object' || rules[0] === null) throw new S3Error('MalformedXML');
  const value = childText(rules[0] as Record<string, unknown>, 'ObjectOwnership')?.trim();
  if (value === undefined || !(OWNERSHIPS as readonly string[]).includes(value)) throw new S3Error('MalformedXML');
  await ctx.deps.objects.putBucketOwnershipControls(bucket, value as ObjectOwnership);
  ctx.reply.send();
}

/** DELETE /bucket?ownershipControls — the bucket then behaves as ObjectWriter. */
export async function deleteBucketOwnershipControls(ctx: RequestContext, bucket: string): Promise<void> {
  await ctx.deps.objects.putBucketOwnershipControls(bucket, null);
  ctx.reply.code(204).send();
}
