/**
 * Request bodies: the verified, digested stream of a PutObject, and bounded XML bodies.
 *
 *   raw request ──► payload verifier (SigV4 payload mode: sha256 / unsigned / aws-chunked)
 *               ──► digests (MD5 for the ETag, the declared x-amz-checksum-*, Content-MD5)
 *               ──► object layer (chunks)
 *
 * Nothing is trusted until the stream has ended without error and finalize() has compared every
 * digest the client declared, in a header or in a trailer. Only then may the object layer make
 * the object visible.
 */
import { createHash } from 'node:crypto';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import type { ChecksumAlgorithm, StoredChecksum } from '../objects/types.ts';
import type { BodyDigests } from '../objects/object-service.ts';
import { createPayloadVerifier } from './auth/payload.ts';
import { type Checksum, createChecksum } from './checksum-lite.ts';
import { type RequestContext, header } from './context.ts';
import { S3Error } from './errors.ts';
import { parseXml } from './xml.ts';

const ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/** The checksum a request declares, where its value comes from, and its value when known. */
interface DeclaredChecksum {
  algorithm: ChecksumAlgorithm;
  /** Base64 value from the x-amz-checksum-* header; undefined when it arrives as a trailer. */
  value?: string;
  trailer: boolean;
}

/** A body being read: the decoded byte stream and the check to run once it has ended. */
export interface ObjectBody {
  stream: AsyncIterable<Uint8Array>;
  declaredSizeBytes: number;
  finalize(sizeBytes: number): BodyDigests;
}

/** Opens the body of a PutObject (or UploadPart) for streaming, verified and digested. */
export function readObjectBody(ctx: RequestContext): ObjectBody {
  const declaredSizeBytes = declaredSize(ctx);
  const declared = declaredChecksum(ctx);
  const contentMd5 = expectedContentMd5(ctx);
  const verifier = createPayloadVerifier(ctx.auth, ctx.req.headers, {
    maxChunkSizeBytes: ctx.options.limits.chunkBytesMax,
    maxTrailerBytes: ctx.options.limits.trailerBytesMax,
  });
  const md5 = createHash('md5');
  const checksum: Checksum | undefined = declared ? createChecksum(declared.algorithm) : undefined;
  const digest = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      md5.update(chunk);
      checksum?.update(chunk);
      callback(null, chunk);
    },
  });
  pipeline(ctx.req.raw, verifier.stream, digest, (err) => {
    // The consumer of `digest` sees the same error through its iterator; this only records it.
    if (err) ctx.req.log.debug({ err }, 'request body failed');
  });

  const finalize = (sizeBytes: number): BodyDigests => {
    const result = verifier.result();
    if (!result.complete) throw new S3Error('IncompleteBody');
    if (sizeBytes !== declaredSizeBytes) throw new S3Error('IncompleteBody');
    const md5Bytes = md5.digest();
    if (contentMd5 !== undefined && !md5Bytes.equals(contentMd5)) throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    let stored: StoredChecksum | undefined;
    if (declared && checksum) {
      const expected = declared.trailer ? result.trailers.get(`x-amz-checksum-${declared.algorithm.toLowerCase()}`) : declared.value;
      if (expected === undefined) {
        throw new S3Error('InvalidRequest', `The x-amz-checksum-${declared.algorithm.toLowerCase()} trailer declared in x-amz-trailer is missing.`);
      }
      const actual = checksum.digestBase64();
      if (expected !== actual) {
        throw new S3Error('BadDigest', `The ${declared.algorithm} you specified did not match the calculated checksum.`);
      }
      stored = { algorithm: declared.algorithm, value: actual, type: 'FULL_OBJECT' };
    }
    return { etag: md5Bytes.toString('hex'), ...(stored ? { checksum: stored } : {}) };
  };
  return { stream: digest, declaredSizeBytes, finalize };
}

/** Bytes of object data the client announced: x-amz-decoded-content-length or Content-Length. */
function declaredSize(ctx: RequestContext): number {
  const mode = ctx.auth.payload;
  if (mode.kind !== 'sha256' && mode.kind !== 'unsigned') return mode.decodedContentLengthBytes;
  const raw = header(ctx.req, 'content-length');
  if (raw === undefined) throw new S3Error('MissingContentLength');
  if (!/^\d{1,16}$/.test(raw)) throw new S3Error('InvalidArgument', 'Content-Length is not a valid number.', { ArgumentName: 'Content-Length' });
  return Number(raw);
}

/** The one checksum the request declares, from x-amz-checksum-* headers or x-amz-trailer. */
function declaredChecksum(ctx: RequestContext): DeclaredChecksum | undefined {
  const found: DeclaredChecksum[] = [];
  for (const algorithm of ALGORITHMS) {
    const value = header(ctx.req, `x-amz-checksum-${algorithm.toLowerCase()}`);
    if (value !== undefined) found.push({ algorithm, value, trailer: false });
  }
  const trailer = header(ctx.req, 'x-amz-trailer');
  if (trailer !== undefined) {
    for (const name of trailer.split(',').map((s) => s.trim().toLowerCase())) {
      const algorithm = ALGORITHMS.find((a) => `x-amz-checksum-${a.toLowerCase()}` === name);
      if (!algorithm) throw new S3Error('InvalidRequest', `The value specified in the x-amz-trailer header is not supported: ${name}`);
      found.push({ algorithm, trailer: true });
    }
  }
  if (found.length > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  const sdkAlgorithm = header(ctx.req, 'x-amz-sdk-checksum-algorithm')?.toUpperCase();
  if (sdkAlgorithm !== undefined) {
    if (!ALGORITHMS.includes(sdkAlgorithm as ChecksumAlgorithm)) {
      throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
    }
    if (found[0] && found[0].algorithm !== sdkAlgorithm) {
      throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.');
    }
  }
  return found[0];
}

/** Content-MD5 as 16 bytes; InvalidDigest when it is not base64 of 16 bytes. */
function expectedContentMd5(ctx: RequestContext): Buffer | undefined {
  const value = header(ctx.req, 'content-md5');
  if (value === undefined) return undefined;
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== 16 || bytes.toString('base64') !== value.trim()) throw new S3Error('InvalidDigest');
  return bytes;
}

/** A small request body read whole (XML configuration, DeleteObjects), then parsed on demand. */
export interface XmlBody {
  parse(root: string): Record<string, unknown>;
}

/**
 * Reads a bounded XML body, verifying its payload signature and declared digests.
 * Returns undefined for an empty optional body; MissingRequestBodyError for an empty required one.
 */
export async function readXmlBody(ctx: RequestContext, opts: { optional: boolean }): Promise<XmlBody | undefined> {
  const max = ctx.options.limits.xmlBodyBytesMax;
  const length = header(ctx.req, 'content-length');
  if (length !== undefined && Number(length) > max && ctx.auth.payload.kind !== 'streaming-signed') {
    throw new S3Error('MaxMessageLengthExceeded', `Your request was too big (over ${max} bytes).`);
  }
  const body = readObjectBodyLenient(ctx);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of body.stream) {
    size += piece.byteLength;
    if (size > max) throw new S3Error('MaxMessageLengthExceeded', `Your request was too big (over ${max} bytes).`);
    parts.push(Buffer.from(piece));
  }
  body.finalize(size);
  if (size === 0) {
    if (opts.optional) return undefined;
    throw new S3Error('MissingRequestBodyError');
  }
  const text = Buffer.concat(parts).toString('utf8');
  return { parse: (root) => parseXml(text, root) };
}

/** Like readObjectBody, but a body without Content-Length counts as empty (GET-style requests). */
function readObjectBodyLenient(ctx: RequestContext): ObjectBody {
  const hasLength = header(ctx.req, 'content-length') !== undefined || header(ctx.req, 'x-amz-decoded-content-length') !== undefined;
  if (!hasLength && header(ctx.req, 'transfer-encoding') === undefined) {
    return { stream: (async function* () {})(), declaredSizeBytes: 0, finalize: () => ({ etag: '' }) };
  }
  if (!hasLength) throw new S3Error('MissingContentLength');
  return readObjectBody(ctx);
}
