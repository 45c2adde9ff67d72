/**
 * Authorization of S3 requests by bucket and object ACLs and Object Ownership, after
 * authentication said who asks. The rules, after S3's
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#permissions):
 *
 *   requester        what it may do
 *   ───────────────  ─────────────────────────────────────────────────────────────────────
 *   root/admin key   everything on every bucket: the cluster operator (like MinIO's root user)
 *   bucket owner     everything on its bucket; objects it owns, or every object when the
 *                    bucket's ownership is BucketOwnerEnforced (ACLs then do not count)
 *   other key        what the bucket ACL grants (READ: list; WRITE: create, overwrite and
 *                    delete objects; READ_ACP/WRITE_ACP: the bucket ACL) and what each object's
 *                    ACL grants (READ: get/head; READ_ACP/WRITE_ACP: its ACL); AuthenticatedUsers
 *                    grants count for every valid key
 *   anonymous        only what AllUsers grants; never ListBuckets, CreateBucket or anything
 *                    that only a bucket owner may do (tagging, CORS, ownership, deletion, …)
 *   bucket policy    an explicit Deny that matches refuses anyone but an operator (the owner keeps
 *                    Get/Put/DeleteBucketPolicy); a matching Allow grants what ACLs do not, but
 *                    never the policy itself to anyone but the owner, nor an owner's operation or
 *                    WRITE_ACP to an anonymous caller
 *   scoped key       (per-key bucket permissions, issue #18) only the buckets it was given, each
 *                    as far as its permission goes — read: list and get; write: also put, copy,
 *                    delete and multipart; owner: everything — whatever the ACLs say; it creates
 *                    no buckets and lists only its own
 *
 * A missing object answers 404 only to whoever may list the bucket, and 403 to others, as S3
 * does, so that ACLs do not reveal which keys exist.
 */
import { type AuthResult, payloadModeOf } from '../auth/authenticate.ts';
import type { S3Endpoint } from '../endpoint.ts';
import type { ObjectService } from '../../objects/object-service.ts';
import type { AclGrant, AclPermission, BucketRecord, KeyBucketPermission, ObjectRecord } from '../../objects/types.ts';
import { META_ERR_NO_SUCH_KEY } from '../../objects/errors.ts';
import { unreachable } from '../../util/assert.ts';
import { errorCode } from '../../util/errors.ts';
import { S3Error } from '../errors.ts';
import { type AclRequest, aclAllows, aclFromHeaders, cannedAcl, grantsOnlyTo, type Requester } from './acl.ts';
import { policyDecision, resourceArn } from './policy.ts';

/** What an endpoint needs before its handler runs; object permissions are checked by the handler. */
export type Requirement =
  | { scope: 'authenticated' }
  | { scope: 'bucket'; bucket: string; permission: AclPermission }
  | { scope: 'bucket-owner'; bucket: string }
  /** The handler reads the object and checks its ACL (RequestAccess.readObject). */
  | { scope: 'object' };

/** The requirement of each S3 operation. */
export function requirementOf(e: S3Endpoint): Requirement {
  switch (e.kind) {
    case 'ListBuckets':
    case 'CreateBucket':
    case 'NotImplemented':
    case 'PostObject':
      return { scope: 'authenticated' };
    case 'HeadBucket':
    case 'ListObjects':
    case 'ListObjectsV2':
    case 'ListMultipartUploads':
      return { scope: 'bucket', bucket: e.bucket, permission: 'READ' };
    case 'GetBucketAcl':
      return { scope: 'bucket', bucket: e.bucket, permission: 'READ_ACP' };
    case 'PutBucketAcl':
      return { scope: 'bucket', bucket: e.bucket, permission: 'WRITE_ACP' };
    case 'PutObject':
    case 'CopyObject':
    case 'DeleteObject':
    case 'DeleteObjects':
    case 'CreateMultipartUpload':
    case 'UploadPart':
    case 'UploadPartCopy':
    case 'CompleteMultipartUpload':
    case 'AbortMultipartUpload':
    case 'ListParts':
      return { scope: 'bucket', bucket: e.bucket, permission: 'WRITE' };
    case 'GetObject':
    case 'HeadObject':
    case 'GetObjectAttributes':
    case 'GetObjectAcl':
    case 'PutObjectAcl':
      return { scope: 'object' };
    case 'DeleteBucket':
    case 'GetBucketLocation':
    case 'GetBucketTagging':
    case 'PutBucketTagging':
    case 'DeleteBucketTagging':
    case 'GetBucketCors':
    case 'PutBucketCors':
    case 'DeleteBucketCors':
    case 'GetBucketOwnershipControls':
    case 'PutBucketOwnershipControls':
    case 'DeleteBucketOwnershipControls':
    case 'GetBucketPolicy':
    case 'PutBucketPolicy':
    case 'DeleteBucketPolicy':
    case 'GetObjectTagging':
    case 'PutObjectTagging':
    case 'DeleteObjectTagging':
      return { scope: 'bucket-owner', bucket: e.bucket };
    default:
      return unreachable(e);
  }
}

/** The owner and ACL a new object gets. */
export interface NewObjectAccess {
  owner: string;
  acl?: AclGrant[];
}

/**
 * One request's authorization: who asks, and the checks and bucket reads it needs (each bucket
 * read at most once per request).
 */
export class RequestAccess {
  readonly requester: Requester;
  /** Root and admin keys: every check passes. */
  readonly superuser: boolean;
  /** The bucket permissions of a scoped key; undefined for everyone else. */
  readonly scope: ReadonlyMap<string, KeyBucketPermission> | undefined;
  readonly #objects: ObjectService;
  readonly #buckets = new Map<string, Promise<BucketRecord>>();
  /** The request's one read barrier, passed before its first authorization read. */
  #barrier: Promise<void> | undefined;

  constructor(requester: Requester, superuser: boolean, objects: ObjectService, scope?: ReadonlyMap<string, KeyBucketPermission>) {
    this.requester = requester;
    this.superuser = superuser;
    this.#objects = objects;
    this.scope = superuser ? undefined : scope;
  }

  /** True when ListBuckets shows this bucket to the requester. */
  lists(bucket: BucketRecord): boolean {
    if (this.superuser) return true;
    if (this.scope) return this.scope.has(bucket.name);
    return this.#isOwner(bucket.owner);
  }

  /**
   * The bucket's record for decisions (NoSuchBucket when it does not exist), read after the
   * request's read barrier: a Deny or private ACL acknowledged through another node already binds.
   */
  bucket(name: string): Promise<BucketRecord> {
    let record = this.#buckets.get(name);
    if (!record) {
      record = this.#fresh().then(() => this.#objects.bucketAfterBarrier(name));
      this.#buckets.set(name, record);
    }
    return record;
  }

  /** The request's read barrier, started on first use and shared by every read after it. */
  #fresh(): Promise<void> {
    this.#barrier ??= this.#objects.readBarrier();
    return this.#barrier;
  }

  /** Checks an endpoint's requirement; AccessDenied when it does not hold. */
  async authorize(e: S3Endpoint): Promise<void> {
    const need = requirementOf(e);
    if (need.scope === 'object') return;
    if (this.requester.kind === 'anonymous' && need.scope === 'authenticated') throw accessDenied();
    if (this.superuser) return;
    if (need.scope === 'authenticated') {
      if (this.scope && e.kind === 'CreateBucket') throw accessDenied();
      return;
    }
    // A scoped key's permissions replace the ACLs: they grant, and nothing else does.
    if (this.scope && !covers(this.scope.get(need.bucket), need.scope === 'bucket-owner' ? 'owner' : LEVEL_OF[need.permission])) throw accessDenied();
    const bucket = await this.bucket(need.bucket);
    // DeleteObjects is judged key by key (deletesObject): one key's refusal is one AccessDenied entry.
    if (e.kind === 'DeleteObjects') return;
    const { action, key } = actionOf(e);
    const decision = policyDecision(bucket.policy, this.requester, action, resourceArn(bucket.name, key));
    // An explicit Deny wins, except over the owner's hold on the policy itself (no lockout).
    if (decision === 'deny' && !(POLICY_OPERATIONS.has(e.kind) && this.#isOwner(bucket.owner))) throw accessDenied();
    if (this.scope) return;
    if (need.scope === 'bucket-owner') {
      if (this.#isOwner(bucket.owner)) return;
      if (decision !== 'allow' || !this.#policyMayGrantOwnerOperation(e.kind)) throw accessDenied();
      return;
    }
    if (this.bucketAllows(bucket, need.permission)) return;
    if (decision !== 'allow' || !this.#policyMayGrant(need.permission)) throw accessDenied();
  }

  /**
   * True when a policy Allow may give this (non-owner) requester an owner's operation. As in S3,
   * only the bucket owner may read or change the policy itself whatever the policy says, and an
   * anonymous caller never gets an owner's operation (configuration, ownership, deletion): a
   * "Principal: *" statement written for public reads must not hand the bucket to everyone.
   */
  #policyMayGrantOwnerOperation(kind: S3Endpoint['kind']): boolean {
    return this.requester.kind === 'user' && !POLICY_OPERATIONS.has(kind);
  }

  /**
   * True when a policy Allow may stand in for an ACL permission: anything for a key, but never
   * WRITE_ACP for an anonymous caller (rewriting an ACL is taking control of the bucket or object).
   */
  #policyMayGrant(permission: AclPermission): boolean {
    return this.requester.kind === 'user' || (permission !== 'WRITE_ACP' && permission !== 'FULL_CONTROL');
  }

  /** True when the bucket's ACL (or ownership) gives the requester the permission. */
  bucketAllows(bucket: BucketRecord, permission: AclPermission): boolean {
    if (this.superuser) return true;
    if (this.scope) return covers(this.scope.get(bucket.name), LEVEL_OF[permission]);
    if (bucket.ownership === 'BucketOwnerEnforced') return this.#isOwner(bucket.owner);
    return aclAllows(bucket.owner, bucket.acl, this.requester, permission);
  }

  /** True when the object's ACL (or its bucket's ownership) gives the requester the permission. */
  objectAllows(bucket: BucketRecord, object: ObjectRecord, permission: AclPermission): boolean {
    if (this.superuser) return true;
    if (this.scope) return covers(this.scope.get(bucket.name), LEVEL_OF[permission]);
    // ACLs are disabled under BucketOwnerEnforced: the bucket owner owns every object, whatever
    // ACL an object kept from before the setting.
    if (bucket.ownership === 'BucketOwnerEnforced') return this.#isOwner(bucket.owner);
    return aclAllows(object.owner, object.acl, this.requester, permission);
  }

  /**
   * The object, if the requester holds `permission` on it. A missing key is NoSuchKey only for
   * those who may list the bucket; others get AccessDenied, as in S3.
   */
  async readObject(bucketName: string, key: string, permission: AclPermission): Promise<ObjectRecord> {
    if (this.superuser) return this.#objects.getObject(bucketName, key);
    if (this.scope && !covers(this.scope.get(bucketName), LEVEL_OF[permission])) throw accessDenied();
    const bucket = await this.bucket(bucketName);
    const decision = policyDecision(bucket.policy, this.requester, OBJECT_ACTIONS[permission], resourceArn(bucketName, key));
    if (decision === 'deny') throw accessDenied();
    let object: ObjectRecord;
    try {
      // this.bucket() passed the request's barrier: the object read needs no second round.
      object = await this.#objects.getObjectAfterBarrier(bucketName, key);
    } catch (err) {
      if (errorCode(err) === META_ERR_NO_SUCH_KEY && !this.#mayList(bucket)) throw accessDenied();
      throw err;
    }
    if (!this.objectAllows(bucket, object, permission) && !(decision === 'allow' && this.#policyMayGrant(permission))) throw accessDenied();
    return object;
  }

  /**
   * True when the requester may delete `key` from `bucket`, decided as a DeleteObject of that one
   * key would be (scope or bucket ACL WRITE or a policy Allow of s3:DeleteObject on the key, and
   * no Deny): DeleteObjects asks this for each key it deletes.
   */
  deletesObject(bucket: BucketRecord, key: string): boolean {
    if (this.superuser) return true;
    const decision = policyDecision(bucket.policy, this.requester, 's3:DeleteObject', resourceArn(bucket.name, key));
    if (decision === 'deny') return false;
    if (this.scope) return covers(this.scope.get(bucket.name), 'write');
    return this.bucketAllows(bucket, 'WRITE') || decision === 'allow';
  }

  /** True when the requester may list the bucket (ACL, scope or policy): it may learn a key is missing. */
  #mayList(bucket: BucketRecord): boolean {
    if (this.bucketAllows(bucket, 'READ')) return true;
    return !this.scope && policyDecision(bucket.policy, this.requester, 's3:ListBucket', resourceArn(bucket.name)) === 'allow';
  }

  /**
   * The owner and ACL of an object this request writes into `bucketName`, from its x-amz-acl or
   * x-amz-grant-* headers and the bucket's Object Ownership
   * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html):
   * BucketOwnerEnforced makes the bucket owner the owner and accepts no ACL but the owner's full
   * control; BucketOwnerPreferred gives the bucket owner objects written with
   * bucket-owner-full-control; otherwise the writer owns what it writes. An anonymous writer
   * (a public-read-write bucket) owns nothing: its objects are the bucket owner's.
   */
  async newObject(bucketName: string, key: string, headers: Record<string, string | string[] | undefined>): Promise<NewObjectAccess> {
    const request = aclFromHeaders(headers);
    const bucket = await this.bucket(bucketName);
    const access = newObjectAccess(bucket, this.requester, request);
    // Naming an ACL on a write is writing that ACL (S3 asks for s3:PutObjectAcl too): a scoped key
    // needs the owner level, and a policy Deny of s3:PutObjectAcl on the key refuses the write.
    if (access.acl !== undefined && !this.superuser) {
      if (this.scope && !covers(this.scope.get(bucketName), 'owner')) throw accessDenied();
      if (policyDecision(bucket.policy, this.requester, 's3:PutObjectAcl', resourceArn(bucketName, key)) === 'deny') throw accessDenied();
    }
    return access;
  }

  #isOwner(owner: string): boolean {
    return this.requester.kind === 'user' && this.requester.id === owner;
  }
}

/** The IAM action of each operation, for bucket policies (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html). */
const ACTIONS: Partial<Record<S3Endpoint['kind'], string>> = {
  HeadBucket: 's3:ListBucket',
  ListObjects: 's3:ListBucket',
  ListObjectsV2: 's3:ListBucket',
  ListMultipartUploads: 's3:ListBucketMultipartUploads',
  GetBucketAcl: 's3:GetBucketAcl',
  PutBucketAcl: 's3:PutBucketAcl',
  PutObject: 's3:PutObject',
  CopyObject: 's3:PutObject',
  CreateMultipartUpload: 's3:PutObject',
  UploadPart: 's3:PutObject',
  UploadPartCopy: 's3:PutObject',
  CompleteMultipartUpload: 's3:PutObject',
  AbortMultipartUpload: 's3:AbortMultipartUpload',
  ListParts: 's3:ListMultipartUploadParts',
  DeleteObject: 's3:DeleteObject',
  DeleteObjects: 's3:DeleteObject',
  DeleteBucket: 's3:DeleteBucket',
  GetBucketLocation: 's3:GetBucketLocation',
  GetBucketTagging: 's3:GetBucketTagging',
  PutBucketTagging: 's3:PutBucketTagging',
  DeleteBucketTagging: 's3:PutBucketTagging',
  GetBucketCors: 's3:GetBucketCORS',
  PutBucketCors: 's3:PutBucketCORS',
  DeleteBucketCors: 's3:PutBucketCORS',
  GetBucketOwnershipControls: 's3:GetBucketOwnershipControls',
  PutBucketOwnershipControls: 's3:PutBucketOwnershipControls',
  DeleteBucketOwnershipControls: 's3:PutBucketOwnershipControls',
  GetBucketPolicy: 's3:GetBucketPolicy',
  PutBucketPolicy: 's3:PutBucketPolicy',
  DeleteBucketPolicy: 's3:DeleteBucketPolicy',
  GetObjectTagging: 's3:GetObjectTagging',
  PutObjectTagging: 's3:PutObjectTagging',
  DeleteObjectTagging: 's3:DeleteObjectTagging',
};

/** The policy operations a bucket's owner may always use, whatever its policy denies. */
const POLICY_OPERATIONS: ReadonlySet<string> = new Set(['GetBucketPolicy', 'PutBucketPolicy', 'DeleteBucketPolicy']);

/** The action of an object read by the ACL permission it needs. */
const OBJECT_ACTIONS: Record<AclPermission, string> = {
  READ: 's3:GetObject',
  WRITE: 's3:PutObject',
  READ_ACP: 's3:GetObjectAcl',
  WRITE_ACP: 's3:PutObjectAcl',
  FULL_CONTROL: 's3:*',
};

/** The IAM action and object key of an operation (DeleteObjects: see RequestAccess.deletesObject). */
export function actionOf(e: S3Endpoint): { action: string; key?: string } {
  const action = ACTIONS[e.kind] ?? 's3:*';
  return 'key' in e ? { action, key: e.key } : { action };
}

/** The scoped-key permission an ACL permission needs: reading data, writing it, or ACLs (owner). */
const LEVEL_OF: Record<AclPermission, KeyBucketPermission> = {
  READ: 'read',
  WRITE: 'write',
  READ_ACP: 'owner',
  WRITE_ACP: 'owner',
  FULL_CONTROL: 'owner',
};
const RANK: Record<KeyBucketPermission, number> = { read: 1, write: 2, owner: 3 };

/** True when a scoped key's permission on a bucket (undefined: none) reaches `needed`. */
function covers(held: KeyBucketPermission | undefined, needed: KeyBucketPermission): boolean {
  return held !== undefined && RANK[held] >= RANK[needed];
}

/** See RequestAccess.newObject. */
export function newObjectAccess(bucket: BucketRecord, requester: Requester, request: AclRequest): NewObjectAccess {
  if (bucket.ownership === 'BucketOwnerEnforced') {
    const owner = bucket.owner;
    const fine =
      request.kind === 'none' ||
      (request.kind === 'canned' && (request.name === 'private' || request.name === 'bucket-owner-full-control')) ||
      (request.kind === 'grants' && grantsOnlyTo(request.grants, owner));
    if (!fine) throw new S3Error('AccessControlListNotSupported');
    return { owner };
  }
  const writer = requester.kind === 'user' ? requester.id : bucket.owner;
  const toBucketOwner = bucket.ownership === 'BucketOwnerPreferred' && request.kind === 'canned' && request.name === 'bucket-owner-full-control';
  const owner = toBucketOwner ? bucket.owner : writer;
  switch (request.kind) {
    case 'none':
      return { owner };
    case 'canned':
      return request.name === 'private' ? { owner } : { owner, acl: cannedAcl(request.name, owner, bucket.owner) };
    case 'grants':
      return { owner, acl: request.grants };
  }
}

/** S3's 403 for a request its ACLs do not allow. */
export function accessDenied(): S3Error {
  return new S3Error('AccessDenied');
}

/** True when a request carries no credentials at all (no Authorization header, no presigned query). */
export function isAnonymousRequest(headers: Record<string, string | string[] | undefined>, query: URLSearchParams): boolean {
  if (headers['authorization'] !== undefined) return false;
  for (const name of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Signature', 'AWSAccessKeyId', 'Signature']) if (query.has(name)) return false;
  return true;
}

/**
 * The AuthResult of an anonymous request: no key and no signature, a body protected only by
 * what the client declares (x-amz-content-sha256 as a plain hash, Content-MD5, checksums).
 * Signed streaming bodies need a key, so an anonymous request cannot claim one.
 */
export function anonymousAuth(headers: Record<string, string | string[] | undefined>, nowMs: number): AuthResult {
  const raw = headers['x-amz-content-sha256'];
  const declared = Array.isArray(raw) ? raw[0] : raw;
  const payload = declared === undefined ? ({ kind: 'unsigned' } as const) : payloadModeOf(declared.trim(), headers);
  if (payload.kind === 'streaming-signed' || payload.kind === 'streaming-signed-trailer') {
    throw new S3Error('AccessDenied', 'A signed streaming upload needs a signed request.');
  }
  return {
    accessKeyId: '',
    payload,
    signingKey: Buffer.alloc(0),
    scope: '',
    amzDate: '',
    requestTimeMs: nowMs,
    seedSignature: '',
    presigned: false,
    signedHeaders: [],
    signatureVersion: 4,
  };
}
