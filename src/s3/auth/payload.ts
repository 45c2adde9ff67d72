/**
 * Payload verification: a Transform from the raw request body to the object's bytes that checks
 * what the signature promised about the body, in one pass and in bounded memory.
 *
 *   sha256                        pass-through; sha256 of the bytes must equal x-amz-content-sha256
 *   unsigned                      pass-through (byte count checked against Content-Length)
 *   streaming-signed              aws-chunked; every chunk signature verified, chained from the seed
 *   streaming-signed-trailer      same, then trailing headers and x-amz-trailer-signature
 *   streaming-unsigned-trailer    aws-chunked without signatures, then trailing headers
 *
 * aws-chunked framing (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html,
 * sigv4-streaming-trailers.html):
 *
 *   hex-size[;chunk-signature=<64 hex>]\r\n  <hex-size bytes>\r\n      (repeated)
 *   0[;chunk-signature=<64 hex>]\r\n                                    (final, empty chunk)
 *   [name:value\r\n]*                                                   (trailers, trailer modes)
 *   [x-amz-trailer-signature:<64 hex>\r\n]                              (signed-trailer mode)
 *   \r\n
 *
 * Chunk data is emitted as it arrives and hashed incrementally, so no chunk is ever held in
 * memory. The price: bytes of a chunk are emitted before that chunk's signature is checked at its
 * end. Contract with the consumer: emitted bytes are final only once the stream ends without
 * error; on error the consumer must discard everything it received (the object layer does, since a
 * PUT becomes visible only through the metadata command proposed after the body ended).
 *
 * The decoder (AwsChunkedDecoder) is a plain push parser independent of streams, so it is tested
 * with every possible split of the input into reads.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { assert, unreachable } from '../../util/assert.ts';
import type { AuthRequest, AuthResult } from './authenticate.ts';
import { S3AuthError } from './errors.ts';
import {
  EMPTY_SHA256_HEX,
  canonicalTrailers,
  chunkStringToSign,
  constantTimeEqualHex,
  sha256Hex,
  signature,
  trailerStringToSign,
} from './sigv4.ts';

/** Longest chunk-size line accepted: `ffffffffffffffff;chunk-signature=<64 hex>` is ~100 bytes. */
export const CHUNK_SIZE_LINE_BYTES_MAX = 4096;
/** Default bound on one aws-chunked chunk; SDKs send 64 KiB, we tolerate up to 16 MiB. */
export const CHUNK_SIZE_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;
/** Default bound on the whole trailer section (trailing headers plus their signature). */
export const TRAILER_BYTES_MAX_DEFAULT = 16 * 1024;

/** Bounds for createPayloadVerifier. */
export interface PayloadVerifierOptions {
  /** Largest accepted aws-chunked chunk; larger → InvalidChunkSizeError. */
  maxChunkSizeBytes: number;
  /** Largest accepted trailer section in bytes; larger → InvalidRequest. */
  maxTrailerBytes: number;
}

/** What the verifier saw; complete and trustworthy only after the stream ended without error. */
export interface PayloadResult {
  /** True once the body ended and every check passed. */
  complete: boolean;
  /** Bytes of object data emitted. */
  decodedLengthBytes: number;
  /** Trailing headers (lower-case name → value), x-amz-trailer-signature excluded. */
  trailers: ReadonlyMap<string, string>;
  /** Number of aws-chunked chunks, the final empty one included (0 for non-chunked bodies). */
  chunkCount: number;
}

/** Signing context for signed aws-chunked bodies. */
export interface ChunkSigning {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  seedSignature: string;
}

/** Options of AwsChunkedDecoder. */
export interface AwsChunkedDecoderOptions extends PayloadVerifierOptions {
  /** Chunk signatures are required and verified when given; undefined for STREAMING-UNSIGNED-PAYLOAD-TRAILER. */
  signing: ChunkSigning | undefined;
  /** Whether a trailer section may follow the final chunk. */
  trailers: boolean;
  /** x-amz-decoded-content-length: the exact number of data bytes. */
  decodedContentLengthBytes: number;
}

function malformed(message: string): S3AuthError {
  return new S3AuthError('InvalidRequest', `Malformed aws-chunked body: ${message}`);
}

function incomplete(message: string): S3AuthError {
  return new S3AuthError('IncompleteBody', message);
}

const SIGNATURE_RE = /^[0-9a-f]{64}$/;
const SIZE_RE = /^[0-9a-fA-F]{1,16}$/;
const CR = 0x0d;
const LF = 0x0a;

type State =
  | 'size' // reading a chunk-size line
  | 'data' // inside chunk data
  | 'dataEnd' // expecting the \r\n after chunk data
  | 'trailer' // reading trailer lines (or the final empty line)
  | 'done'; // final empty line seen; nothing may follow

/**
 * AwsChunkedDecoder decodes and verifies an aws-chunked body pushed in arbitrary pieces.
 * `write(buf, emit)` emits decoded data through `emit` and throws S3AuthError on the first problem;
 * after a throw the decoder is unusable. `end()` checks the body is complete. Memory is bounded
 * by CHUNK_SIZE_LINE_BYTES_MAX plus maxTrailerBytes, whatever the chunk sizes.
 */
export class AwsChunkedDecoder {
  readonly #opts: AwsChunkedDecoderOptions;
  #state: State = 'size';
  #failed = false;
  // Partial line (size line or trailer line) carried across writes.
  #lineParts: Buffer[] = [];
  #lineBytes = 0;
  #trailerBytes = 0;
  // Current chunk.
  #chunkRemaining = 0;
  #chunkSignature = '';
  #chunkHash: Hash | undefined;
  #dataEndSeen = 0; // how many bytes of the post-data \r\n were consumed
  #previousSignature: string;
  #trailerSignatureVerified = false;
  readonly #trailers = new Map<string, string>();
  #decodedBytes = 0;
  #chunkCount = 0;

  constructor(opts: AwsChunkedDecoderOptions) {
    assert(Number.isSafeInteger(opts.maxChunkSizeBytes) && opts.maxChunkSizeBytes > 0, 'maxChunkSizeBytes > 0');
    assert(Number.isSafeInteger(opts.maxTrailerBytes) && opts.maxTrailerBytes >= 0, 'maxTrailerBytes >= 0');
    assert(Number.isSafeInteger(opts.decodedContentLengthBytes) && opts.decodedContentLengthBytes >= 0);
    this.#opts = opts;
    this.#previousSignature = opts.signing?.seedSignature ?? '';
  }

  /** Bytes of object data emitted so far. */
  get decodedLengthBytes(): number {
    return this.#decodedBytes;
  }

  /** Chunks seen so far, the final empty chunk included. */
  get chunkCount(): number {
    return this.#chunkCount;
  }

  /** Trailing headers parsed so far (x-amz-trailer-signature excluded). */
  get trailers(): ReadonlyMap<string, string> {
    return this.#trailers;
  }

  /** True once the final empty line was read. */
  get done(): boolean {
    return this.#state === 'done';
  }

  /** Consumes one piece of the raw body, emitting decoded data. Throws S3AuthError. */
  write(buf: Buffer, emit: (data: Buffer) => void): void {
    assert(!this.#failed, 'write after failure');
    try {
      this.#write(buf, emit);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  /** Declares the end of the raw body. Throws IncompleteBody when the body stopped early. */
  end(): void {
    assert(!this.#failed, 'end after failure');
    this.#failed = true; // nothing may follow end(), successful or not
    // The final empty line is required once a trailer line was read: without it a body cut after
    // some of its trailer lines could not be told from a complete one. The AWS SDK for JavaScript
    // v3 ends an aws-chunked body that has no trailers with `0\r\n` alone
    // (@smithy getAwsChunkedEncodingStream), so EOF right after the final chunk's line is accepted:
    // every data byte and the final chunk are verified by then, and a declared-but-missing trailer
    // is caught by the checksum layer (checksum.ts resolveExpectedChecksums). A signed-trailer body
    // still needs its x-amz-trailer-signature.
    const endsAfterFinalChunk =
      this.#state === 'trailer' &&
      this.#lineBytes === 0 &&
      this.#trailerBytes === 0 &&
      !(this.#opts.signing !== undefined && this.#opts.trailers);
    if (this.#state !== 'done' && !endsAfterFinalChunk) {
      throw incomplete('The aws-chunked body ended before its final chunk.');
    }
    if (this.#decodedBytes !== this.#opts.decodedContentLengthBytes) {
      throw incomplete(
        `The decoded body has ${this.#decodedBytes} bytes but x-amz-decoded-content-length is ${this.#opts.decodedContentLengthBytes}.`,
      );
    }
  }

  #write(buf: Buffer, emit: (data: Buffer) => void): void {
    let pos = 0;
    while (pos < buf.length) {
      switch (this.#state) {
        case 'size': {
          const line = this.#readLine(buf, pos, CHUNK_SIZE_LINE_BYTES_MAX, 'chunk-size line');
          pos = line.pos;
          if (line.text !== undefined) this.#onSizeLine(line.text);
          break;
        }
        case 'data': {
          const n = Math.min(this.#chunkRemaining, buf.length - pos);
          assert(n > 0, 'data state has bytes remaining');
          const data = buf.subarray(pos, pos + n);
          pos += n;
          this.#chunkRemaining -= n;
          this.#decodedBytes += n;
          if (this.#decodedBytes > this.#opts.decodedContentLengthBytes) {
            throw malformed('the decoded body is longer than x-amz-decoded-content-length.');
          }
          this.#chunkHash?.update(data);
          emit(data);
          if (this.#chunkRemaining === 0) {
            this.#verifyChunk(this.#chunkHash === undefined ? EMPTY_SHA256_HEX : this.#chunkHash.digest('hex'));
            this.#chunkHash = undefined;
            this.#state = 'dataEnd';
            this.#dataEndSeen = 0;
          }
          break;
        }
        case 'dataEnd': {
          const expected = this.#dataEndSeen === 0 ? CR : LF;
          if (buf[pos] !== expected) throw malformed('chunk data is not followed by CRLF.');
          pos++;
          this.#dataEndSeen++;
          if (this.#dataEndSeen === 2) this.#state = 'size';
          break;
        }
        case 'trailer': {
          // #trailerBytes counts complete lines only; the final empty line (2 bytes) always fits.
          const budget = Math.max(this.#opts.maxTrailerBytes - this.#trailerBytes, 2);
          const line = this.#readLine(buf, pos, budget, 'trailer section');
          pos = line.pos;
          if (line.text !== undefined) {
            this.#trailerBytes += line.text.length + 2;
            this.#onTrailerLine(line.text);
          }
          break;
        }
        case 'done':
          throw malformed('data after the end of the aws-chunked body.');
        default:
          unreachable(this.#state);
      }
    }
  }

  /**
   * Reads up to and including the next LF. Returns the line without its CRLF once complete, or
   * undefined with everything consumed when the line continues in a later write. A line (CRLF
   * included) longer than `maxBytes` is an error, checked before anything is buffered.
   */
  #readLine(buf: Buffer, pos: number, maxBytes: number, what: string): { text: string | undefined; pos: number } {
    const lf = buf.indexOf(LF, pos);
    const end = lf === -1 ? buf.length : lf + 1;
    if (this.#lineBytes + (end - pos) > maxBytes) {
      throw new S3AuthError('InvalidRequest', `Malformed aws-chunked body: ${what} exceeds ${maxBytes} bytes.`);
    }
    // A partial line is copied so that it does not pin the (possibly large) read buffer it came in.
    this.#lineParts.push(lf === -1 ? Buffer.from(buf.subarray(pos, end)) : buf.subarray(pos, end));
    this.#lineBytes += end - pos;
    if (lf === -1) return { text: undefined, pos: end };
    const line = this.#lineParts.length === 1 ? (this.#lineParts[0] as Buffer) : Buffer.concat(this.#lineParts);
    this.#lineParts = [];
    this.#lineBytes = 0;
    if (line.length < 2 || line[line.length - 2] !== CR) throw malformed(`${what} does not end with CRLF.`);
    return { text: line.subarray(0, line.length - 2).toString('latin1'), pos: end };
  }

  #onSizeLine(line: string): void {
    const parts = line.split(';');
    const sizeText = parts[0] as string;
    if (!SIZE_RE.test(sizeText)) throw malformed('invalid chunk size.');
    const size = Number.parseInt(sizeText, 16);
    if (size > this.#opts.maxChunkSizeBytes) {
      throw new S3AuthError(
        'InvalidChunkSizeError',
        `Chunk size ${size} exceeds the maximum of ${this.#opts.maxChunkSizeBytes} bytes.`,
      );
    }
    let chunkSignature: string | undefined;
    for (const ext of parts.slice(1)) {
      const eq = ext.indexOf('=');
      const name = eq === -1 ? ext : ext.slice(0, eq);
      if (name === 'chunk-signature') {
        if (chunkSignature !== undefined) throw malformed('repeated chunk-signature.');
        chunkSignature = eq === -1 ? '' : ext.slice(eq + 1);
      }
    }
    if (this.#opts.signing !== undefined) {
      if (chunkSignature === undefined) throw malformed('a signed chunk has no chunk-signature.');
      if (!SIGNATURE_RE.test(chunkSignature)) {
        throw new S3AuthError('SignatureDoesNotMatch', 'The chunk signature is not 64 lower-case hex digits.');
      }
      this.#chunkSignature = chunkSignature;
    } else if (chunkSignature !== undefined) {
      throw malformed('chunk-signature in an unsigned aws-chunked body.');
    }
    this.#chunkCount++;
    if (size === 0) {
      this.#verifyChunk(EMPTY_SHA256_HEX);
      this.#state = 'trailer';
      return;
    }
    this.#chunkRemaining = size;
    this.#chunkHash = this.#opts.signing === undefined ? undefined : createHash('sha256');
    this.#state = 'data';
  }

  /** Verifies the current chunk's signature given the sha256 of its data, and chains it. */
  #verifyChunk(chunkSha256Hex: string): void {
    const signing = this.#opts.signing;
    if (signing === undefined) return;
    const sts = chunkStringToSign(signing.amzDate, signing.scope, this.#previousSignature, chunkSha256Hex);
    const expected = signature(signing.signingKey, sts);
    if (!constantTimeEqualHex(expected, this.#chunkSignature)) {
      throw new S3AuthError(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { ChunkNumber: String(this.#chunkCount), StringToSign: sts },
      );
    }
    this.#previousSignature = expected;
  }

  #onTrailerLine(line: string): void {
    if (line === '') {
      if (this.#opts.signing !== undefined && this.#opts.trailers && !this.#trailerSignatureVerified) {
        throw new S3AuthError('SignatureDoesNotMatch', 'The trailing headers are not signed (no x-amz-trailer-signature).');
      }
      this.#state = 'done';
      return;
    }
    if (!this.#opts.trailers) throw malformed('the final chunk is not followed by CRLF.');
    if (this.#trailerSignatureVerified) throw malformed('trailing header after x-amz-trailer-signature.');
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('trailing header without a name.');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'x-amz-trailer-signature') {
      const signing = this.#opts.signing;
      // An unsigned-trailer body has no signing context to check a trailer signature against;
      // it is ignored rather than trusted.
      if (signing === undefined) return;
      const canonical = canonicalTrailers(this.#trailers);
      const sts = trailerStringToSign(signing.amzDate, signing.scope, this.#previousSignature, sha256Hex(canonical));
      const expected = signature(signing.signingKey, sts);
      if (!constantTimeEqualHex(expected, value)) {
        throw new S3AuthError(
          'SignatureDoesNotMatch',
          'The trailer signature we calculated does not match the signature you provided.',
          { StringToSign: sts },
        );
      }
      this.#previousSignature = expected;
      this.#trailerSignatureVerified = true;
      return;
    }
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw malformed('invalid trailing header name.');
    if (this.#trailers.has(name)) throw malformed(`repeated trailing header ${name}.`);
    this.#trailers.set(name, value);
  }
}

function contentLengthOf(headers: AuthRequest['headers']): number | undefined {
  const v = headers['content-length'];
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/**
 * createPayloadVerifier returns a Transform that turns the raw request body into the object's
 * bytes while verifying it as `auth.payload` demands, and `result()` describing what it saw.
 * Errors (S3AuthError, through the stream's 'error'): XAmzContentSHA256Mismatch, IncompleteBody,
 * SignatureDoesNotMatch, InvalidChunkSizeError, InvalidRequest (malformed aws-chunked framing or
 * oversized trailers). See the module comment for the contract on bytes emitted before an error.
 */
export function createPayloadVerifier(
  auth: AuthResult,
  headers: AuthRequest['headers'],
  opts: PayloadVerifierOptions,
): { stream: Transform; result(): PayloadResult } {
  const mode = auth.payload;
  let complete = false;
  switch (mode.kind) {
    case 'sha256':
    case 'unsigned': {
      const hash = mode.kind === 'sha256' ? createHash('sha256') : undefined;
      const expectedLength = contentLengthOf(headers);
      let bytes = 0;
      const stream = new Transform({
        transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
          bytes += chunk.length;
          hash?.update(chunk);
          cb(null, chunk);
        },
        flush(cb: TransformCallback) {
          if (expectedLength !== undefined && bytes < expectedLength) {
            cb(new S3AuthError('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header.'));
            return;
          }
          if (hash !== undefined && mode.kind === 'sha256' && !constantTimeEqualHex(mode.hex, hash.digest('hex'))) {
            cb(
              new S3AuthError(
                'XAmzContentSHA256Mismatch',
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                { ClientComputedContentSHA256: mode.hex },
              ),
            );
            return;
          }
          complete = true;
          cb();
        },
      });
      return {
        stream,
        result: () => ({ complete, decodedLengthBytes: bytes, trailers: new Map(), chunkCount: 0 }),
      };
    }
    case 'streaming-signed':
    case 'streaming-signed-trailer':
    case 'streaming-unsigned-trailer': {
      const decoder = new AwsChunkedDecoder({
        ...opts,
        signing:
          mode.kind === 'streaming-unsigned-trailer'
            ? undefined
            : { signingKey: auth.signingKey, amzDate: auth.amzDate, scope: auth.scope, seedSignature: auth.seedSignature },
        trailers: mode.kind !== 'streaming-signed',
        decodedContentLengthBytes: mode.decodedContentLengthBytes,
      });
      const stream = new Transform({
        transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
          try {
            decoder.write(chunk, (data) => this.push(data));
          } catch (err) {
            cb(err as Error);
            return;
          }
          cb();
        },
        flush(cb: TransformCallback) {
          try {
            decoder.end();
          } catch (err) {
            cb(err as Error);
            return;
          }
          complete = true;
          cb();
        },
      });
      return {
        stream,
        result: () => ({
          complete,
          decodedLengthBytes: decoder.decodedLengthBytes,
          trailers: decoder.trailers,
          chunkCount: decoder.chunkCount,
        }),
      };
    }
    default:
      return unreachable(mode);
  }
}
