/**
 * PostObject: a browser form upload (multipart/form-data) authorized by a signed POST policy
 * instead of an Authorization header.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/HTTPPOSTForms.html (Signature Version 2)
 *
 *   form fields (before `file`) ──► policy: base64 JSON {expiration, conditions}
 *                                   SigV4: x-amz-signature = hex HMAC-SHA256(signing key, base64 policy)
 *                                   SigV2: signature = base64 HMAC-SHA1(secret, base64 policy)
 *   ${filename} expanded in `key` ──► every condition checked, every field covered
 *   file ──► content-length-range + checksums while streaming ──► object layer (chunks) ──► PutObject
 *
 * Field names are case-insensitive (kept lower-cased); values are compared exactly. The body
 * streams through @fastify/busboy; only the small fields are held in memory. Fields after `file`
 * are ignored, as S3 does. Any refusal happens before the object becomes visible, so a refused
 * form changes nothing.
 */
import { Readable } from 'node:stream';
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Tag } from '../../objects/types.ts';
import { parseAmzDate } from '../auth/authenticate.ts';
import { RequestAccess } from '../authz/access.ts';
import { GRANT_HEADERS } from '../authz/acl.ts';
import { constantTimeEqual, signatureV2 } from '../auth/sigv2.ts';
import { constantTimeEqualHex, SIGV4_ALGORITHM, signature, signingKey } from '../auth/sigv4.ts';
import {
  CHECKSUM_ALGORITHMS,
  type ChecksumAlgorithm,
  type ChecksumRequest,
  checksumHeaderName,
  createBodyDigests,
  parseChecksumAlgorithm,
  parseChecksumRequest,
  resolveExpectedChecksums,
  verifyChecksums,
} from '../checksum.ts';
import type { S3Deps, S3Options } from '../context.ts';
import { S3Error } from '../errors.ts';
import { validateKey } from '../names.ts';
import { children, childText, parseXml, renderXml } from '../xml.ts';
import { OBJECT_TAGS_MAX, validateTags } from './tagging.ts';

/** Bounds of the form: bytes of one field value, number of fields, bytes of the policy. */
export const POST_FIELD_BYTES_MAX = 20 * 1024;
export const POST_FIELDS_MAX = 100;

/**
 * Fields the policy's conditions need not cover (besides x-ignore-*): the signature and the
 * policy themselves, and for SigV2 the access key id (sigv4-HTTPPOSTConstructPolicy.html,
 * HTTPPOSTForms.html "each form field … except …").
 */
const EXEMPT_FIELDS_V4 = new Set(['x-amz-signature', 'file', 'policy']);
const EXEMPT_FIELDS_V2 = new Set(['awsaccesskeyid', 'signature', 'file', 'policy']);
const FILENAME_VARIABLE = ['$', '{filename}'].join('');
const STORED_FIELDS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];

/** One policy condition; `field` is lower-case and without its '$'. */
export type Condition = { op: 'eq' | 'starts-with'; field: string; value: string } | { op: 'range'; min: number; max: number };

function denied(message: string): S3Error {
  return new S3Error('AccessDenied', `Invalid according to Policy: ${message}`);
}

/**
 * policyJsonText turns a policy's text into JSON: AWS lets policies escape a literal '$' as `\$`
 * and a vertical tab as `\v` (sigv4-HTTPPOSTConstructPolicy.html "Character escaping"), which
 * JSON does not know. Pairs are rewritten left to right, so `\\$` stays an escaped backslash
 * followed by '$'. Every other escape (\\, \n, \uXXXX, …) is JSON's own.
 */
export function policyJsonText(text: string): string {
  return text.replace(/\\([\s\S])/g, (pair, c: string) => (c === '$' ? '$' : c === 'v' ? '\\u000b' : pair));
}

/** A content-length-range bound: a non-negative integer, as a JSON number or a numeric string. */
function rangeBound(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

/**
 * Decodes and checks the shape of a POST policy document: `expiration` (ISO 8601) and
 * `conditions`, each `{"field": "value"}` (exact match), `["eq" | "starts-with", "$field",
 * "value"]` (operator and field name case-insensitive) or `["content-length-range", min, max]`.
 * Throws InvalidPolicyDocument.
 */
export function parsePolicy(base64: string): { expirationMs: number; conditions: Condition[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(policyJsonText(Buffer.from(base64, 'base64').toString('utf8')));
  } catch {
    throw new S3Error('InvalidPolicyDocument', 'Invalid Policy: Invalid JSON.');
  }
  const bad = (why: string) => new S3Error('InvalidPolicyDocument', `Invalid Policy: ${why}`);
  if (typeof doc !== 'object' || doc === null) throw bad('Invalid JSON.');
  const { expiration, conditions } = doc as { expiration?: unknown; conditions?: unknown };
  if (typeof expiration !== 'string' || Number.isNaN(Date.parse(expiration))) throw bad('Policy missing expiration.');
  if (!Array.isArray(conditions)) throw bad('Policy missing conditions.');
  const out: Condition[] = [];
  for (const c of conditions) {
    if (Array.isArray(c)) {
      const [rawOp, a, b] = c as unknown[];
      const op = typeof rawOp === 'string' ? rawOp.toLowerCase() : undefined;
      if (op === 'content-length-range') {
        const min = rangeBound(a);
        const max = rangeBound(b);
        if (c.length !== 3 || min === undefined || max === undefined || max < min) throw bad('Invalid content-length-range.');
        out.push({ op: 'range', min, max });
        continue;
      }
      if ((op !== 'eq' && op !== 'starts-with') || typeof a !== 'string' || !a.startsWith('$') || a.length < 2 || typeof b !== 'string' || c.length !== 3) {
        throw bad(`Invalid condition ${JSON.stringify(c)}.`);
      }
      out.push({ op, field: a.slice(1).toLowerCase(), value: b });
    } else if (typeof c === 'object' && c !== null) {
      const entries = Object.entries(c as Record<string, unknown>);
      if (entries.length !== 1 || typeof entries[0]![1] !== 'string') throw bad(`Invalid condition ${JSON.stringify(c)}.`);
      // {"$key": "x"} is tolerated like {"key": "x"}.
      out.push({ op: 'eq', field: entries[0]![0].replace(/^\$/, '').toLowerCase(), value: entries[0]![1] as string });
    } else {
      throw bad('Invalid condition.');
    }
  }
  return { expirationMs: Date.parse(expiration), conditions: out };
}

function missingField(name: string): S3Error {
  return new S3Error('InvalidArgument', `Bucket POST must contain a field named '${name}'.  If it is specified, please check the order of the fields.`, {
    ArgumentName: name,
  });
}

/** Who signed the form, and which fields are exempt from the policy's conditions. */
interface PolicySigner {
  accessKeyId: string;
  exempt: ReadonlySet<string>;
}

/**
 * Verifies the policy signature: SigV4 when the form has x-amz-algorithm, SigV2 when it has
 * AWSAccessKeyId (and no x-amz-algorithm). Throws InvalidArgument for missing or malformed
 * fields, InvalidAccessKeyId, SignatureDoesNotMatch. Signatures are compared in constant time.
 */
function verifyPolicySignature(fields: Map<string, string>, policy: string, options: S3Options, deps: S3Deps): PolicySigner {
  if (!fields.has('x-amz-algorithm') && fields.has('awsaccesskeyid')) {
    const accessKeyId = fields.get('awsaccesskeyid')!;
    const sig = fields.get('signature');
    if (sig === undefined) throw missingField('Signature');
    const secret = deps.lookupSecret(accessKeyId);
    if (secret === undefined) throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: accessKeyId });
    if (!constantTimeEqual(signatureV2(secret, policy), sig)) {
      throw new S3Error('SignatureDoesNotMatch', undefined, { AWSAccessKeyId: accessKeyId, StringToSign: policy, SignatureProvided: sig });
    }
    return { accessKeyId, exempt: EXEMPT_FIELDS_V2 };
  }
  const algorithm = fields.get('x-amz-algorithm');
  const credential = fields.get('x-amz-credential');
  const amzDate = fields.get('x-amz-date');
  const sig = fields.get('x-amz-signature');
  for (const [name, value] of [['x-amz-algorithm', algorithm], ['x-amz-credential', credential], ['x-amz-date', amzDate], ['x-amz-signature', sig]] as const) {
    if (value === undefined) throw missingField(name);
  }
  if (algorithm !== SIGV4_ALGORITHM) throw new S3Error('InvalidArgument', 'Only AWS4-HMAC-SHA256 is supported for POST policies.', { ArgumentName: 'x-amz-algorithm' });
  const parts = credential!.split('/');
  if (parts.length !== 5 || parts[3] !== 's3' || parts[4] !== 'aws4_request') {
    throw new S3Error('InvalidArgument', 'Invalid x-amz-credential.', { ArgumentName: 'x-amz-credential' });
  }
  const [accessKeyId, date, region] = parts as [string, string, string];
  if (region !== options.region) throw new S3Error('AuthorizationQueryParametersError', `Error parsing the X-Amz-Credential parameter; the region '${region}' is wrong; expecting '${options.region}'`);
  if (parseAmzDate(amzDate!) === undefined || !amzDate!.startsWith(date)) {
    throw new S3Error('InvalidArgument', 'Invalid x-amz-date.', { ArgumentName: 'x-amz-date' });
  }
  const secret = deps.lookupSecret(accessKeyId);
  if (secret === undefined) throw new S3Error('InvalidAccessKeyId', undefined, { AWSAccessKeyId: accessKeyId });
  const expected = signature(signingKey(secret, date, region, 's3'), policy);
  if (!constantTimeEqualHex(expected, sig!.toLowerCase())) {
    throw new S3Error('SignatureDoesNotMatch', undefined, { AWSAccessKeyId: accessKeyId, StringToSign: policy, SignatureProvided: sig! });
  }
  return { accessKeyId, exempt: EXEMPT_FIELDS_V4 };
}

/** Renders a failed condition as AWS does: `["eq", "$key", "value"]`. */
function conditionText(c: { op: string; field: string; value: string }): string {
  return JSON.stringify([c.op, `$${c.field}`, c.value]).replaceAll(',', ', ');
}

/**
 * checkConditions checks every condition against the form fields (lower-case names; the key with
 * ${filename} already expanded, as AWS expands variables before validating) plus the bucket of
 * the URL, and that every field but the exempt and x-ignore-* ones is covered by a condition.
 * Returns the content-length-range (0..∞ when none). Throws AccessDenied "Invalid according to
 * Policy: …".
 */
export function checkConditions(
  conditions: readonly Condition[],
  fields: ReadonlyMap<string, string>,
  bucket: string,
  exempt: ReadonlySet<string>,
): { min: number; max: number } {
  const values = new Map(fields);
  values.set('bucket', bucket);
  let range = { min: 0, max: Number.MAX_SAFE_INTEGER };
  const covered = new Set<string>(['bucket']);
  for (const c of conditions) {
    if (c.op === 'range') {
      range = { min: c.min, max: c.max };
      continue;
    }
    covered.add(c.field);
    const actual = values.get(c.field) ?? '';
    let ok: boolean;
    if (c.op === 'eq') ok = actual === c.value;
    // A Content-Type may list several types; each must start with the prefix (as MinIO checks).
    else if (c.field === 'content-type') ok = actual.split(',').every((t) => t.trim().startsWith(c.value));
    else ok = actual.startsWith(c.value);
    if (!ok) throw denied(`Policy Condition failed: ${conditionText(c)}`);
  }
  const extra = [...fields.keys()].filter((f) => !exempt.has(f) && !f.startsWith('x-ignore-') && !covered.has(f));
  if (extra.length > 0) throw denied(`Extra input fields: ${extra.join(', ')}`);
  return range;
}

/** Verifies the policy signature and conditions against the form fields; returns the signer and the size range. */
function authorize(fields: Map<string, string>, bucket: string, options: S3Options, deps: S3Deps): { accessKeyId: string; min: number; max: number } {
  const policy = fields.get('policy');
  if (policy === undefined) throw new S3Error('AccessDenied', 'Anonymous POST uploads are not allowed; a signed policy is required.');
  const signer = verifyPolicySignature(fields, policy, options, deps);
  const { expirationMs, conditions } = parsePolicy(policy);
  if (expirationMs < deps.clock.nowMs()) throw denied('Policy expired.');
  const range = checkConditions(conditions, fields, bucket, signer.exempt);
  return { accessKeyId: signer.accessKeyId, ...range };
}

/** POST /bucket with multipart/form-data: the browser upload. */
export async function postObject(req: FastifyRequest, reply: FastifyReply, bucket: string, options: S3Options, deps: S3Deps, owner: (accessKeyId: string) => string): Promise<void> {
  const fields = new Map<string, string>();
  const done = await new Promise<{ key: string; etag: string; status: string; redirect?: string }>((resolve, reject) => {
    let bb: BusboyInstance;
    try {
      bb = new Busboy({
        headers: req.headers as { 'content-type': string },
        limits: { fieldSize: POST_FIELD_BYTES_MAX, fields: POST_FIELDS_MAX, files: 1, fileSize: Number.MAX_SAFE_INTEGER },
      });
    } catch (err) {
      reject(new S3Error('MalformedPOSTRequest', (err as Error).message));
      return;
    }
    let upload: Promise<void> | undefined;
    const fail = (err: unknown) => {
      req.raw.unpipe(bb);
      reject(err);
    };
    bb.on('field', (name: string, value: string, _nameTruncated: boolean, valueTruncated: boolean) => {
      if (upload) return;
      if (valueTruncated) {
        fail(new S3Error('MaxMessageLengthExceeded', `Form field ${name} is too large.`));
        return;
      }
      // A `file` sent as a plain field (a <textarea name="file">, AWS's "Text area upload"
      // example) is the content itself, without a filename.
      if (name.toLowerCase() === 'file') {
        start(Readable.from([Buffer.from(value, 'utf8')]), '');
        return;
      }
      fields.set(name.toLowerCase(), value);
    });
    bb.on('file', (name: string, stream: Readable, filename: string) => {
      if (upload || name.toLowerCase() !== 'file') {
        stream.resume();
        return;
      }
      start(stream, filename);
    });
    function start(stream: Readable, filename: string): void {
      upload = storeFile(fields, stream, filename, bucket, options, deps, owner).then(
        (result) => {
          stream.resume();
          resolve(result);
        },
        (err: unknown) => {
          stream.resume();
          fail(err);
        },
      );
    }
    bb.on('error', (err: unknown) => fail(new S3Error('MalformedPOSTRequest', (err as Error).message)));
    bb.on('finish', () => {
      if (!upload) reject(new S3Error('InvalidArgument', 'POST requires exactly one file upload per request.', { ArgumentName: 'file', ArgumentValue: '0' }));
    });
    req.raw.pipe(bb);
  });
  const etag = `"${done.etag}"`;
  const location = `${req.protocol}://${req.headers.host ?? 'localhost'}/${bucket}/${done.key.split('/').map(encodeURIComponent).join('/')}`;
  reply.header('ETag', etag).header('Location', location);
  if (done.redirect !== undefined) {
    const url = new URL(done.redirect);
    url.searchParams.set('bucket', bucket);
    url.searchParams.set('key', done.key);
    url.searchParams.set('etag', etag);
    reply.code(303).header('Location', url.toString()).send();
    return;
  }
  if (done.status === '201') {
    reply.code(201).type('application/xml').send(renderXml('PostResponse', { Location: location, Bucket: bucket, Key: done.key, ETag: etag }, false));
    return;
  }
  reply.code(done.status === '200' ? 200 : 204).send();
}

async function storeFile(
  fields: Map<string, string>,
  stream: Readable,
  filename: string,
  bucket: string,
  options: S3Options,
  deps: S3Deps,
  owner: (accessKeyId: string) => string,
): Promise<{ key: string; etag: string; status: string; redirect?: string }> {
  const rawKey = fields.get('key');
  if (rawKey === undefined) throw missingField('key');
  // S3 substitutes the literal "${filename}" in the key field with the uploaded file's name, and
  // does so before validating the policy (HTTPPOSTForms.html: "All variables within the form
  // are expanded prior to validating the POST policy").
  const key = rawKey.replaceAll(FILENAME_VARIABLE, filename);
  fields.set('key', key);
  const auth = authorize(fields, bucket, options, deps);
  if (key === '') throw new S3Error('InvalidArgument', 'User key must have a length greater than 0.', { ArgumentName: 'key' });
  validateKey(key);
  rejectUnsupportedFields(fields);
  // The policy's signer writes the object: it needs WRITE on the bucket, as a PutObject would,
  // and the form's acl / x-amz-grant-* fields are its ACL.
  const signer = owner(auth.accessKeyId);
  const access = new RequestAccess({ kind: 'user', id: signer }, deps.isSuperuser?.(auth.accessKeyId) ?? false, deps.objects, deps.keyScope?.(auth.accessKeyId));
  await access.authorize({ kind: 'PutObject', bucket, key });
  const aclFields: Record<string, string | undefined> = { 'x-amz-acl': fields.get('acl') };
  for (const name of Object.keys(GRANT_HEADERS)) aclFields[name] = fields.get(name);
  const { owner: objectOwner, acl } = await access.newObject(bucket, key, aclFields);
  const headers: Record<string, string> = {};
  for (const name of STORED_FIELDS) {
    const v = fields.get(name);
    if (v !== undefined) headers[name] = v;
  }
  const userMeta: Record<string, string> = {};
  let metaBytes = 0;
  for (const [name, v] of fields) {
    if (!name.startsWith('x-amz-meta-')) continue;
    const short = name.slice('x-amz-meta-'.length);
    userMeta[short] = v;
    metaBytes += Buffer.byteLength(short) + Buffer.byteLength(v);
  }
  if (metaBytes > options.limits.userMetaBytesMax) throw new S3Error('MetadataTooLarge');
  const tags = tagsFromXmlField(fields.get('tagging'));
  const redirect = fields.get('success_action_redirect') ?? fields.get('redirect');
  if (redirect !== undefined) {
    try {
      new URL(redirect);
    } catch {
      throw new S3Error('InvalidArgument', 'success_action_redirect is not a valid URL.', { ArgumentName: 'success_action_redirect' });
    }
  }
  const status = fields.get('success_action_status') ?? '204';
  const checksums = formChecksums(fields);
  const digests = createBodyDigests(checksums.compute);
  const range = auth;
  const limited = (async function* () {
    let size = 0;
    for await (const piece of stream as AsyncIterable<Buffer>) {
      size += piece.length;
      if (size > range.max) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', { MaxSizeAllowed: String(range.max) });
      digests.update(piece);
      yield piece;
    }
  })();
  const object = await deps.objects.putObject({
    bucket,
    key,
    owner: objectOwner,
    ...(acl ? { acl } : {}),
    body: limited,
    contentType: fields.get('content-type') ?? 'binary/octet-stream',
    headers,
    userMeta,
    ...(tags ? { tags } : {}),
    finalize: (sizeBytes) => {
      if (sizeBytes < range.min) {
        throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size', {
          ProposedSize: String(sizeBytes),
          MinSizeAllowed: String(range.min),
        });
      }
      const computed = digests.result();
      verifyChecksums(resolveExpectedChecksums(checksums.declared), computed);
      const alg = checksums.compute[0];
      const value = alg === undefined ? undefined : computed.checksums.get(alg);
      return {
        etag: computed.md5.toString('hex'),
        ...(alg !== undefined && value !== undefined ? { checksum: { algorithm: alg, value, type: 'FULL_OBJECT' as const } } : {}),
      };
    },
  });
  return { key, etag: object.etag, status, ...(redirect !== undefined ? { redirect } : {}) };
}

/**
 * The integrity checks a form asks for: a Content-MD5 field, an `x-amz-checksum-<alg>` field
 * (verified against the file, BadDigest otherwise) and `x-amz-checksum-algorithm` (computed and
 * stored; it must agree with the checksum field when both are sent). Throws InvalidDigest /
 * InvalidRequest for malformed declarations, before any byte is stored.
 */
function formChecksums(fields: ReadonlyMap<string, string>): { declared: ChecksumRequest; compute: ChecksumAlgorithm[] } {
  const picked: Record<string, string> = {};
  for (const name of ['content-md5', ...CHECKSUM_ALGORITHMS.map(checksumHeaderName)]) {
    const v = fields.get(name);
    if (v !== undefined) picked[name] = v;
  }
  const declared = parseChecksumRequest(picked);
  let alg = declared.checksum?.algorithm;
  const named = fields.get('x-amz-checksum-algorithm');
  if (named !== undefined) {
    const parsed = parseChecksumAlgorithm(named);
    if (parsed === undefined) throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-algorithm is invalid.', { ArgumentName: 'x-amz-checksum-algorithm' });
    if (alg !== undefined && alg !== parsed) {
      throw new S3Error('InvalidRequest', 'Value for x-amz-checksum-algorithm does not match the x-amz-checksum- field sent.');
    }
    alg = parsed;
  }
  return { declared, compute: alg === undefined ? [] : [alg] };
}

/** Form fields asking for features this server does not have: 501, never accept-and-ignore (as PutObject). */
function rejectUnsupportedFields(fields: ReadonlyMap<string, string>): void {
  const notImplemented = (what: string) => new S3Error('NotImplemented', `${what} is not implemented by this server.`);
  for (const name of fields.keys()) {
    if (name.startsWith('x-amz-server-side-encryption')) throw notImplemented('server-side encryption');
    if (name.startsWith('x-amz-object-lock-')) throw notImplemented('object lock');
  }
  if (fields.has('x-amz-website-redirect-location')) throw notImplemented('x-amz-website-redirect-location');
  const storageClass = fields.get('x-amz-storage-class');
  if (storageClass !== undefined && storageClass !== 'STANDARD') {
    throw new S3Error('InvalidStorageClass', 'The storage class you specified is not valid', { StorageClassRequested: storageClass });
  }
}

/**
 * The `tagging` form field: `<Tagging><TagSet><Tag><Key>…</Key><Value>…</Value></Tag>…` XML, as
 * S3 takes it (entities decoded). MalformedXML when it is not that document, InvalidTag when a tag
 * breaks AWS's rules.
 */
export function tagsFromXmlField(xml: string | undefined): Tag[] | undefined {
  if (xml === undefined) return undefined;
  const doc = parseXml(xml, 'Tagging');
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
  validateTags(tags, OBJECT_TAGS_MAX);
  return tags;
}
