/**
 * S3AuthError is thrown by SigV4 authentication, aws-chunked payload verification and checksum
 * verification. `code` is the AWS S3 error code spelled exactly as AWS spells it
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html); the router maps it to an
 * HTTP status through the one S3 error table. Codes are stable, messages are not.
 */
export class S3AuthError extends Error {
  override name = 'S3AuthError';
  /** The AWS S3 error code, e.g. 'SignatureDoesNotMatch'. */
  readonly code: S3AuthErrorCode;
  /** Extra fields AWS puts in the error XML (e.g. RequestTime, ServerTime, HeadersNotSigned). */
  readonly detail: Readonly<Record<string, string>>;

  constructor(code: S3AuthErrorCode, message: string, detail: Record<string, string> = {}) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

/** Every S3 error code this module throws. The router's error table must cover all of them. */
export const S3_AUTH_ERROR_CODES = [
  'AccessDenied',
  'AuthorizationHeaderMalformed',
  'AuthorizationQueryParametersError',
  'BadDigest',
  'IncompleteBody',
  'InvalidAccessKeyId',
  'InvalidArgument',
  'InvalidChunkSizeError',
  'InvalidDigest',
  'InvalidRequest',
  'MissingContentLength',
  'NotImplemented',
  'RequestTimeTooSkewed',
  'SignatureDoesNotMatch',
  'XAmzContentSHA256Mismatch',
] as const;

/** Union of the S3 error codes in S3_AUTH_ERROR_CODES. */
export type S3AuthErrorCode = (typeof S3_AUTH_ERROR_CODES)[number];

/** Returns true when `err` is an S3AuthError-shaped error with the given code (checked by code, not instanceof). */
export function isS3AuthError(err: unknown, code?: S3AuthErrorCode): err is S3AuthError {
  if (typeof err !== 'object' || err === null) return false;
  const c = (err as { code?: unknown }).code;
  if (typeof c !== 'string' || !(S3_AUTH_ERROR_CODES as readonly string[]).includes(c)) return false;
  return code === undefined || c === code;
}
