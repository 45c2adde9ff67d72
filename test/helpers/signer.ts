/**
 * A small, independent AWS Signature V4 signer for raw requests in wire-level tests: header
 * signing (any x-amz-content-sha256 mode), presigned URLs, and aws-chunked bodies (signed chunks,
 * trailers with x-amz-trailer-signature, unsigned-trailer mode), built piece by piece so tests can
 * corrupt any byte of them. It deliberately does not import src/: it is an oracle written from
 * the AWS documents, not a copy of the server's verifier.
 *
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
 *   https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
 *
 * Also: raw requests through an undici Client (paths are sent verbatim, never normalized, so
 * `/b/../k` reaches the server as written), raw TCP for broken framing, and S3 error parsing.
 */
import { createHash, createHmac } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import type { ExecutionContext } from 'ava';
import { Client } from 'undici';
import { TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY } from './server.ts';

/** SHA-256 of the empty string, hex. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Payload hash values of the streaming modes (x-amz-content-sha256). */
export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';

/** Access key pair used to sign. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The test server's root credentials. */
export const TEST_CREDENTIALS: Credentials = { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET_KEY };

/** Checksum algorithms S3 knows, as spelled in x-amz-checksum-<lower-case>. */
export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

const sha256Hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Uint8Array, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** Formats a Date as the SigV4 timestamp `YYYYMMDDTHHMMSSZ`. */
export function amzDateOf(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** AWS UriEncode() of UTF-8 bytes; '/' is kept only when `keepSlash`. */
export function uriEncode(input: string | Uint8Array, keepSlash: boolean): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Decodes %XX escapes to bytes; anything else is kept (a stray '%' stays literal). */
function percentDecode(s: string, plusIsSpace: boolean): Buffer {
  const src = Buffer.from(s, 'utf8');
  const out: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const b = src[i] as number;
    if (b === 0x25 && i + 2 < src.length && /^[0-9a-fA-F]{2}$/.test(src.subarray(i + 1, i + 3).toString('latin1'))) {
      out.push(Number.parseInt(src.subarray(i + 1, i + 3).toString('latin1'), 16));
      i += 2;
    } else out.push(b === 0x2b && plusIsSpace ? 0x20 : b);
  }
  return Buffer.from(out);
}

/**
 * Encodes an object key for a path: every byte UriEncoded except '/'. So `a/../b` stays literally
 * `a/../b` on the wire; S3 never normalizes it.
 */
export function keyPath(bucket: string, key: string): string {
  return `/${bucket}/${uriEncode(key, true)}`;
}

/** CanonicalURI of a wire path: S3 neither normalizes nor double-encodes; each segment is decoded then encoded once. */
function canonicalUri(rawPath: string): string {
  return rawPath
    .split('/')
    .map((seg) => uriEncode(percentDecode(seg, false), false))
    .join('/');
}

/** CanonicalQueryString of a wire query (after '?'), optionally without X-Amz-Signature. */
function canonicalQuery(rawQuery: string, dropSignature: boolean): string {
  if (rawQuery === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = percentDecode(eq < 0 ? part : part.slice(0, eq), true);
    const v = percentDecode(eq < 0 ? '' : part.slice(eq + 1), true);
    if (dropSignature && k.toString() === 'X-Amz-Signature') continue;
    pairs.push([uriEncode(k, false), uriEncode(v, false)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** The SigV4 signing key of a scope. */
export function signingKeyOf(secret: string, dateStamp: string, region: string, service = 's3'): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, dateStamp), region), service), 'aws4_request');
}

/** What signRequest needs. `path` and `query` are exactly what goes on the wire. */
export interface SignInput {
  method: string;
  /** host[:port] as sent in the Host header. */
  host: string;
  /** Wire path, already percent-encoded (see keyPath). */
  path: string;
  /** Wire query without '?', '' when none. */
  query?: string;
  /** Extra headers to send and sign (names any case). */
  headers?: Record<string, string>;
  /** Body whose SHA-256 becomes x-amz-content-sha256, unless `payloadHash` is given. */
  body?: Uint8Array | string;
  /** x-amz-content-sha256 value: 'UNSIGNED-PAYLOAD', a streaming mode, or any (wrong) hex. */
  payloadHash?: string;
  credentials?: Credentials;
  /** Region named in the credential scope. */
  region?: string;
  /** Request time; now by default. */
  date?: Date;
  /** Headers sent but NOT signed (to test unsigned x-amz-* headers). */
  unsignedHeaders?: Record<string, string>;
}

/** A signed request: headers to send plus the pieces chunk signing chains from. */
export interface SignedRequest {
  headers: Record<string, string>;
  /** The request signature: seed of aws-chunked chunk signatures. */
  signature: string;
  signing: ChunkSigning;
}

/** Signing context of aws-chunked chunks and trailers. */
export interface ChunkSigning {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  seedSignature: string;
}

/** Signs a request with the Authorization header. Host, x-amz-date, x-amz-content-sha256 and every given header are signed. */
export function signRequest(input: SignInput): SignedRequest {
  const creds = input.credentials ?? TEST_CREDENTIALS;
  const region = input.region ?? TEST_REGION;
  const amzDate = amzDateOf(input.date ?? new Date());
  const dateStamp = amzDate.slice(0, 8);
  const payloadHash = input.payloadHash ?? sha256Hex(input.body ?? '');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) headers[k.toLowerCase()] = v;
  headers['host'] = input.host;
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = payloadHash;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${(headers[n] as string).trim().replace(/ +/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const creq = [input.method, canonicalUri(input.path), canonicalQuery(input.query ?? '', false), canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${dateStamp}/${region}/s3/aws4_request`;
  const sts = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(creq)}`;
  const key = signingKeyOf(creds.secretAccessKey, dateStamp, region);
  const signature = hmac(key, sts).toString('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  for (const [k, v] of Object.entries(input.unsignedHeaders ?? {})) headers[k.toLowerCase()] = v;
  return { headers, signature, signing: { signingKey: key, amzDate, scope, seedSignature: signature } };
}

/** Options of presign(). */
export interface PresignInput {
  method: string;
  host: string;
  path: string;
  /** Extra query parameters (wire-encoded `k=v&…`) that become part of the signed URL. */
  query?: string;
  expiresSeconds: number;
  credentials?: Credentials;
  region?: string;
  date?: Date;
}

/** A presigned URL's path and query (`/b/k?X-Amz-…&X-Amz-Signature=…`), signing only `host` and UNSIGNED-PAYLOAD. */
export function presign(input: PresignInput): string {
  const creds = input.credentials ?? TEST_CREDENTIALS;
  const region = input.region ?? TEST_REGION;
  const amzDate = amzDateOf(input.date ?? new Date());
  const scope = `${amzDate.slice(0, 8)}/${region}/s3/aws4_request`;
  const params = [
    'X-Amz-Algorithm=AWS4-HMAC-SHA256',
    `X-Amz-Credential=${uriEncode(`${creds.accessKeyId}/${scope}`, false)}`,
    `X-Amz-Date=${amzDate}`,
    `X-Amz-Expires=${input.expiresSeconds}`,
    'X-Amz-SignedHeaders=host',
  ];
  const query = [input.query ?? '', ...params].filter((s) => s !== '').join('&');
  const creq = [input.method, canonicalUri(input.path), canonicalQuery(query, true), `host:${input.host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const sts = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(creq)}`;
  const signature = hmac(signingKeyOf(creds.secretAccessKey, amzDate.slice(0, 8), region), sts).toString('hex');
  return `${input.path}?${query}&X-Amz-Signature=${signature}`;
}

/** The x-amz-checksum-* value (base64 of the big-endian digest) of `data`. */
export async function checksumOf(algorithm: ChecksumAlgorithm, data: Uint8Array): Promise<string> {
  switch (algorithm) {
    case 'CRC32': {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(crc32(data) >>> 0);
      return b.toString('base64');
    }
    case 'CRC32C': {
      const c = new Crc32c();
      c.update(data);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(c.digest() >>> 0);
      return b.toString('base64');
    }
    case 'CRC64NVME': {
      const c = new Crc64Nvme();
      c.update(data);
      return Buffer.from(await c.digest()).toString('base64');
    }
    case 'SHA1':
      return createHash('sha1').update(data).digest('base64');
    case 'SHA256':
      return createHash('sha256').update(data).digest('base64');
  }
}

/** aws-chunked flavours, by x-amz-content-sha256. */
export type ChunkedMode = typeof STREAMING_SIGNED | typeof STREAMING_SIGNED_TRAILER | typeof STREAMING_UNSIGNED_TRAILER;

/** Options of awsChunked(). */
export interface AwsChunkedOptions {
  mode: ChunkedMode;
  /** Data bytes per chunk (the last may be shorter). */
  chunkSizeBytes: number;
  /** Required for the signed modes. */
  signing?: ChunkSigning;
  /** Trailing headers (trailer modes), e.g. [['x-amz-checksum-crc32', '…']]. */
  trailers?: Array<[string, string]>;
}

/** An aws-chunked body and where its pieces are, so a test can corrupt one precisely. */
export interface AwsChunkedBody {
  body: Buffer;
  /** Byte offset in `body` of each non-empty chunk's data, and its length. */
  chunkData: Array<{ offset: number; length: number }>;
  /** Byte offset of the final `0…` size line. */
  finalChunkOffset: number;
}

/**
 * Encodes `data` as aws-chunked: `hex;chunk-signature=sig\r\n data \r\n` per chunk, the final
 * empty chunk, then trailers (`name:value\r\n`, plus `x-amz-trailer-signature:sig\r\n` in the
 * signed-trailer mode) and the closing `\r\n`.
 */
export function awsChunked(data: Uint8Array, opts: AwsChunkedOptions): AwsChunkedBody {
  const signed = opts.mode !== STREAMING_UNSIGNED_TRAILER;
  if (signed && !opts.signing) throw new TypeError('signed aws-chunked needs signing');
  const s = opts.signing;
  let previous = s?.seedSignature ?? '';
  const chunkSig = (piece: Uint8Array): string => {
    const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${s!.amzDate}\n${s!.scope}\n${previous}\n${EMPTY_SHA256}\n${sha256Hex(piece)}`;
    previous = hmac(s!.signingKey, sts).toString('hex');
    return previous;
  };
  const parts: Buffer[] = [];
  let length = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    length += b.length;
  };
  const chunkData: AwsChunkedBody['chunkData'] = [];
  for (let off = 0; off < data.length; off += opts.chunkSizeBytes) {
    const piece = data.subarray(off, Math.min(off + opts.chunkSizeBytes, data.length));
    push(Buffer.from(`${piece.length.toString(16)}${signed ? `;chunk-signature=${chunkSig(piece)}` : ''}\r\n`, 'latin1'));
    chunkData.push({ offset: length, length: piece.length });
    push(Buffer.from(piece));
    push(Buffer.from('\r\n'));
  }
  const finalChunkOffset = length;
  push(Buffer.from(`0${signed ? `;chunk-signature=${chunkSig(new Uint8Array(0))}` : ''}\r\n`, 'latin1'));
  if (opts.mode !== STREAMING_SIGNED) {
    const trailers = opts.trailers ?? [];
    for (const [name, value] of trailers) push(Buffer.from(`${name}:${value}\r\n`, 'latin1'));
    if (signed) {
      const canonical = [...trailers].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([n, v]) => `${n}:${v}\n`).join('');
      const sts = `AWS4-HMAC-SHA256-TRAILER\n${s!.amzDate}\n${s!.scope}\n${previous}\n${sha256Hex(canonical)}`;
      push(Buffer.from(`x-amz-trailer-signature:${hmac(s!.signingKey, sts).toString('hex')}\r\n`, 'latin1'));
    }
  }
  push(Buffer.from('\r\n'));
  return { body: Buffer.concat(parts, length), chunkData, finalChunkOffset };
}

/** Options of streamingPut(). */
export interface StreamingPutInput {
  host: string;
  path: string;
  data: Uint8Array;
  mode: ChunkedMode;
  chunkSizeBytes?: number;
  /** Trailer checksum: algorithm and (optionally wrong) value; computed from `data` when value is omitted. */
  trailerChecksum?: { algorithm: ChecksumAlgorithm; value?: string };
  headers?: Record<string, string>;
  credentials?: Credentials;
}

/** Headers and aws-chunked body of a streaming PutObject, signed as the SDKs sign them. */
export async function streamingPut(input: StreamingPutInput): Promise<{ headers: Record<string, string>; chunked: AwsChunkedBody }> {
  const headers: Record<string, string> = {
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': String(input.data.length),
    ...input.headers,
  };
  let trailers: Array<[string, string]> = [];
  if (input.trailerChecksum) {
    const name = `x-amz-checksum-${input.trailerChecksum.algorithm.toLowerCase()}`;
    headers['x-amz-trailer'] = name;
    trailers = [[name, input.trailerChecksum.value ?? (await checksumOf(input.trailerChecksum.algorithm, input.data))]];
  }
  // Content-Length is the encoded length, which is known only after encoding; it is not signed
  // here (the SDKs do sign it; the server does not require it), so it can be added afterwards.
  const signed = signRequest({
    method: 'PUT',
    host: input.host,
    path: input.path,
    headers,
    payloadHash: input.mode,
    ...(input.credentials ? { credentials: input.credentials } : {}),
  });
  const chunked = awsChunked(input.data, {
    mode: input.mode,
    chunkSizeBytes: input.chunkSizeBytes ?? 64 * 1024,
    signing: signed.signing,
    trailers,
  });
  return { headers: { ...signed.headers, 'content-length': String(chunked.body.length) }, chunked };
}

/** A response read whole. */
export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

/** A parsed S3 error document. */
export interface S3ErrorBody {
  code: string | undefined;
  message: string | undefined;
  requestId: string | undefined;
}

/** Extracts Code, Message and RequestId from an S3 `<Error>` document. */
export function parseS3Error(xml: string): S3ErrorBody {
  const field = (name: string) => new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml)?.[1];
  return { code: field('Code'), message: field('Message'), requestId: field('RequestId') };
}

/**
 * Sends requests to one server with paths exactly as given (undici does not normalize `..`).
 * A fresh Client per helper keeps connection state from leaking across tests.
 */
export class RawS3 {
  readonly origin: string;
  readonly host: string;
  readonly #client: Client;

  constructor(url: string) {
    const u = new URL(url);
    this.origin = u.origin;
    this.host = u.host;
    this.#client = new Client(this.origin, { pipelining: 0 });
  }

  /** Sends an unsigned request (headers as given). */
  async send(method: string, pathAndQuery: string, headers: Record<string, string> = {}, body?: Uint8Array | string): Promise<RawResponse> {
    const res = await this.#client.request({
      method: method as 'GET',
      path: pathAndQuery,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const buf = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body: buf, text: buf.toString('utf8') };
  }

  /** Signs (Authorization header) and sends. `path` is the wire path; `query` the wire query. */
  async signed(
    method: string,
    path: string,
    opts: Omit<SignInput, 'method' | 'host' | 'path'> & { body?: Uint8Array | string } = {},
  ): Promise<RawResponse> {
    const { headers } = signRequest({ ...opts, method, host: this.host, path });
    const query = opts.query ? `?${opts.query}` : '';
    return this.send(method, `${path}${query}`, headers, opts.body);
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.#client.close();
  }
}

/** How long rawExchange waits for the server by default; generous because CI machines are busy. */
export const RAW_EXCHANGE_TIMEOUT_MS = 15_000;

/**
 * A predicate for rawExchange: true once `count` complete HTTP responses (head plus
 * Content-Length bytes of body) have arrived, so a kept-alive connection need not time out.
 */
export function completeResponses(count: number): (response: string) => boolean {
  return (response) => {
    let pos = 0;
    for (let seen = 0; seen < count; seen++) {
      const headEnd = response.indexOf('\r\n\r\n', pos);
      if (headEnd < 0) return false;
      const head = response.slice(pos, headEnd);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      // 1xx answers (100 Continue) have no body and do not count.
      if (/^HTTP\/1\.1 1\d\d/.test(head)) seen--;
      pos = headEnd + 4 + length;
      if (pos > response.length) return false;
    }
    return true;
  };
}

/**
 * Sends raw bytes over a fresh TCP connection and collects whatever comes back until the server
 * closes, `until(responseSoFar)` is true, or `timeoutMs` passes. `shape` may end or destroy the
 * socket part-way (half-close, disconnect mid-body).
 */
export async function rawExchange(
  port: number,
  shape: (socket: Socket) => void | Promise<void>,
  timeoutMs = RAW_EXCHANGE_TIMEOUT_MS,
  until?: (response: string) => boolean,
): Promise<{ response: string; closedByServer: boolean }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      // Enough was seen (e.g. a complete error document): stop waiting for the server to close.
      if (until?.(Buffer.concat(chunks).toString('latin1'))) {
        clearTimeout(timer);
        resolve(false);
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('error', () => {
      // ECONNRESET after a server-side close is an expected outcome here, reported via 'close'.
    });
  });
  await shape(socket);
  const closedByServer = await closed;
  socket.destroy();
  return { response: Buffer.concat(chunks).toString('latin1'), closedByServer };
}

/** Status code of the first HTTP response in a raw exchange, or undefined when there is none. */
export function rawStatus(response: string): number | undefined {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(response);
  return m ? Number(m[1]) : undefined;
}

/**
 * Asserts that `res` is an S3 error: the status, an XML `<Error>` with this Code, a Message and
 * a RequestId equal to the x-amz-request-id header. Returns the parsed error for more checks.
 */
export function expectS3Error(t: ExecutionContext, res: RawResponse, status: number, code: string, what = ''): S3ErrorBody {
  const err = parseS3Error(res.text);
  const label = what ? `${what}: ` : '';
  t.is(res.status, status, `${label}status (body: ${res.text.slice(0, 300)})`);
  t.is(err.code, code, `${label}Code`);
  t.truthy(err.message, `${label}Message is present`);
  t.regex(String(res.headers['content-type'] ?? ''), /xml/, `${label}Content-Type is XML`);
  const requestId = String(res.headers['x-amz-request-id'] ?? '');
  t.truthy(requestId, `${label}x-amz-request-id header is present`);
  t.is(err.requestId, requestId, `${label}RequestId matches x-amz-request-id`);
  return err;
}

/** The head of a raw HTTP/1.1 request (`METHOD path HTTP/1.1`, headers, blank line). */
export function httpHead(method: string, pathAndQuery: string, headers: Record<string, string>): string {
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `${method} ${pathAndQuery} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** Every HTTP status line in a raw exchange, in order. */
export function rawStatuses(response: string): number[] {
  return [...response.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

// ---------------------------------------------------------------------------------------------
// Signature Version 2 (https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html),
// written from AWS's document like the SigV4 signer above, not from the server's code.

/** The sub-resources AWS's SigV2 document names, plus those the SigV2 signers sign today. */
const V2_SUB_RESOURCES = [
  'acl', 'cors', 'delete', 'lifecycle', 'location', 'logging', 'notification', 'partNumber', 'policy',
  'requestPayment', 'restore', 'tagging', 'torrent', 'uploadId', 'uploads', 'versionId', 'versioning',
  'versions', 'website', 'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'response-content-language', 'response-content-type', 'response-expires',
];

/** What a SigV2 signature covers. `path` and `query` are exactly what goes on the wire. */
export interface SignV2Input {
  method: string;
  /** Wire path (path-style includes the bucket). */
  path: string;
  /** Wire query without '?'. */
  query?: string;
  /** Headers sent; Content-MD5, Content-Type, Date and every x-amz-* one are signed. */
  headers?: Record<string, string>;
  /** The bucket when the Host header names it (virtual-hosted style). */
  virtualHostBucket?: string;
  credentials?: Credentials;
}

/** The SigV2 string to sign of a request; `dateOrExpires` is the Date header or the Expires value. */
export function stringToSignV2(input: SignV2Input, dateOrExpires: string): string {
  const headers = Object.fromEntries(Object.entries(input.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v.trim()]));
  const amz = Object.keys(headers)
    .filter((k) => k.startsWith('x-amz-'))
    .sort()
    .map((k) => `${k}:${headers[k]}\n`)
    .join('');
  let resource = `${input.virtualHostBucket === undefined ? '' : `/${input.virtualHostBucket}`}${input.path}`;
  const subs: Array<[string, string]> = [];
  for (const part of (input.query ?? '').split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    if (!V2_SUB_RESOURCES.includes(k)) continue;
    subs.push([k, eq < 0 ? '' : percentDecode(part.slice(eq + 1), true).toString('utf8')]);
  }
  subs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (subs.length > 0) resource += `?${subs.map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join('&')}`;
  return `${input.method}\n${headers['content-md5'] ?? ''}\n${headers['content-type'] ?? ''}\n${dateOrExpires}\n${amz}${resource}`;
}

/** base64 HMAC-SHA1: a SigV2 request or POST policy signature. */
export function hmacSha1Base64(secret: string, data: string): string {
  return createHmac('sha1', secret).update(data, 'utf8').digest('base64');
}

/**
 * Signs with `Authorization: AWS AKID:signature`. A Date header (now, RFC 1123) is added unless
 * the headers carry Date or x-amz-date; with x-amz-date and no Date, the Date position is empty
 * (as aws-sdk-js v2 and s3cmd sign).
 */
export function signRequestV2(input: SignV2Input): { headers: Record<string, string>; stringToSign: string } {
  const creds = input.credentials ?? TEST_CREDENTIALS;
  const headers = { ...(input.headers ?? {}) };
  const has = (name: string) => Object.keys(headers).some((k) => k.toLowerCase() === name);
  if (!has('date') && !has('x-amz-date')) headers['Date'] = new Date().toUTCString();
  const date = Object.entries(headers).find(([k]) => k.toLowerCase() === 'date')?.[1] ?? '';
  const stringToSign = stringToSignV2({ ...input, headers }, date);
  headers['Authorization'] = `AWS ${creds.accessKeyId}:${hmacSha1Base64(creds.secretAccessKey, stringToSign)}`;
  return { headers, stringToSign };
}

/** A SigV2 presigned path and query: `path?[query&]AWSAccessKeyId=…&Expires=…&Signature=…`. */
export function presignV2(input: SignV2Input & { expiresEpochSeconds: number }): string {
  const creds = input.credentials ?? TEST_CREDENTIALS;
  const sig = hmacSha1Base64(creds.secretAccessKey, stringToSignV2(input, String(input.expiresEpochSeconds)));
  const auth = `AWSAccessKeyId=${encodeURIComponent(creds.accessKeyId)}&Expires=${input.expiresEpochSeconds}&Signature=${encodeURIComponent(sig)}`;
  return `${input.path}?${input.query ? `${input.query}&` : ''}${auth}`;
}
