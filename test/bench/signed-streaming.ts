/**
 * A PutObject whose body is sent as `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (aws-chunked, every
 * chunk signed, no trailer). The AWS SDK for JavaScript v3 never produces this mode (a stream body
 * gets `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with a checksum, or `UNSIGNED-PAYLOAD` without), so
 * the bench signs it itself with node:crypto and sends it with node:http.
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';

const EMPTY_SHA256 = createHash('sha256').digest('hex');
const MODE = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';

export interface SignedStreamingPut {
  /** e.g. http://127.0.0.1:9000 */
  endpoint: string;
  bucket: string;
  key: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** Decoded object size. */
  sizeBytes: number;
  /** Bytes of object data per signed chunk (the last one may be shorter). */
  chunkBytes: number;
  /** Produces the object's bytes in order; called until sizeBytes have been returned. */
  next(maxBytes: number): Buffer;
  timeoutMs: number;
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256Hex = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Bytes on the wire for an aws-chunked body of `size` bytes in `chunk`-byte signed chunks. */
export function signedChunkedLength(size: number, chunk: number): number {
  const frame = (n: number): number => n.toString(16).length + ';chunk-signature='.length + 64 + 2 + n + 2;
  const full = Math.floor(size / chunk);
  const rest = size % chunk;
  return full * frame(chunk) + (rest > 0 ? frame(rest) : 0) + frame(0);
}

/** Sends the PUT; resolves with the status code and response body once the server has answered. */
export async function signedStreamingPut(o: SignedStreamingPut): Promise<{ status: number; body: string; mode: string }> {
  const url = new URL(`/${o.bucket}/${encodeURIComponent(o.key).replace(/%2F/g, '/')}`, o.endpoint);
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${o.region}/s3/aws4_request`;
  const headers: Record<string, string> = {
    'content-encoding': 'aws-chunked',
    'content-length': String(signedChunkedLength(o.sizeBytes, o.chunkBytes)),
    host: url.host,
    'x-amz-content-sha256': MODE,
    'x-amz-date': amzDate,
    'x-amz-decoded-content-length': String(o.sizeBytes),
  };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonical = ['PUT', url.pathname, '', ...names.map((n) => `${n}:${headers[n]}`), '', signedHeaders, MODE].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonical)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${o.secretAccessKey}`, day), o.region), 's3'), 'aws4_request');
  let previous = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${o.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${previous}`;

  const frame = (data: Buffer): Buffer[] => {
    const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, previous, EMPTY_SHA256, sha256Hex(data)].join('\n');
    previous = createHmac('sha256', signingKey).update(toSign).digest('hex');
    return [Buffer.from(`${data.length.toString(16)};chunk-signature=${previous}\r\n`), data, Buffer.from('\r\n')];
  };

  return await new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PUT', headers, agent: false, timeout: o.timeoutMs });
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(err);
    };
    req.on('timeout', () => fail(new Error(`signed streaming PUT: no progress for ${o.timeoutMs} ms`)));
    req.on('error', fail);
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), mode: MODE });
      });
      res.on('error', fail);
    });
    let sent = 0;
    const pump = (): void => {
      while (!settled) {
        if (sent >= o.sizeBytes) {
          for (const b of frame(Buffer.alloc(0))) req.write(b);
          req.end();
          return;
        }
        const data = o.next(Math.min(o.chunkBytes, o.sizeBytes - sent));
        sent += data.length;
        let ok = true;
        for (const b of frame(data)) ok = req.write(b) && ok;
        if (!ok) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}
