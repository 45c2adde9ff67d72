/**
 * authenticate() verifies the SigV4 or SigV2 signature of an S3 request's head (method, path,
 * query, headers) and says how its body must be verified. It is pure: the clock arrives as `nowMs` and
 * secrets through `lookupSecret`. Body verification is payload.ts's job, driven by the returned
 * PayloadMode, signing key and seed signature.
 *
 * Two ways to sign (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html):
 *   - the Authorization header: `AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
 *     SignedHeaders=host;x-amz-date, Signature=<64 hex>`;
 *   - presigned query parameters: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires,
 *     X-Amz-SignedHeaders, X-Amz-Signature.
 * And the two ways of Signature Version 2 (sigv2.ts; RESTAuthentication.html), which old clients
 * and `s3cmd signurl` still use:
 *   - the Authorization header `AWS AKID:<base64 HMAC-SHA1>`, dated by Date or x-amz-date;
 *   - presigned query parameters AWSAccessKeyId, Expires (seconds since the epoch), Signature.
 * SigV2 signs no payload: its body is unsigned (Content-MD5, when sent, protects it).
 * SigV4a and anonymous requests are refused.
 */
import { assert } from '../../util/assert.ts';
import { S3AuthError } from './errors.ts';
import { constantTimeEqual, parseAuthorizationV2, requestStringsToSignV2, signatureV2, stringToSignBytes } from './sigv2.ts';
import {
  SIGV4_ALGORITHM,
  SIGV4_TERMINATOR,
  UNSIGNED_PAYLOAD,
  canonicalHeaders,
  canonicalQueryString,
  canonicalRequest,
  canonicalUri,
  constantTimeEqualHex,
  credentialScope,
  parseQuery,
  sha256Hex,
  signature,
  signedHeadersList,
  signingKey,
  stringToSign,
} from './sigv4.ts';

/** The largest clock difference S3 tolerates between a request's date and the server: 15 minutes. */
export const REQUEST_TIME_SKEW_MS_MAX = 15 * 60 * 1000;
/** Presigned URLs may live at most 7 days (sigv4-query-string-auth.html). */
export const PRESIGNED_EXPIRES_SECONDS_MAX = 604800;
/** Bound on the Authorization header we are willing to parse. */
export const AUTHORIZATION_HEADER_BYTES_MAX = 8192;

/** The head of an HTTP request as it arrived, before any decoding. */
export interface AuthRequest {
  method: string;
  /** Path as on the wire, percent-encoded, without the query. */
  rawPath: string;
  /** Query after '?', as on the wire ('' when none). */
  rawQuery: string;
  /** Lower-case header names, as node's IncomingMessage.headers. */
  headers: Record<string, string | string[] | undefined>;
  /** The bucket when the Host header named it (virtual-hosted style); SigV2 signs it. */
  virtualHostBucket?: string;
}

/** Options of authenticate(). */
export interface AuthOptions {
  /** Returns the secret access key of an access key id, or undefined when there is none. */
  lookupSecret(accessKeyId: string): string | undefined;
  /** The region this endpoint serves; the credential scope must name it. */
  region: string;
  /** Current wall-clock time in milliseconds since the epoch. */
  nowMs: number;
  /** Service name in the credential scope; S3 only. */
  service?: 's3';
}

/**
 * PayloadMode says how the body is protected, from x-amz-content-sha256
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-auth-using-authorization-header.html).
 * Streaming modes carry the x-amz-decoded-content-length the decoder must see.
 */
export type PayloadMode =
  | { kind: 'sha256'; hex: string }
  | { kind: 'unsigned' }
  | { kind: 'streaming-signed'; decodedContentLengthBytes: number }
  | { kind: 'streaming-signed-trailer'; decodedContentLengthBytes: number }
  | { kind: 'streaming-unsigned-trailer'; decodedContentLengthBytes: number };

/** What a successful authenticate() proves, and what payload verification needs. */
export interface AuthResult {
  accessKeyId: string;
  payload: PayloadMode;
  /** SigV4 signing key of the request's scope; shared, do not mutate. */
  signingKey: Buffer;
  /** Credential scope `date/region/service/aws4_request`. */
  scope: string;
  /** Request time in ISO 8601 basic format (20130524T000000Z), as used in strings to sign. */
  amzDate: string;
  /** Request time in ms since the epoch. */
  requestTimeMs: number;
  /** The verified request signature; the first chunk's "previous signature". */
  seedSignature: string;
  /** True for presigned (query-string) authentication. */
  presigned: boolean;
  /** Header names covered by the signature (for SigV2: the x-amz-* headers present). */
  signedHeaders: readonly string[];
  /**
   * 4, or 2 for Signature Version 2. SigV2 has no signing key, scope or chunk signatures:
   * `signingKey` is empty, `scope` is '', and `payload` is never a streaming mode.
   */
  signatureVersion: 2 | 4;
}

const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
const SIGV4A_ALGORITHM = 'AWS4-ECDSA-P256-SHA256';
const SIGV4A_STREAMING_PREFIX = 'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD';
const SHA256_HEX_RE = /^[0-9a-fA-F]{64}$/;
const AMZ_DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const DATE_STAMP_RE = /^\d{8}$/;

const PRESIGN_PARAMS = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
] as const;

/** Returns a header's value, joining repeated values with ','; undefined when absent. */
function header(headers: AuthRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/** parseAmzDate returns ms since the epoch of a `YYYYMMDDTHHMMSSZ` timestamp, or undefined if invalid. */
export function parseAmzDate(s: string): number | undefined {
  const m = AMZ_DATE_RE.exec(s);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  // Reject 20130231T… and 25:61:61: Date.UTC silently rolls them over.
  if (formatAmzDate(ms) !== s) return undefined;
  return ms;
}

/** formatAmzDate formats ms since the epoch as `YYYYMMDDTHHMMSSZ`. */
export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

type Where = 'header' | 'query';

function malformed(where: Where, message: string, detail: Record<string, string> = {}): S3AuthError {
  return where === 'header'
    ? new S3AuthError('AuthorizationHeaderMalformed', `The authorization header is malformed; ${message}`, detail)
    : new S3AuthError(
        'AuthorizationQueryParametersError',
        `Error parsing the X-Amz-Credential parameter; ${message}`,
        detail,
      );
}

/** Parses and checks `AK/date/region/service/aws4_request` against the configured region and service. */
function parseCredential(value: string, where: Where, region: string, service: string): Credential {
  const parts = value.split('/');
  if (parts.length !== 5 || parts.some((p) => p === '')) {
    throw malformed(
      where,
      'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
    );
  }
  const [accessKeyId, date, credRegion, credService, terminator] = parts as [string, string, string, string, string];
  if (!DATE_STAMP_RE.test(date)) {
    throw malformed(where, `incorrect date format "${date}". This date in the credential must be in the format "yyyyMMdd".`);
  }
  if (credRegion !== region) {
    throw malformed(where, `the region '${credRegion}' is wrong; expecting '${region}'`, { Region: region });
  }
  if (credService !== service) {
    throw malformed(where, `incorrect service "${credService}". This endpoint belongs to "${service}".`);
  }
  if (terminator !== SIGV4_TERMINATOR) {
    throw malformed(where, `incorrect terminal "${terminator}". This endpoint uses "${SIGV4_TERMINATOR}".`);
  }
  return { accessKeyId, date, region: credRegion, service: credService };
}

/**
 * payloadModeOf maps an x-amz-content-sha256 value to a PayloadMode. Streaming modes need
 * x-amz-decoded-content-length. Throws InvalidArgument for an unknown value, NotImplemented for
 * SigV4a streaming, MissingContentLength / InvalidArgument for a missing / bad decoded length.
 */
export function payloadModeOf(contentSha256: string, headers: AuthRequest['headers']): PayloadMode {
  if (SHA256_HEX_RE.test(contentSha256)) return { kind: 'sha256', hex: contentSha256.toLowerCase() };
  if (contentSha256 === UNSIGNED_PAYLOAD) return { kind: 'unsigned' };
  if (contentSha256.startsWith(SIGV4A_STREAMING_PREFIX)) {
    throw new S3AuthError('NotImplemented', 'SigV4a (AWS4-ECDSA-P256-SHA256) streaming uploads are not implemented.');
  }
  let kind: 'streaming-signed' | 'streaming-signed-trailer' | 'streaming-unsigned-trailer';
  if (contentSha256 === STREAMING_SIGNED) kind = 'streaming-signed';
  else if (contentSha256 === STREAMING_SIGNED_TRAILER) kind = 'streaming-signed-trailer';
  else if (contentSha256 === STREAMING_UNSIGNED_TRAILER) kind = 'streaming-unsigned-trailer';
  else {
    throw new S3AuthError(
      'InvalidArgument',
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, ' +
        'STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, ' +
        'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER ' +
        'or a valid sha256 value.',
      { ArgumentName: 'x-amz-content-sha256', ArgumentValue: contentSha256 },
    );
  }
  const decoded = header(headers, 'x-amz-decoded-content-length');
  if (decoded === undefined) {
    throw new S3AuthError(
      'MissingContentLength',
      'You must provide the x-amz-decoded-content-length HTTP header with a streaming upload.',
    );
  }
  if (!/^\d{1,15}$/.test(decoded.trim())) {
    throw new S3AuthError('InvalidArgument', 'x-amz-decoded-content-length must be a non-negative integer.', {
      ArgumentName: 'x-amz-decoded-content-length',
      ArgumentValue: decoded,
    });
  }
  return { kind, decodedContentLengthBytes: Number(decoded.trim()) };
}

/**
 * Every x-amz-* header present must be signed (S3 answers AccessDenied "There were headers present
 * in the request which were not signed"), and `host` must always be signed (SigV4 requires it; it
 * stops a signature from being replayed against another endpoint).
 */
function checkSignedHeaderSet(headers: AuthRequest['headers'], signed: readonly string[], where: Where): void {
  const set = new Set(signed);
  if (!set.has('host')) {
    throw where === 'header'
      ? new S3AuthError('AuthorizationHeaderMalformed', 'The authorization header is malformed; SignedHeaders must include host.')
      : new S3AuthError('AuthorizationQueryParametersError', 'X-Amz-SignedHeaders must include host.');
  }
  const notSigned: string[] = [];
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-amz-') && headers[name] !== undefined && !set.has(name)) notSigned.push(name);
  }
  if (notSigned.length > 0) {
    notSigned.sort();
    throw new S3AuthError('AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: notSigned.join(', '),
    });
  }
}

function lookup(opts: AuthOptions, accessKeyId: string): string {
  const secret = opts.lookupSecret(accessKeyId);
  if (secret === undefined) {
    throw new S3AuthError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: accessKeyId,
    });
  }
  return secret;
}

interface Verified {
  key: Buffer;
  signature: string;
}

/** Computes the request signature and compares it in constant time; throws SignatureDoesNotMatch. */
function verifySignature(
  req: AuthRequest,
  secret: string,
  cred: Credential,
  amzDate: string,
  signedHeadersRaw: string,
  signed: readonly string[],
  hashedPayload: string,
  presigned: boolean,
  clientSignature: string,
): Verified {
  const scope = credentialScope(cred.date, cred.region, cred.service);
  const creq = canonicalRequest(
    req.method,
    canonicalUri(req.rawPath),
    canonicalQueryString(req.rawQuery, presigned),
    canonicalHeaders(req.headers, signed),
    signedHeadersRaw,
    hashedPayload,
  );
  const sts = stringToSign(amzDate, scope, sha256Hex(creq));
  const key = signingKey(secret, cred.date, cred.region, cred.service);
  const expected = signature(key, sts);
  if (!constantTimeEqualHex(expected, clientSignature)) {
    throw new S3AuthError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: cred.accessKeyId, StringToSign: sts, CanonicalRequest: creq },
    );
  }
  return { key, signature: expected };
}

/**
 * parseAuthorizationHeader splits `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
 * into its three fields. Spaces after the commas are optional, and field order is free.
 */
export function parseAuthorizationHeader(value: string): { credential: string; signedHeaders: string; signature: string } {
  assert(value.startsWith(SIGV4_ALGORITHM), 'caller checked the algorithm');
  const rest = value.slice(SIGV4_ALGORITHM.length);
  if (!/^\s/.test(rest)) {
    throw new S3AuthError('AuthorizationHeaderMalformed', 'The authorization header is malformed; unsupported algorithm.');
  }
  const fields = new Map<string, string>();
  for (const part of rest.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new S3AuthError(
        'AuthorizationHeaderMalformed',
        `The authorization header is malformed; the authorization component "${item}" is malformed.`,
      );
    }
    const name = item.slice(0, eq).trim();
    if (fields.has(name)) {
      throw new S3AuthError(
        'AuthorizationHeaderMalformed',
        `The authorization header is malformed; the authorization component "${name}" is repeated.`,
      );
    }
    fields.set(name, item.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const sig = fields.get('Signature');
  if (credential === undefined || signedHeaders === undefined || sig === undefined) {
    const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((f) => !fields.has(f));
    throw new S3AuthError(
      'AuthorizationHeaderMalformed',
      `The authorization header is malformed; the authorization header requires ${missing.map((m) => `'${m}'`).join(', ')} parameter(s).`,
    );
  }
  return { credential, signedHeaders, signature: sig };
}

function authenticateHeader(req: AuthRequest, authorization: string, opts: AuthOptions, service: string): AuthResult {
  if (authorization.length > AUTHORIZATION_HEADER_BYTES_MAX) {
    throw new S3AuthError('AuthorizationHeaderMalformed', 'The authorization header is malformed; it is too long.');
  }
  const parsed = parseAuthorizationHeader(authorization);
  const cred = parseCredential(parsed.credential, 'header', opts.region, service);
  const signed = signedHeadersList(parsed.signedHeaders);

  // Request time: x-amz-date wins over Date (sig-v4-header-based-auth.html).
  let amzDate: string;
  let requestTimeMs: number;
  const xAmzDate = header(req.headers, 'x-amz-date');
  if (xAmzDate !== undefined) {
    const ms = parseAmzDate(xAmzDate.trim());
    if (ms === undefined) {
      throw new S3AuthError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    }
    amzDate = xAmzDate.trim();
    requestTimeMs = ms;
  } else {
    const date = header(req.headers, 'date');
    const ms = date === undefined ? Number.NaN : Date.parse(date);
    if (!Number.isFinite(ms)) {
      throw new S3AuthError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    }
    requestTimeMs = ms;
    amzDate = formatAmzDate(ms);
  }
  if (amzDate.slice(0, 8) !== cred.date) {
    throw new S3AuthError(
      'AuthorizationHeaderMalformed',
      `The authorization header is malformed; Invalid credential date "${cred.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`,
    );
  }
  if (Math.abs(opts.nowMs - requestTimeMs) > REQUEST_TIME_SKEW_MS_MAX) {
    throw new S3AuthError(
      'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.',
      {
        RequestTime: amzDate,
        ServerTime: new Date(opts.nowMs).toISOString(),
        MaxAllowedSkewMilliseconds: String(REQUEST_TIME_SKEW_MS_MAX),
      },
    );
  }

  // S3 requires x-amz-content-sha256 on every header-signed request and answers its absence with
  // InvalidRequest "Missing required header for this request: x-amz-content-sha256"
  // (observed S3 responses, e.g. aws/aws-cli#2138; the requirement: sig-v4-header-based-auth.html).
  const contentSha256 = header(req.headers, 'x-amz-content-sha256');
  if (contentSha256 === undefined) {
    throw new S3AuthError('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  const payload = payloadModeOf(contentSha256.trim(), req.headers);
  checkSignedHeaderSet(req.headers, signed, 'header');

  const secret = lookup(opts, cred.accessKeyId);
  const v = verifySignature(
    req,
    secret,
    cred,
    amzDate,
    parsed.signedHeaders,
    signed,
    contentSha256.trim(),
    false,
    parsed.signature,
  );
  return {
    accessKeyId: cred.accessKeyId,
    payload,
    signingKey: v.key,
    scope: credentialScope(cred.date, cred.region, cred.service),
    amzDate,
    requestTimeMs,
    seedSignature: v.signature,
    presigned: false,
    signedHeaders: signed,
    signatureVersion: 4,
  };
}

function authenticatePresigned(req: AuthRequest, opts: AuthOptions, service: string): AuthResult {
  const values = new Map<string, string>();
  for (const p of parseQuery(req.rawQuery)) {
    if (!(PRESIGN_PARAMS as readonly string[]).includes(p.key)) continue;
    if (values.has(p.key)) {
      throw new S3AuthError('AuthorizationQueryParametersError', `${p.key} must be given only once.`);
    }
    values.set(p.key, p.value);
  }
  const algorithm = values.get('X-Amz-Algorithm');
  if (algorithm === SIGV4A_ALGORITHM) {
    throw new S3AuthError('NotImplemented', 'SigV4a (AWS4-ECDSA-P256-SHA256) presigned URLs are not implemented.');
  }
  const credential = values.get('X-Amz-Credential');
  const amzDate = values.get('X-Amz-Date');
  const expires = values.get('X-Amz-Expires');
  const signedHeadersRaw = values.get('X-Amz-SignedHeaders');
  const clientSignature = values.get('X-Amz-Signature');
  if (
    algorithm === undefined ||
    credential === undefined ||
    amzDate === undefined ||
    expires === undefined ||
    signedHeadersRaw === undefined ||
    clientSignature === undefined
  ) {
    throw new S3AuthError(
      'AuthorizationQueryParametersError',
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  }
  if (algorithm !== SIGV4_ALGORITHM) {
    throw new S3AuthError('AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  }
  const cred = parseCredential(credential, 'query', opts.region, service);
  const requestTimeMs = parseAmzDate(amzDate);
  if (requestTimeMs === undefined) {
    throw new S3AuthError(
      'AuthorizationQueryParametersError',
      'X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"',
    );
  }
  if (amzDate.slice(0, 8) !== cred.date) {
    throw new S3AuthError(
      'AuthorizationQueryParametersError',
      `Invalid credential date "${cred.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`,
    );
  }
  if (!/^\d{1,7}$/.test(expires)) {
    throw new S3AuthError('AuthorizationQueryParametersError', 'X-Amz-Expires should be a number');
  }
  const expiresSeconds = Number(expires);
  if (expiresSeconds < 1) {
    throw new S3AuthError('AuthorizationQueryParametersError', 'X-Amz-Expires must be non-negative');
  }
  if (expiresSeconds > PRESIGNED_EXPIRES_SECONDS_MAX) {
    throw new S3AuthError(
      'AuthorizationQueryParametersError',
      `X-Amz-Expires must be less than a week (in seconds) that is ${PRESIGNED_EXPIRES_SECONDS_MAX}`,
    );
  }
  const signed = signedHeadersList(signedHeadersRaw);
  checkSignedHeaderSet(req.headers, signed, 'query');

  // Presigned URLs normally sign UNSIGNED-PAYLOAD (sigv4-query-string-auth.html). A signer that
  // had an x-amz-content-sha256 header signed its value instead, and may have hoisted it into the
  // query as SDKs hoist every x-amz-* header (smithy moveHeadersToQuery); both are covered by the
  // signature (header: by the check above; query: by the canonical query string).
  const contentSha256 =
    header(req.headers, 'x-amz-content-sha256')?.trim() ??
    parseQuery(req.rawQuery).find((p) => p.key.toLowerCase() === 'x-amz-content-sha256')?.value;
  const hashedPayload = contentSha256 ?? UNSIGNED_PAYLOAD;
  const payload = payloadModeOf(hashedPayload, req.headers);

  const secret = lookup(opts, cred.accessKeyId);
  if (opts.nowMs > requestTimeMs + expiresSeconds * 1000) {
    throw new S3AuthError('AccessDenied', 'Request has expired', {
      'X-Amz-Expires': expires,
      Expires: new Date(requestTimeMs + expiresSeconds * 1000).toISOString(),
      ServerTime: new Date(opts.nowMs).toISOString(),
    });
  }
  if (requestTimeMs - opts.nowMs > REQUEST_TIME_SKEW_MS_MAX) {
    throw new S3AuthError('AccessDenied', 'Request is not valid yet', {
      'X-Amz-Date': amzDate,
      ServerTime: new Date(opts.nowMs).toISOString(),
    });
  }
  const v = verifySignature(req, secret, cred, amzDate, signedHeadersRaw, signed, hashedPayload, true, clientSignature);
  return {
    accessKeyId: cred.accessKeyId,
    payload,
    signingKey: v.key,
    scope: credentialScope(cred.date, cred.region, cred.service),
    amzDate,
    requestTimeMs,
    seedSignature: v.signature,
    presigned: true,
    signedHeaders: signed,
    signatureVersion: 4,
  };
}

const SIGV2_QUERY_PARAMS = ['AWSAccessKeyId', 'Expires', 'Signature'] as const;
const INTEGER_SECONDS_RE = /^\d{1,12}$/;

/**
 * The payload mode of a SigV2 request: unsigned, unless the client also sent (and, being an
 * x-amz-* header, signed) x-amz-content-sha256 with a hex SHA-256 or UNSIGNED-PAYLOAD. The
 * aws-chunked modes chain SigV4 signatures and cannot follow a SigV2 head.
 */
function payloadModeV2(req: AuthRequest): PayloadMode {
  const contentSha256 = header(req.headers, 'x-amz-content-sha256')?.trim();
  if (contentSha256 === undefined) return { kind: 'unsigned' };
  const mode = payloadModeOf(contentSha256, req.headers);
  if (mode.kind === 'sha256' || mode.kind === 'unsigned') return mode;
  throw new S3AuthError('InvalidRequest', 'aws-chunked (STREAMING-*) uploads require AWS Signature Version 4.');
}

/**
 * Compares the client's SigV2 signature with each string it may have signed (see
 * requestStringsToSignV2), every one in constant time; throws SignatureDoesNotMatch with AWS's
 * diagnostic fields (StringToSign is the first, canonical form). Returns the signature.
 */
function verifySignatureV2(accessKeyId: string, secret: string, candidates: readonly string[], clientSignature: string): string {
  assert(candidates.length > 0, 'at least one string to sign');
  let matched: string | undefined;
  for (const sts of candidates) {
    const expected = signatureV2(secret, sts);
    if (constantTimeEqual(expected, clientSignature)) matched = expected;
  }
  if (matched === undefined) {
    const sts = candidates[0] as string;
    throw new S3AuthError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: accessKeyId, StringToSign: sts, SignatureProvided: clientSignature, StringToSignBytes: stringToSignBytes(sts) },
    );
  }
  return matched;
}

/** Parses a SigV2 request time: RFC 1123/2616 dates (`Tue, 27 Mar 2007 19:36:42 +0000`) or ISO 8601 basic. */
function parseHttpDate(value: string): number | undefined {
  const v = value.trim();
  const basic = parseAmzDate(v);
  if (basic !== undefined) return basic;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms : undefined;
}

/** SigV2 with the Authorization header (RESTAuthentication.html). */
function authenticateHeaderV2(req: AuthRequest, authorization: string, opts: AuthOptions): AuthResult {
  if (authorization.length > AUTHORIZATION_HEADER_BYTES_MAX) {
    throw new S3AuthError('InvalidArgument', 'The Authorization header is too long.', { ArgumentName: 'Authorization' });
  }
  const parsed = parseAuthorizationV2(authorization);
  if (parsed === undefined) {
    throw new S3AuthError('InvalidArgument', 'AWS authorization header is invalid.  Expected AwsAccessKeyId:signature', {
      ArgumentName: 'Authorization',
      ArgumentValue: authorization,
    });
  }
  // x-amz-date wins over Date (RESTAuthentication.html "Time stamp requirement").
  const xAmzDate = header(req.headers, 'x-amz-date');
  const dateValue = xAmzDate ?? header(req.headers, 'date');
  const requestTimeMs = dateValue === undefined ? undefined : parseHttpDate(dateValue);
  if (requestTimeMs === undefined) {
    throw new S3AuthError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  }
  if (Math.abs(opts.nowMs - requestTimeMs) > REQUEST_TIME_SKEW_MS_MAX) {
    throw new S3AuthError(
      'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.',
      {
        RequestTime: (dateValue as string).trim(),
        ServerTime: new Date(opts.nowMs).toISOString(),
        MaxAllowedSkewMilliseconds: String(REQUEST_TIME_SKEW_MS_MAX),
      },
    );
  }
  const payload = payloadModeV2(req);
  const secret = lookup(opts, parsed.accessKeyId);
  const candidates = requestStringsToSignV2(req.method, req.headers, req.rawPath, req.rawQuery, req.virtualHostBucket);
  const sig = verifySignatureV2(parsed.accessKeyId, secret, candidates, parsed.signature);
  return resultV2(req, parsed.accessKeyId, payload, requestTimeMs, sig, false);
}

/** SigV2 presigned query string: AWSAccessKeyId, Expires, Signature (RESTAuthentication.html). */
function authenticatePresignedV2(req: AuthRequest, opts: AuthOptions): AuthResult {
  const values = new Map<string, string>();
  for (const p of parseQuery(req.rawQuery)) {
    if (!(SIGV2_QUERY_PARAMS as readonly string[]).includes(p.key)) continue;
    if (values.has(p.key)) throw new S3AuthError('InvalidArgument', `${p.key} must be given only once.`, { ArgumentName: p.key });
    values.set(p.key, p.value);
  }
  const accessKeyId = values.get('AWSAccessKeyId');
  const expires = values.get('Expires');
  // A '+' of the base64 signature left unencoded decodes to a space (form encoding); base64
  // has no spaces, so it can only have been a '+'.
  const clientSignature = values.get('Signature')?.replaceAll(' ', '+');
  if (accessKeyId === undefined || expires === undefined || clientSignature === undefined || accessKeyId === '') {
    throw new S3AuthError('AccessDenied', 'Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters');
  }
  if (!INTEGER_SECONDS_RE.test(expires)) {
    throw new S3AuthError('AccessDenied', 'Invalid date (should be seconds since epoch)', { Expires: expires });
  }
  const expiresMs = Number(expires) * 1000;
  const payload = payloadModeV2(req);
  const secret = lookup(opts, accessKeyId);
  if (opts.nowMs > expiresMs) {
    throw new S3AuthError('AccessDenied', 'Request has expired', {
      Expires: new Date(expiresMs).toISOString(),
      ServerTime: new Date(opts.nowMs).toISOString(),
    });
  }
  const candidates = requestStringsToSignV2(req.method, req.headers, req.rawPath, req.rawQuery, req.virtualHostBucket, expires);
  const sig = verifySignatureV2(accessKeyId, secret, candidates, clientSignature);
  return resultV2(req, accessKeyId, payload, opts.nowMs, sig, true);
}

function resultV2(
  req: AuthRequest,
  accessKeyId: string,
  payload: PayloadMode,
  requestTimeMs: number,
  sig: string,
  presigned: boolean,
): AuthResult {
  return {
    accessKeyId,
    payload,
    signingKey: Buffer.alloc(0),
    scope: '',
    amzDate: formatAmzDate(requestTimeMs),
    requestTimeMs,
    seedSignature: sig,
    presigned,
    signedHeaders: Object.keys(req.headers)
      .filter((n) => n.startsWith('x-amz-') && req.headers[n] !== undefined)
      .sort(),
    signatureVersion: 2,
  };
}

function hasQueryParam(rawQuery: string, name: string): boolean {
  return parseQuery(rawQuery).some((p) => p.key === name);
}

/**
 * authenticate verifies a request's SigV4 signature (Authorization header or presigned query) and
 * returns who signed it and how the body must be verified; SigV2 (header or AWSAccessKeyId /
 * Expires / Signature query) likewise. Throws S3AuthError:
 * AccessDenied (no credentials, expired presigned URL, unsigned x-amz-* headers, bad date),
 * InvalidRequest (missing x-amz-content-sha256, SigV2 with aws-chunked), InvalidArgument (two auth mechanisms,
 * unknown x-amz-content-sha256, unsupported Authorization type), AuthorizationHeaderMalformed /
 * AuthorizationQueryParametersError (bad credential, region, service, date or parameters),
 * InvalidAccessKeyId, RequestTimeTooSkewed, SignatureDoesNotMatch, NotImplemented (SigV4a),
 * MissingContentLength (streaming without x-amz-decoded-content-length).
 */
export function authenticate(req: AuthRequest, opts: AuthOptions): AuthResult {
  const service = opts.service ?? 's3';
  const authorization = header(req.headers, 'authorization');
  const presignedV4 = hasQueryParam(req.rawQuery, 'X-Amz-Algorithm') || hasQueryParam(req.rawQuery, 'X-Amz-Signature');
  const presignedV2 = hasQueryParam(req.rawQuery, 'AWSAccessKeyId') || hasQueryParam(req.rawQuery, 'Signature');

  if (authorization !== undefined && (presignedV4 || presignedV2)) {
    throw new S3AuthError(
      'InvalidArgument',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
    );
  }
  if (authorization !== undefined) {
    const a = authorization.trim();
    if (a.startsWith(`${SIGV4_ALGORITHM} `) || a === SIGV4_ALGORITHM) return authenticateHeader(req, a, opts, service);
    if (a.startsWith('AWS ')) return authenticateHeaderV2(req, a, opts);
    if (a.startsWith(SIGV4A_ALGORITHM)) {
      throw new S3AuthError('NotImplemented', 'SigV4a (AWS4-ECDSA-P256-SHA256) is not implemented.');
    }
    throw new S3AuthError('InvalidArgument', 'Unsupported Authorization Type', {
      ArgumentName: 'Authorization',
      ArgumentValue: a.split(' ')[0] ?? '',
    });
  }
  if (presignedV4) return authenticatePresigned(req, opts, service);
  if (presignedV2) return authenticatePresignedV2(req, opts);
  throw new S3AuthError('AccessDenied', 'Access Denied');
}
