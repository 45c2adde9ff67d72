/**
 * PostObject: a browser form upload (multipart/form-data) authorized by a signed POST policy
 * instead of an Authorization header.
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-post-example.html
 *
 *   form fields (before `file`) ──► policy: base64 JSON {expiration, conditions}
 *                                   signature: hex HMAC(SigV4 signing key, base64 policy)
 *   file ──► content-length-range check while streaming ──► object layer (chunks) ──► PutObject
 *
 * The body streams through @fastify/busboy; only the small fields are held in memory. Fields
 * after `file` are ignored, as S3 does.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Tag } from '../../objects/types.ts';
import { parseAmzDate } from '../auth/authenticate.ts';
import { constantTimeEqualHex, SIGV4_ALGORITHM, signature, signingKey } from '../auth/sigv4.ts';
import type { S3Deps, S3Options } from '../context.ts';
import { S3Error } from '../errors.ts';
import { validateKey } from '../names.ts';
import { renderXml } from '../xml.ts';
import { OBJECT_TAGS_MAX, validateTags } from './tagging.ts';

/** Bounds of the form: bytes of one field value, number of fields, bytes of the policy. */
export const POST_FIELD_BYTES_MAX = 20 * 1024;
export const POST_FIELDS_MAX = 100;

/** Fields never covered by the policy's conditions. */
const EXEMPT_FIELDS = new Set(['x-amz-signature', 'file', 'policy']);
const FILENAME_VARIABLE = ['$', '{filename}'].join('');
const STORED_FIELDS = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];

type Condition = { op: 'eq' | 'starts-with'; field: string; value: string } | { op: 'range'; min: number; max: number };

function denied(message: string): S3Error {
  return new S3Error('AccessDenied', `Invalid according to Policy: ${message}`);
}

/** Decodes and checks the shape of a POST policy document. */
export function parsePolicy(base64: string): { expirationMs: number; conditions: Condition[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
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
      const [op, a, b] = c as unknown[];
      if (typeof op === 'string' && op.toLowerCase() === 'content-length-range') {
        if (typeof a !== 'number' || typeof b !== 'number' || a < 0 || b < a) throw bad('Invalid content-length-range.');
        out.push({ op: 'range', min: a, max: b });
        continue;
      }
      if ((op !== 'eq' && op !== 'starts-with') || typeof a !== 'string' || !a.startsWith('$') || typeof b !== 'string' || c.length !== 3) {
        throw bad(`Invalid condition ${JSON.stringify(c)}.`);
      }
      out.push({ op, field: a.slice(1).toLowerCase(), value: b });
    } else if (typeof c === 'object' && c !== null) {
      const entries = Object.entries(c as Record<string, unknown>);
      if (entries.length !== 1 || typeof entries[0]![1] !== 'string') throw bad(`Invalid condition ${JSON.stringify(c)}.`);
      out.push({ op: 'eq', field: entries[0]![0].toLowerCase(), value: entries[0]![1] as string });
    } else {
      throw bad('Invalid condition.');
    }
  }
  return { expirationMs: Date.parse(expiration), conditions: out };
}

/** Verifies the policy signature and conditions against the form fields; returns the size range. */
function authorize(fields: Map<string, string>, bucket: string, options: S3Options, deps: S3Deps): { min: number; max: number } {
  const policy = fields.get('policy');
  if (policy === undefined) throw new S3Error('AccessDenied', 'Anonymous POST uploads are not allowed; a signed policy is required.');
  const algorithm = fields.get('x-amz-algorithm');
  const credential = fields.get('x-amz-credential');
  const amzDate = fields.get('x-amz-date');
  const sig = fields.get('x-amz-signature');
  for (const [name, value] of [['x-amz-algorithm', algorithm], ['x-amz-credential', credential], ['x-amz-date', amzDate], ['x-amz-signature', sig]] as const) {
    if (value === undefined) throw new S3Error('InvalidArgument', `Bucket POST must contain a field named '${name}'.  If it is specified, please check the order of the fields.`, { ArgumentName: name });
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
  if (secret === undefined) throw new S3Error('InvalidAccessKeyId');
  const expected = signature(signingKey(secret, date, region, 's3'), policy);
  if (!constantTimeEqualHex(expected, sig!.toLowerCase())) throw new S3Error('SignatureDoesNotMatch');

  const { expirationMs, conditions } = parsePolicy(policy);
  if (expirationMs < deps.clock.nowMs()) throw denied('Policy expired.');
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
    const ok = c.op === 'eq' ? actual === c.value : actual.startsWith(c.value);
    if (!ok) throw denied(`Policy Condition failed: ["${c.op}", "$${c.field}", "${c.value}"]`);
  }
  const extra = [...fields.keys()].filter((f) => !EXEMPT_FIELDS.has(f) && !f.startsWith('x-ignore-') && !covered.has(f));
  if (extra.length > 0) throw denied(`Extra input fields: ${extra.join(', ')}`);
  return range;
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
      fields.set(name.toLowerCase(), value);
    });
    bb.on('file', (name: string, stream: Readable, filename: string) => {
      if (upload || name.toLowerCase() !== 'file') {
        stream.resume();
        return;
      }
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
    });
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
  if (rawKey === undefined) throw new S3Error('InvalidArgument', "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.", { ArgumentName: 'key' });
  const range = authorize(fields, bucket, options, deps);
  // S3 substitutes the literal "${filename}" in the key field with the uploaded file's name.
  const key = rawKey.replaceAll(FILENAME_VARIABLE, filename);
  if (key === '') throw new S3Error('InvalidArgument', 'User key must have a length greater than 0.', { ArgumentName: 'key' });
  validateKey(key);
  const headers: Record<string, string> = {};
  for (const name of STORED_FIELDS) {
    const v = fields.get(name);
    if (v !== undefined) headers[name] = v;
  }
  const userMeta: Record<string, string> = {};
  for (const [name, v] of fields) if (name.startsWith('x-amz-meta-')) userMeta[name.slice('x-amz-meta-'.length)] = v;
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
  const md5 = createHash('md5');
  const limited = (async function* () {
    let size = 0;
    for await (const piece of stream as AsyncIterable<Buffer>) {
      size += piece.length;
      if (size > range.max) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size', { MaxSizeAllowed: String(range.max) });
      md5.update(piece);
      yield piece;
    }
  })();
  const object = await deps.objects.putObject({
    bucket,
    key,
    owner: owner(fields.get('x-amz-credential')!.split('/')[0]!),
    body: limited,
    contentType: fields.get('content-type') ?? 'binary/octet-stream',
    headers,
    userMeta,
    ...(tags ? { tags } : {}),
    finalize: (sizeBytes) => {
      if (sizeBytes < range.min) throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size', { MinSizeAllowed: String(range.min) });
      return { etag: md5.digest('hex') };
    },
  });
  return { key, etag: object.etag, status, ...(redirect !== undefined ? { redirect } : {}) };
}

/** The `tagging` form field: `<Tagging><TagSet><Tag><Key>…` XML, as S3 takes it. */
function tagsFromXmlField(xml: string | undefined): Tag[] | undefined {
  if (xml === undefined) return undefined;
  const tags: Tag[] = [];
  for (const m of xml.matchAll(/<Tag>\s*<Key>([^<]*)<\/Key>\s*<Value>([^<]*)<\/Value>\s*<\/Tag>/g)) tags.push({ key: m[1]!, value: m[2]! });
  validateTags(tags, OBJECT_TAGS_MAX);
  return tags;
}

