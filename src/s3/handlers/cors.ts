/**
 * CORS: Put/Get/DeleteBucketCors, preflight OPTIONS (unauthenticated, as browsers send it), and the
 * Access-Control-* headers on actual requests whose Origin a bucket rule allows.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html
 * https://docs.aws.amazon.com/AmazonS3/latest/API/RESTOPTIONSobject.html
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { META_ERR_NO_SUCH_BUCKET } from '../../objects/errors.ts';
import type { CorsRule } from '../../objects/types.ts';
import { errorCode } from '../../util/errors.ts';
import { readXmlBody } from '../body.ts';
import { header, type RequestContext, type S3Deps } from '../context.ts';
import { S3Error } from '../errors.ts';
import { children, childText, renderXml, type XmlNode } from '../xml.ts';

/** Most rules in one CORS configuration (AWS's limit). */
export const CORS_RULES_MAX = 100;
const CORS_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'];

function texts(node: Record<string, unknown>, name: string): string[] {
  return children(node, name).map((v) => {
    if (typeof v !== 'string') throw new S3Error('MalformedXML');
    return v.trim();
  });
}

/** PUT /bucket?cors */
export async function putBucketCors(ctx: RequestContext, bucket: string): Promise<void> {
  const body = await readXmlBody(ctx, { optional: false });
  const doc = body!.parse('CORSConfiguration');
  const rules: CorsRule[] = [];
  for (const entry of children(doc, 'CORSRule')) {
    if (typeof entry !== 'object' || entry === null) throw new S3Error('MalformedXML');
    const node = entry as Record<string, unknown>;
    const allowedOrigins = texts(node, 'AllowedOrigin');
    const allowedMethods = texts(node, 'AllowedMethod');
    if (allowedOrigins.length === 0 || allowedMethods.length === 0) throw new S3Error('MalformedXML');
    for (const m of allowedMethods) {
      if (!CORS_METHODS.includes(m)) throw new S3Error('InvalidRequest', `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`);
    }
    for (const o of allowedOrigins) {
      if (o.split('*').length > 2) throw new S3Error('InvalidRequest', `AllowedOrigin "${o}" can not have more than one wildcard.`);
    }
    const allowedHeaders = texts(node, 'AllowedHeader');
    for (const h of allowedHeaders) {
      if (h.split('*').length > 2) throw new S3Error('InvalidRequest', `AllowedHeader "${h}" can not have more than one wildcard.`);
    }
    const id = childText(node, 'ID');
    const maxAge = childText(node, 'MaxAgeSeconds');
    if (maxAge !== undefined && !/^\d{1,9}$/.test(maxAge.trim())) throw new S3Error('MalformedXML');
    rules.push({
      ...(id !== undefined ? { id } : {}),
      allowedOrigins,
      allowedMethods,
      allowedHeaders,
      exposeHeaders: texts(node, 'ExposeHeader'),
      ...(maxAge !== undefined ? { maxAgeSeconds: Number(maxAge.trim()) } : {}),
    });
  }
  if (rules.length === 0 || rules.length > CORS_RULES_MAX) throw new S3Error('MalformedXML');
  await ctx.deps.objects.putBucketCors(bucket, rules);
  ctx.reply.send();
}

/** GET /bucket?cors — NoSuchCORSConfiguration when none is set. */
export async function getBucketCors(ctx: RequestContext, bucket: string): Promise<void> {
  const record = await ctx.deps.objects.getBucket(bucket);
  if (!record.cors) throw new S3Error('NoSuchCORSConfiguration');
  const rules: XmlNode[] = record.cors.map((r) => ({
    ...(r.id !== undefined ? { ID: r.id } : {}),
    AllowedHeader: r.allowedHeaders,
    AllowedMethod: r.allowedMethods,
    AllowedOrigin: r.allowedOrigins,
    ExposeHeader: r.exposeHeaders,
    ...(r.maxAgeSeconds !== undefined ? { MaxAgeSeconds: r.maxAgeSeconds } : {}),
  }));
  ctx.reply.type('application/xml').send(renderXml('CORSConfiguration', { CORSRule: rules }));
}

/** DELETE /bucket?cors */
export async function deleteBucketCors(ctx: RequestContext, bucket: string): Promise<void> {
  await ctx.deps.objects.putBucketCors(bucket, null);
  ctx.reply.code(204).send();
}

/** Matches `value` against a pattern with at most one `*` (any run of characters). */
function wildcardMatch(pattern: string, value: string, caseInsensitive: boolean): boolean {
  const p = caseInsensitive ? pattern.toLowerCase() : pattern;
  const v = caseInsensitive ? value.toLowerCase() : value;
  const star = p.indexOf('*');
  if (star < 0) return p === v;
  const head = p.slice(0, star);
  const tail = p.slice(star + 1);
  return v.length >= head.length + tail.length && v.startsWith(head) && v.endsWith(tail);
}

/** The first rule allowing `origin`, `method` and every requested header, as S3 evaluates them. */
export function matchCorsRule(rules: readonly CorsRule[], origin: string, method: string, requestHeaders: readonly string[]): CorsRule | undefined {
  return rules.find(
    (r) =>
      r.allowedOrigins.some((o) => wildcardMatch(o, origin, false)) &&
      r.allowedMethods.includes(method) &&
      requestHeaders.every((h) => r.allowedHeaders.some((a) => wildcardMatch(a, h, true))),
  );
}

function setAllowHeaders(reply: FastifyReply, rule: CorsRule, origin: string): void {
  const any = rule.allowedOrigins.includes('*');
  reply.header('Access-Control-Allow-Origin', any ? '*' : origin);
  if (!any) reply.header('Access-Control-Allow-Credentials', 'true');
  reply.header('Access-Control-Allow-Methods', rule.allowedMethods.join(', '));
  if (rule.exposeHeaders.length > 0) reply.header('Access-Control-Expose-Headers', rule.exposeHeaders.join(', '));
  if (rule.maxAgeSeconds !== undefined) reply.header('Access-Control-Max-Age', String(rule.maxAgeSeconds));
  reply.header('Vary', 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method');
}

/** OPTIONS /bucket[/key]: answers a browser's preflight from the bucket's CORS rules. */
export async function preflight(req: FastifyRequest, reply: FastifyReply, bucket: string, deps: S3Deps): Promise<void> {
  const origin = header(req, 'origin');
  if (origin === undefined) throw new S3Error('BadRequest', 'Insufficient information. Origin request header needed.');
  const method = header(req, 'access-control-request-method');
  if (method === undefined) throw new S3Error('BadRequest', 'Invalid Access-Control-Request-Method: null');
  if (!CORS_METHODS.includes(method)) throw new S3Error('BadRequest', `Invalid Access-Control-Request-Method: ${method}`);
  const requested = (header(req, 'access-control-request-headers') ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '');
  const record = await deps.objects.getBucket(bucket);
  if (!record.cors) throw new S3Error('AccessForbidden', 'CORSResponse: CORS is not enabled for this bucket.');
  const rule = matchCorsRule(record.cors, origin, method, requested);
  if (!rule) throw new S3Error('AccessForbidden');
  setAllowHeaders(reply, rule, origin);
  if (requested.length > 0) reply.header('Access-Control-Allow-Headers', requested.join(', '));
  reply.send();
}

/**
 * Adds Access-Control-* headers to an actual (non-preflight) request carrying Origin, when a rule
 * of the bucket allows its origin and method. A missing bucket adds nothing (the request itself
 * will answer NoSuchBucket).
 */
export async function addCorsHeaders(req: FastifyRequest, reply: FastifyReply, bucket: string, deps: S3Deps): Promise<void> {
  const origin = header(req, 'origin');
  if (origin === undefined) return;
  let rules: CorsRule[] | undefined;
  try {
    rules = (await deps.objects.getBucket(bucket)).cors;
  } catch (err) {
    if (errorCode(err) === META_ERR_NO_SUCH_BUCKET) return;
    throw err;
  }
  if (!rules) return;
  const rule = matchCorsRule(rules, origin, req.method, []);
  if (rule) setAllowHeaders(reply, rule, origin);
}
