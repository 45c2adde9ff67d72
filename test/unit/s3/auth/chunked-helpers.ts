/**
 * Test helpers: an aws-chunked encoder (the client side, written from the AWS docs independently of
 * the decoder) and a driver that feeds a decoder an encoded body split at given offsets.
 */
import { createHash } from 'node:crypto';
import type { AwsChunkedDecoder, ChunkSigning } from '../../../../src/s3/auth/payload.ts';
import {
  canonicalTrailers,
  chunkStringToSign,
  signature,
  trailerStringToSign,
} from '../../../../src/s3/auth/sigv4.ts';

/** An encoded body plus where each chunk's data sits in it. */
export interface Encoded {
  bytes: Buffer;
  /** [start, end) offsets of data bytes of every non-empty chunk. */
  dataRanges: Array<[number, number]>;
}

/** Encoding choices. */
export interface EncodeOptions {
  signing?: ChunkSigning;
  /** Trailing headers; when given, the body has a trailer section (signed if `signing` is). */
  trailers?: Map<string, string>;
}

/**
 * encodeChunked cuts `body` into chunks of the given sizes (cycled; the last chunk may be shorter)
 * and frames them as aws-chunked, signing each chunk when `signing` is given.
 */
export function encodeChunked(body: Buffer, sizes: number[], opts: EncodeOptions = {}): Encoded {
  const parts: Buffer[] = [];
  const dataRanges: Array<[number, number]> = [];
  let offset = 0;
  let prev = opts.signing?.seedSignature ?? '';
  const sign = (data: Buffer): string => {
    const s = opts.signing;
    if (s === undefined) return '';
    const sts = chunkStringToSign(s.amzDate, s.scope, prev, createHash('sha256').update(data).digest('hex'));
    prev = signature(s.signingKey, sts);
    return `;chunk-signature=${prev}`;
  };
  const push = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
    parts.push(buf);
    offset += buf.length;
  };
  let pos = 0;
  let i = 0;
  while (pos < body.length) {
    const size = Math.min(Math.max(1, sizes.length === 0 ? body.length : (sizes[i++ % sizes.length] as number)), body.length - pos);
    const data = body.subarray(pos, pos + size);
    pos += size;
    push(`${size.toString(16)}${sign(data)}\r\n`);
    dataRanges.push([offset, offset + size]);
    push(data);
    push('\r\n');
  }
  push(`0${sign(Buffer.alloc(0))}\r\n`);
  if (opts.trailers !== undefined) {
    for (const [k, v] of opts.trailers) push(`${k}:${v}\r\n`);
    const s = opts.signing;
    if (s !== undefined) {
      const hash = createHash('sha256').update(canonicalTrailers(opts.trailers)).digest('hex');
      push(`x-amz-trailer-signature:${signature(s.signingKey, trailerStringToSign(s.amzDate, s.scope, prev, hash))}\r\n`);
    }
  }
  push('\r\n');
  return { bytes: Buffer.concat(parts), dataRanges };
}

/** Splits `bytes` at the given offsets (sorted, deduplicated, clamped). */
export function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(bytes.length, c))))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) pieces.push(bytes.subarray(prev, p));
    prev = p;
  }
  if (prev < bytes.length) pieces.push(bytes.subarray(prev));
  return pieces;
}

/** Feeds `pieces` to `decoder` and returns the decoded bytes; throws what the decoder throws. */
export function decodeAll(decoder: AwsChunkedDecoder, pieces: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const p of pieces) decoder.write(Buffer.from(p), (d) => out.push(Buffer.from(d)));
  decoder.end();
  return Buffer.concat(out);
}
