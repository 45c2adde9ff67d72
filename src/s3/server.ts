/**
 * The S3 HTTP front end on fastify: one catch-all route that authenticates, parses the
 * endpoint and dispatches to a handler; one error path that renders every failure as S3 XML with
 * the request id. Bodies are never parsed by fastify: handlers stream `req.raw` themselves.
 *
 * Anonymous GETs of /health/live, /health/ready and /metrics are answered before authentication.
 * They cannot shadow S3 data: the same anonymous request to a bucket would be AccessDenied.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { unreachable } from '../util/assert.ts';
import { type AuthResult, authenticate } from './auth/authenticate.ts';
import type { RequestContext, S3Deps, S3Options } from './context.ts';
import { isRequestId, REQUEST_ID_HEADER, withRequestId } from '../util/request-id.ts';
import { parseEndpoint, type S3Endpoint } from './endpoint.ts';
import { S3_ERRORS, S3Error, toS3Error } from './errors.ts';
import { anonymousAuth, isAnonymousRequest, RequestAccess } from './authz/access.ts';
import * as acl from './handlers/acl.ts';
import * as policy from './handlers/policy.ts';
import * as attributes from './handlers/attributes.ts';
import * as buckets from './handlers/bucket.ts';
import * as cors from './handlers/cors.ts';
import * as list from './handlers/list.ts';
import * as multipart from './handlers/multipart.ts';
import * as objects from './handlers/object.ts';
import * as post from './handlers/post-object.ts';
import * as tagging from './handlers/tagging.ts';
import { bucketFromHost, parseTarget, type RequestTarget } from './names.ts';
import { serveInternalChunk, serveJoin } from './internal.ts';
import { renderXml } from './xml.ts';
import { redactUrl } from './log-url.ts';

/** Node's limit on the request head; beyond it the client gets RequestHeaderSectionTooLarge. */
export const REQUEST_HEADER_BYTES_MAX = 16 * 1024;
/** A request whose headers or body stall longer than this is cut off. */
export const REQUEST_TIMEOUT_MS = 5 * 60 * 1000;
/** Idle keep-alive connections are closed after this. */
export const KEEP_ALIVE_TIMEOUT_MS = 65 * 1000;

/** After an early error, a request body up to this size is drained so the answer reaches the client. */
export const DRAIN_BODY_BYTES_MAX = 8 * 1024 * 1024;
/**
 * A larger rest is not read to its end: after the answer the connection is half-closed and what
 * still arrives is discarded for at most this long and this many bytes before the socket is
 * destroyed (a lingering close, as Apache and nginx do), so the kernel does not reset the
 * connection while the answer is still unread by a client that is still sending.
 */
export const LINGER_MS = 5000;
export const LINGER_BYTES_MAX = 64 * 1024 * 1024;

/** First path segment of the operator API; not a legal bucket name. */
const ADMIN_BUCKET = '_ts3gw';

const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH'] as const;

/** Builds the fastify app serving S3. The caller listens and closes it. */
export function buildS3App(options: S3Options, deps: S3Deps, logger: FastifyBaseLogger): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 8192 },
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // fastify passes these to http(s).createServer; its types pick the server type from them.
    ...((options.tls ? { https: { ...options.tls, maxHeaderSize: REQUEST_HEADER_BYTES_MAX } } : { http: { maxHeaderSize: REQUEST_HEADER_BYTES_MAX } }) as { http: { maxHeaderSize: number } }),
    return503OnClosing: true,
    // A peer's call on behalf of one of its requests keeps that request's id (logged under it).
    genReqId: (req) => {
      const propagated = req.headers[REQUEST_ID_HEADER];
      return req.url?.startsWith('/_ts3gw/') && isRequestId(propagated) ? propagated : newRequestId();
    },
    frameworkErrors: (err: Error, req: FastifyRequest, reply: FastifyReply) => sendError(reply, req, new S3Error('InvalidURI', err.message)),
    clientErrorHandler: (err: Error, socket: Socket) => onClientError(err, socket),
  });

  // Any Content-Type is an object's metadata, not a body format: S3 stores "text" or "" as given.
  // Fastify would refuse media types it cannot parse (415) before any handler runs, so the header
  // is set aside here and put back when the handler starts (SigV4 may have signed it).
  app.addHook('onRequest', async (req) => {
    const contentType = req.headers['content-type'];
    if (contentType === undefined) return;
    stashedContentType.set(req.raw, contentType);
    delete req.headers['content-type'];
  });
  // Expect: 100-continue. With a 'checkContinue' listener node no longer answers 100 by itself;
  // the request is served as any other and the 100 goes out only once the request has passed
  // authentication (continueBody), so a client with a bad signature gets its 403 without
  // having sent the body (RFC 9110 §10.1.1).
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    expectingContinue.add(res);
    app.server.emit('request', req, res);
  });
  // Bodies stay unread until a handler streams them.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  app.route({
    method: [...METHODS],
    url: '/*',
    handler: async (req, reply) => {
      restoreContentType(req);
      reply.header('x-amz-request-id', req.id).header('x-amz-id-2', req.id).header('Server', 'ts3gw');
      try {
        // Calls to peers made while serving it carry its id (util/request-id.ts).
        await withRequestId(req.id, () => serve(req, reply, options, deps));
      } catch (err) {
        sendError(reply, req, err);
      }
      return reply;
    },
  });
  // Requests still being answered, per connection: a parse error on the bytes after one of them
  // must not be answered in its place (the client would take that answer for the request's).
  app.addHook('onRequest', async (req, reply) => {
    inFlight.set(req.raw.socket, { req: req.raw, res: reply.raw });
  });
  // Methods outside the route table (PROPFIND, TRACE, …) get S3's answer, not fastify's JSON 404.
  app.setNotFoundHandler((req, reply) => {
    reply.header('x-amz-request-id', req.id).header('x-amz-id-2', req.id);
    sendError(reply, req, new S3Error('MethodNotAllowed', undefined, {}, { Allow: METHODS.join(', ') }));
  });
  app.addHook('onResponse', async (req, reply) => {
    if (inFlight.get(req.raw.socket)?.res === reply.raw) inFlight.delete(req.raw.socket);
    req.log.info({ method: req.method, url: redactUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    deps.observeRequest?.(req.method, reply.statusCode, reply.elapsedTime / 1000);
  });
  return app;
}

async function serve(req: FastifyRequest, reply: FastifyReply, options: S3Options, deps: S3Deps): Promise<void> {
  const target = parseTarget(req.raw.url ?? '/', req.headers.host, options.domain);
  // NUL can be neither stored nor listed (XML 1.0); refuse it for every operation, reads included.
  if (target.key?.includes('\0')) throw new S3Error('InvalidArgument', 'Object key must not contain the NUL character.', { ArgumentName: 'key' });
  // Presigned URLs carry their signature in the query: X-Amz-Signature (SigV4) or Signature (SigV2).
  const anonymous = req.headers.authorization === undefined && !target.query.has('X-Amz-Signature') && !target.query.has('Signature');
  if (anonymous && (req.method === 'GET' || req.method === 'HEAD') && (await serveOperational(target.rawPath, reply, deps))) return;

  // Node-to-node and operator traffic: '_ts3gw' is not a legal bucket name, so these paths can
  // never shadow S3 data, and they skip bucket lookups (CORS) entirely.
  if (target.bucket === ADMIN_BUCKET) continueBody(reply);
  if (target.bucket === ADMIN_BUCKET && target.key?.startsWith('chunks/') && deps.internalChunks) {
    return serveInternalChunk(req, reply, target.key.slice('chunks/'.length), deps.internalChunks);
  }
  if (target.bucket === ADMIN_BUCKET && target.key === 'join' && deps.join) return serveJoin(req, reply, deps.join);
  if (target.bucket === ADMIN_BUCKET && deps.admin) return serveAdmin(req, reply, target, options, deps, deps.admin);

  // The two requests S3 takes without an Authorization header: a CORS preflight (browsers never
  // sign it) and a browser form upload (its signed policy is inside the body).
  if (req.method === 'OPTIONS' && target.bucket !== undefined) return cors.preflight(req, reply, target.bucket, deps);
  if (target.bucket !== undefined) await cors.addCorsHeaders(req, reply, target.bucket, deps);
  const endpoint = parseEndpoint(req.method, target.bucket, target.key, target.query, req.headers);
  if (endpoint.kind === 'PostObject' && anonymous) {
    continueBody(reply);
    return post.postObject(req, reply, endpoint.bucket, options, deps, deps.ownerOf);
  }

  // An unsigned request is anonymous: it may do only what AllUsers grants (authz/access.ts).
  const unsigned = isAnonymousRequest(req.headers, target.query);
  const auth = unsigned ? anonymousAuth(req.headers, deps.clock.nowMs()) : authenticateRequest(req, target, options, deps);
  const owner = unsigned ? '' : deps.ownerOf(auth.accessKeyId);
  const requester = unsigned ? ({ kind: 'anonymous' } as const) : ({ kind: 'user', id: owner } as const);
  const access = new RequestAccess(requester, !unsigned && (deps.isSuperuser?.(auth.accessKeyId) ?? false), deps.objects, unsigned ? undefined : deps.keyScope?.(auth.accessKeyId));
  // Authorized before the body is asked for: a refused upload sends no byte of it.
  await access.authorize(endpoint);
  continueBody(reply);
  const ctx: RequestContext = { req, reply, target, auth, owner, access, requestId: req.id, options, deps };
  await dispatch(ctx, endpoint);
}

async function dispatch(ctx: RequestContext, e: S3Endpoint): Promise<void> {
  switch (e.kind) {
    case 'ListBuckets':
      return buckets.listBuckets(ctx);
    case 'CreateBucket':
      return buckets.createBucket(ctx, e.bucket);
    case 'HeadBucket':
      return buckets.headBucket(ctx, e.bucket);
    case 'DeleteBucket':
      return buckets.deleteBucket(ctx, e.bucket);
    case 'GetBucketLocation':
      return buckets.getBucketLocation(ctx, e.bucket);
    case 'ListObjects':
      return list.listObjectsV1(ctx, e.bucket);
    case 'ListObjectsV2':
      return list.listObjectsV2(ctx, e.bucket);
    case 'DeleteObjects':
      return objects.deleteObjects(ctx, e.bucket);
    case 'PutObject':
      return objects.putObject(ctx, e.bucket, e.key);
    case 'CopyObject':
      return objects.copyObject(ctx, e.bucket, e.key);
    case 'GetObject':
      return objects.getObject(ctx, e.bucket, e.key, false);
    case 'HeadObject':
      return objects.getObject(ctx, e.bucket, e.key, true);
    case 'DeleteObject':
      return objects.deleteObject(ctx, e.bucket, e.key);
    case 'CreateMultipartUpload':
      return multipart.createMultipartUpload(ctx, e.bucket, e.key);
    case 'UploadPart':
      return multipart.uploadPart(ctx, e.bucket, e.key, e.uploadId);
    case 'UploadPartCopy':
      return multipart.uploadPartCopy(ctx, e.bucket, e.key, e.uploadId);
    case 'CompleteMultipartUpload':
      return multipart.completeMultipartUpload(ctx, e.bucket, e.key, e.uploadId);
    case 'AbortMultipartUpload':
      return multipart.abortMultipartUpload(ctx, e.bucket, e.key, e.uploadId);
    case 'ListParts':
      return multipart.listParts(ctx, e.bucket, e.key, e.uploadId);
    case 'ListMultipartUploads':
      return multipart.listMultipartUploads(ctx, e.bucket);
    case 'GetObjectTagging':
      return tagging.getObjectTagging(ctx, e.bucket, e.key);
    case 'PutObjectTagging':
      return tagging.putObjectTagging(ctx, e.bucket, e.key);
    case 'DeleteObjectTagging':
      return tagging.deleteObjectTagging(ctx, e.bucket, e.key);
    case 'GetBucketTagging':
      return tagging.getBucketTagging(ctx, e.bucket);
    case 'PutBucketTagging':
      return tagging.putBucketTagging(ctx, e.bucket);
    case 'DeleteBucketTagging':
      return tagging.deleteBucketTagging(ctx, e.bucket);
    case 'GetObjectAttributes':
      return attributes.getObjectAttributes(ctx, e.bucket, e.key);
    case 'GetBucketCors':
      return cors.getBucketCors(ctx, e.bucket);
    case 'PutBucketCors':
      return cors.putBucketCors(ctx, e.bucket);
    case 'DeleteBucketCors':
      return cors.deleteBucketCors(ctx, e.bucket);
    case 'GetBucketAcl':
      return acl.getBucketAcl(ctx, e.bucket);
    case 'PutBucketAcl':
      return acl.putBucketAcl(ctx, e.bucket);
    case 'GetObjectAcl':
      return acl.getObjectAcl(ctx, e.bucket, e.key);
    case 'PutObjectAcl':
      return acl.putObjectAcl(ctx, e.bucket, e.key);
    case 'GetBucketOwnershipControls':
      return acl.getBucketOwnershipControls(ctx, e.bucket);
    case 'PutBucketOwnershipControls':
      return acl.putBucketOwnershipControls(ctx, e.bucket);
    case 'DeleteBucketOwnershipControls':
      return acl.deleteBucketOwnershipControls(ctx, e.bucket);
    case 'GetBucketPolicy':
      return policy.getBucketPolicy(ctx, e.bucket);
    case 'PutBucketPolicy':
      return policy.putBucketPolicy(ctx, e.bucket);
    case 'DeleteBucketPolicy':
      return policy.deleteBucketPolicy(ctx, e.bucket);
    case 'PostObject':
      // A form upload that also carries an Authorization header: S3 rejects the mix.
      throw new S3Error('InvalidRequest', 'POST uploads are authorized by their policy; send no Authorization header.');
    case 'NotImplemented':
      throw new S3Error('NotImplemented', `${e.operation} is not implemented by this server.`);
    default:
      return unreachable(e);
  }
}

/** SigV4 or SigV2 verification of a request's head against this server's keys, region, domain and clock. */
function authenticateRequest(req: FastifyRequest, target: RequestTarget, options: S3Options, deps: S3Deps): AuthResult {
  const virtualHostBucket = bucketFromHost(req.headers.host, options.domain);
  return authenticate(
    {
      method: req.method,
      rawPath: target.rawPath,
      rawQuery: target.rawQuery,
      headers: req.headers,
      ...(virtualHostBucket !== undefined ? { virtualHostBucket } : {}),
    },
    { lookupSecret: deps.lookupSecret, region: options.region, nowMs: deps.clock.nowMs() },
  );
}

/** The operator API: SigV4-authenticated like S3, answered in JSON by the node. */
async function serveAdmin(
  req: FastifyRequest,
  reply: FastifyReply,
  target: RequestTarget,
  options: S3Options,
  deps: S3Deps,
  admin: NonNullable<S3Deps['admin']>,
): Promise<void> {
  const auth = authenticateRequest(req, target, options, deps);
  const path = `/${target.key ?? ''}`.replace(/^\/admin/, '');
  const res = await admin({ method: req.method, path, query: target.query, accessKeyId: auth.accessKeyId });
  reply.code(res.status).type('application/json').send(JSON.stringify(res.body));
}

/** Health and metrics; true when the path was one of them. */
async function serveOperational(rawPath: string, reply: FastifyReply, deps: S3Deps): Promise<boolean> {
  switch (rawPath) {
    case '/health/live':
      reply.type('application/json').send({ status: 'ok' });
      return true;
    case '/health/ready': {
      const ready = deps.isReady();
      reply.code(ready ? 200 : 503).type('application/json').send({ status: ready ? 'ready' : 'not-ready' });
      return true;
    }
    case '/metrics': {
      if (!deps.metricsText) return false;
      const { contentType, body } = await deps.metricsText();
      reply.type(contentType).send(body);
      return true;
    }
    default:
      return false;
  }
}

/** Renders any failure as S3 XML. Unexpected errors are logged and become InternalError. */
function sendError(reply: FastifyReply, req: FastifyRequest, err: unknown): void {
  const s3err = toS3Error(err);
  if (s3err.code === 'InternalError') req.log.error({ err }, 'internal error');
  else req.log.debug({ code: s3err.code, message: s3err.message }, 's3 error');
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.destroy();
    return;
  }
  const { bucket, key } = safeTarget(req);
  const resource = req.url.split('?')[0] ?? '/';
  reply.code(s3err.status).headers(s3err.headers).header('x-amz-request-id', req.id);
  if (s3err.status === 304) {
    reply.send();
    return;
  }
  // The body has not been read (or not all of it). A small rest is read and discarded so the
  // client, still sending, gets to read this answer (closing on unread data makes the kernel
  // reset the connection and the answer is lost); a large rest is not worth reading: close.
  // A client that asked for 100 Continue and did not get it may not send the body at all: the
  // connection cannot carry another request, since what comes next may still be that body.
  if (!req.raw.complete) {
    const declared = Number(req.headers['content-length']);
    const bodyWithheld = expectingContinue.has(reply.raw);
    if (!bodyWithheld && Number.isSafeInteger(declared) && declared <= DRAIN_BODY_BYTES_MAX) {
      req.raw.unpipe();
      req.raw.resume();
    } else {
      reply.header('Connection', 'close');
      lingerAfterAnswer(req.raw);
    }
  }
  reply.type('application/xml').send(
    renderXml(
      'Error',
      {
        Code: s3err.code,
        Message: s3err.message,
        ...(bucket ? { BucketName: bucket } : {}),
        ...(key ? { Key: key } : {}),
        Resource: resource,
        ...s3err.extra,
        RequestId: req.id,
        HostId: req.id,
      },
      false,
    ),
  );
}

function safeTarget(req: FastifyRequest): { bucket?: string; key?: string } {
  try {
    const t = parseTarget(req.raw.url ?? '/', req.headers.host, undefined);
    return { ...(t.bucket ? { bucket: t.bucket } : {}), ...(t.key ? { key: t.key } : {}) };
  } catch {
    return {};
  }
}

/** Content-Type headers set aside while fastify routes the request (see buildS3App). */
const stashedContentType = new WeakMap<IncomingMessage, string>();

function restoreContentType(req: FastifyRequest): void {
  const contentType = stashedContentType.get(req.raw);
  if (contentType !== undefined) req.headers['content-type'] = contentType;
}

/** Responses to requests with Expect: 100-continue that have not been told to continue yet. */
const expectingContinue = new WeakSet<ServerResponse>();

/** Sends 100 Continue if the client is waiting for it: the request may now send its body. */
function continueBody(reply: FastifyReply): void {
  if (!expectingContinue.delete(reply.raw)) return;
  reply.raw.writeContinue();
}

/**
 * Closes the connection of a request answered before its body was read, without losing the
 * answer: node ends a `Connection: close` response with socket.destroySoon(), which destroys the
 * socket as soon as the answer is flushed, and destroying a socket with unread request bytes
 * makes the kernel send a reset that can discard the answer before the client read it. Here the
 * socket is half-closed instead (the client reads the answer, then end of stream), the rest of
 * the body is read and discarded, and the socket is destroyed once the client closes its side,
 * LINGER_MS pass or LINGER_BYTES_MAX more bytes came.
 */
function lingerAfterAnswer(req: IncomingMessage): void {
  const socket = req.socket;
  req.unpipe();
  req.resume();
  let discarded = 0;
  const onData = (data: Buffer) => {
    discarded += data.length;
    if (discarded > LINGER_BYTES_MAX) socket.destroy();
  };
  socket.destroySoon = () => {
    socket.on('data', onData);
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('end', () => socket.destroy());
    socket.once('close', () => clearTimeout(timer));
  };
}

/** Responses in progress by connection (see the onRequest hook). */
const inFlight = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();

/** A request id as S3 shows them: 16 upper-case hex digits. */
function newRequestId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

/** Errors Node's HTTP parser raises outside a handler (oversized or malformed heads, garbage). */
function onClientError(err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const pending = inFlight.get(socket);
  if (pending && pending.req.complete && !pending.res.writableFinished) {
    // Garbage after a complete request that is still being answered: that answer must be the
    // next thing the client reads, so the garbage gets none; close once the answer is out.
    pending.res.once('finish', () => socket.destroy());
    pending.res.once('close', () => socket.destroy());
    return;
  }
  // A body cut short (the client half-closed mid-body) is IncompleteBody; its handler fails on
  // the same short body, so nothing is stored.
  const code =
    err.code === 'HPE_HEADER_OVERFLOW' ? 'RequestHeaderSectionTooLarge' : pending && !pending.req.complete ? 'IncompleteBody' : 'InvalidRequest';
  const requestId = newRequestId();
  const body = renderXml(
    'Error',
    {
      Code: code,
      Message: S3_ERRORS[code].message,
      RequestId: requestId,
      HostId: requestId,
    },
    false,
  );
  socket.end(
    `HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `x-amz-request-id: ${requestId}\r\nx-amz-id-2: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
}
