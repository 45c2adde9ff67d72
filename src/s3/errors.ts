/**
 * The one S3 error table (Arsenal's errors.json in spirit): AWS error code → HTTP status and
 * default message, with AWS's spelling. Every error the S3 layer sends comes from here, and
 * test/unit/s3/errors.test.ts checks the table against the codes the code base uses.
 * Source: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
 */
import { errorCode } from '../util/errors.ts';
import * as objects from '../objects/errors.ts';

/** An S3 error code with its HTTP status and default message. */
export interface S3ErrorSpec {
  status: number;
  message: string;
}

export const S3_ERRORS = {
  AccessControlListNotSupported: { status: 400, message: 'The bucket does not allow ACLs' },
  AccessDenied: { status: 403, message: 'Access Denied' },
  AccessForbidden: { status: 403, message: 'CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource\'s CORS spec.' },
  AuthorizationHeaderMalformed: { status: 400, message: 'The authorization header is malformed.' },
  AuthorizationQueryParametersError: { status: 400, message: 'Error parsing the X-Amz-Credential parameter.' },
  BadRequest: { status: 400, message: 'Bad Request' },
  BadDigest: { status: 400, message: 'The Content-MD5 or checksum value that you specified did not match what the server received.' },
  BucketAlreadyExists: { status: 409, message: 'The requested bucket name is not available.' },
  BucketAlreadyOwnedByYou: { status: 409, message: 'Your previous request to create the named bucket succeeded and you already own it.' },
  BucketNotEmpty: { status: 409, message: 'The bucket you tried to delete is not empty.' },
  ConditionalRequestConflict: { status: 409, message: 'A conflicting conditional operation is currently in progress against this resource.' },
  EntityTooLarge: { status: 400, message: 'Your proposed upload exceeds the maximum allowed object size.' },
  EntityTooSmall: { status: 400, message: 'Your proposed upload is smaller than the minimum allowed object size.' },
  IllegalLocationConstraintException: { status: 400, message: 'The specified location constraint is not valid.' },
  IncompleteBody: { status: 400, message: 'You did not provide the number of bytes specified by the Content-Length HTTP header.' },
  InternalError: { status: 500, message: 'We encountered an internal error. Please try again.' },
  InvalidAccessKeyId: { status: 403, message: 'The AWS access key ID you provided does not exist in our records.' },
  InvalidArgument: { status: 400, message: 'Invalid Argument' },
  InvalidBucketAclWithObjectOwnership: { status: 400, message: "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting" },
  InvalidBucketName: { status: 400, message: 'The specified bucket is not valid.' },
  InvalidChunkSizeError: { status: 403, message: 'Only the last chunk is allowed to have a size less than 8192 bytes' },
  InvalidDigest: { status: 400, message: 'The Content-MD5 you specified is not valid.' },
  InvalidLocationConstraint: { status: 400, message: 'The specified location constraint is not valid.' },
  InvalidPart: { status: 400, message: 'One or more of the specified parts could not be found.' },
  // AWS's error table says 416, but S3 answers a GET/HEAD ?partNumber past the last part with 400
  // (ceph s3-tests test_multipart_get_part, checked against AWS), and clients go by what S3 sends.
  InvalidPartNumber: { status: 400, message: 'The requested partnumber is not satisfiable' },
  InvalidPartOrder: { status: 400, message: 'The list of parts was not in ascending order.' },
  InvalidPolicyDocument: { status: 400, message: 'The content of the form does not meet the conditions specified in the policy document.' },
  InvalidRange: { status: 416, message: 'The requested range is not satisfiable' },
  InvalidRequest: { status: 400, message: 'Invalid Request' },
  InvalidStorageClass: { status: 400, message: 'The storage class you specified is not valid.' },
  InvalidTag: { status: 400, message: 'The tag provided was not a valid tag.' },
  InvalidURI: { status: 400, message: "Couldn't parse the specified URI." },
  KeyTooLongError: { status: 400, message: 'Your key is too long.' },
  MalformedACLError: { status: 400, message: 'The XML you provided was not well-formed or did not validate against our published schema.' },
  MalformedPolicy: { status: 400, message: 'Policies must be valid JSON and the first byte must be {' },
  MalformedPOSTRequest: { status: 400, message: 'The body of your POST request is not well-formed multipart/form-data.' },
  MalformedXML: { status: 400, message: 'The XML you provided was not well-formed or did not validate against our published schema.' },
  MaxMessageLengthExceeded: { status: 400, message: 'Your request was too big.' },
  MetadataTooLarge: { status: 400, message: 'Your metadata headers exceed the maximum allowed metadata size.' },
  MethodNotAllowed: { status: 405, message: 'The specified method is not allowed against this resource.' },
  MissingContentLength: { status: 411, message: 'You must provide the Content-Length HTTP header.' },
  MissingRequestBodyError: { status: 400, message: 'Request Body is empty.' },
  MissingSecurityHeader: { status: 400, message: 'Your request is missing a required header.' },
  NoSuchBucket: { status: 404, message: 'The specified bucket does not exist.' },
  NoSuchBucketPolicy: { status: 404, message: 'The bucket policy does not exist' },
  NoSuchCORSConfiguration: { status: 404, message: 'The CORS configuration does not exist' },
  NoSuchKey: { status: 404, message: 'The specified key does not exist.' },
  NoSuchTagSet: { status: 404, message: 'The TagSet does not exist' },
  NoSuchUpload: { status: 404, message: 'The specified upload does not exist.' },
  NotImplemented: { status: 501, message: 'A header or query you provided implies functionality that is not implemented.' },
  NotModified: { status: 304, message: 'Not Modified' },
  OwnershipControlsNotFoundError: { status: 404, message: 'The bucket ownership controls were not found' },
  PreconditionFailed: { status: 412, message: 'At least one of the preconditions you specified did not hold.' },
  RequestHeaderSectionTooLarge: { status: 400, message: 'Your request header section exceeds the maximum allowed size.' },
  RequestTimeTooSkewed: { status: 403, message: 'The difference between the request time and the current time is too large.' },
  RequestTimeout: { status: 400, message: 'Your socket connection to the server was not read from or written to within the timeout period.' },
  ServiceUnavailable: { status: 503, message: 'Service is unable to handle request.' },
  SignatureDoesNotMatch: { status: 403, message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' },
  SlowDown: { status: 503, message: 'Please reduce your request rate.' },
  UnexpectedContent: { status: 400, message: 'This request does not support content' },
  UnresolvableGrantByEmailAddress: { status: 400, message: 'The email address you provided does not match any account on record.' },
  XAmzContentSHA256Mismatch: { status: 400, message: "The provided 'x-amz-content-sha256' header does not match what was computed." },
} as const satisfies Record<string, S3ErrorSpec>;

/** An AWS S3 error code this server can send. */
export type S3ErrorCode = keyof typeof S3_ERRORS;

/** An error to be rendered as S3 XML with the table's status. */
export class S3Error extends Error {
  readonly code: S3ErrorCode;
  readonly status: number;
  /** Extra XML elements AWS adds for some codes (e.g. BucketName, Key, ArgumentName). */
  readonly extra: Record<string, string>;
  /** Extra response headers (e.g. Allow for MethodNotAllowed). */
  readonly headers: Record<string, string>;

  constructor(code: S3ErrorCode, message?: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
    super(message ?? S3_ERRORS[code].message);
    this.name = 'S3Error';
    this.code = code;
    this.status = S3_ERRORS[code].status;
    this.extra = extra;
    this.headers = headers;
  }
}

/** True when `code` is an S3 error code in the table. */
export function isS3ErrorCode(code: string): code is S3ErrorCode {
  return Object.hasOwn(S3_ERRORS, code);
}

/** Codes of the object layer → S3 codes. Anything unlisted is an InternalError. */
const FROM_OBJECTS: Record<string, S3ErrorCode> = {
  [objects.META_ERR_NO_SUCH_BUCKET]: 'NoSuchBucket',
  [objects.META_ERR_NO_SUCH_KEY]: 'NoSuchKey',
  [objects.META_ERR_BUCKET_EXISTS]: 'BucketAlreadyExists',
  [objects.META_ERR_BUCKET_OWNED_BY_YOU]: 'BucketAlreadyOwnedByYou',
  [objects.META_ERR_BUCKET_NOT_EMPTY]: 'BucketNotEmpty',
  [objects.META_ERR_PRECONDITION_FAILED]: 'PreconditionFailed',
  [objects.META_ERR_CONDITIONAL_CONFLICT]: 'NoSuchKey',
  // The source was deleted or overwritten while being copied; retrying copies the new state.
  [objects.META_ERR_COPY_SOURCE_CHANGED]: 'ConditionalRequestConflict',
  [objects.META_ERR_NO_SUCH_UPLOAD]: 'NoSuchUpload',
  [objects.META_ERR_INVALID_PART]: 'InvalidPart',
  [objects.META_ERR_INVALID_PART_ORDER]: 'InvalidPartOrder',
  [objects.META_ERR_ENTITY_TOO_SMALL]: 'EntityTooSmall',
  [objects.META_ERR_ACL_NOT_SUPPORTED]: 'AccessControlListNotSupported',
  [objects.META_ERR_ACL_BLOCKS_OWNERSHIP]: 'InvalidBucketAclWithObjectOwnership',
  // Three re-uploads of a part during one completion: the client is racing itself.
  [objects.META_ERR_UPLOAD_CHANGED]: 'InternalError',
  [objects.OBJ_ERR_INCOMPLETE_BODY]: 'IncompleteBody',
  [objects.OBJ_ERR_TOO_LARGE]: 'EntityTooLarge',
  [objects.OBJ_ERR_INVALID_RANGE]: 'InvalidRange',
  [objects.CHUNK_ERR_CORRUPT]: 'InternalError',
  [objects.CHUNK_ERR_NOT_FOUND]: 'InternalError',
  [objects.CONSENSUS_ERR_CLOSED]: 'ServiceUnavailable',
  [objects.CONSENSUS_ERR_NO_LEADER]: 'ServiceUnavailable',
  [objects.CONSENSUS_ERR_TIMEOUT]: 'ServiceUnavailable',
};

/**
 * Converts any thrown value into an S3Error: S3Errors pass through, coded errors from the object
 * layer and from authentication map through the tables, everything else is InternalError.
 */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  const code = errorCode(err);
  if (code !== undefined) {
    const mapped = FROM_OBJECTS[code];
    if (mapped) return new S3Error(mapped, undefined, extraOf(err));
    // Authentication errors carry AWS's diagnostic elements (StringToSign, ServerTime, …) in `detail`.
    if (isS3ErrorCode(code)) return new S3Error(code, (err as Error).message, detailOf(err));
  }
  return new S3Error('InternalError');
}

/** The string fields of an error's `detail` (S3AuthError), as extra XML elements. */
function detailOf(err: unknown): Record<string, string> {
  const detail = (err as { detail?: unknown }).detail;
  if (typeof detail !== 'object' || detail === null) return {};
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(detail)) if (typeof v === 'string') extra[k] = v;
  return extra;
}

/** AWS's extra error elements from a coded error's metadata (EntityTooSmall, InvalidPart, NoSuchUpload). */
function extraOf(err: unknown): Record<string, string> {
  const meta = (err as { meta?: Record<string, unknown> }).meta ?? {};
  const extra: Record<string, string> = {};
  const names: Record<string, string> = {
    uploadId: 'UploadId',
    partNumber: 'PartNumber',
    etag: 'ETag',
    proposedSize: 'ProposedSize',
    minSizeAllowed: 'MinSizeAllowed',
  };
  for (const [from, to] of Object.entries(names)) if (meta[from] !== undefined) extra[to] = String(meta[from]);
  return extra;
}
