/**
 * Per-request context handed to every handler, and small header helpers.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ObjectService } from '../objects/object-service.ts';
import type { Clock } from '../util/clock.ts';
import type { AuthResult } from './auth/authenticate.ts';
import type { RequestAccess } from './authz/access.ts';
import type { KeyBucketPermission } from '../objects/types.ts';
import type { InternalChunks, InternalJoin } from './internal.ts';
import { S3Error } from './errors.ts';
import type { RequestTarget } from './names.ts';

/** Limits of the S3 front end, each a named bound (TigerStyle: put a limit on everything). */
export interface S3Limits {
  /** Largest XML request body (DeleteObjects with 1000 keys of 1024 bytes fits). */
  xmlBodyBytesMax: number;
  /** Largest aws-chunked chunk accepted from a client. */
  chunkBytesMax: number;
  /** Largest trailer section of an aws-chunked body. */
  trailerBytesMax: number;
  /** Total size of user metadata (x-amz-meta-* names and values), as AWS's 2 KB rule. */
  userMetaBytesMax: number;
}

/** Options of the S3 front end. */
export interface S3Options {
  region: string;
  /** Base domain for virtual-hosted-style requests (`bucket.<domain>`); path-style only when unset. */
  domain?: string;
  limits: S3Limits;
  /** Serve HTTPS with this certificate and key (PEM); plain HTTP when unset. Swapped at run time through the server's setSecureContext. */
  tls?: { cert: Buffer; key: Buffer };
}

/** Dependencies of the S3 front end. */
export interface S3Deps {
  objects: ObjectService;
  clock: Clock;
  /** Secret of an access key, or undefined when the key is unknown. */
  lookupSecret(accessKeyId: string): string | undefined;
  /** Owner id (canonical user) of an access key. */
  ownerOf(accessKeyId: string): string;
  /**
   * True for keys that pass every ACL check (the root key and admin keys: the cluster operator);
   * nobody when absent.
   */
  isSuperuser?(accessKeyId: string): boolean;
  /** The per-bucket permissions of a scoped key (issue #18); undefined for unscoped keys. */
  keyScope?(accessKeyId: string): ReadonlyMap<string, KeyBucketPermission> | undefined;
  /** Readiness for /health/ready. */
  isReady(): boolean;
  /**
   * Operator API under /_ts3gw/admin/… ('_' is illegal in bucket names, so it can never shadow a
   * bucket). Requests reach it only after SigV4 authentication; the node decides what to allow.
   */
  admin?(request: AdminRequest): Promise<AdminResponse>;
  /** The internal chunk endpoint (/_ts3gw/chunks/<id>) for other nodes of the cluster. */
  internalChunks?: InternalChunks;
  /** The join endpoint (/_ts3gw/join) for nodes asking to be admitted. */
  join?: InternalJoin;
  /** Prometheus exposition for /metrics, if metrics are on. */
  metricsText?(): Promise<{ contentType: string; body: string }>;
  /** Called once per answered request, for request metrics. */
  observeRequest?(method: string, status: number, seconds: number): void;
}

/** An authenticated operator request. */
export interface AdminRequest {
  method: string;
  /** Path below /_ts3gw/admin, e.g. "/cluster". */
  path: string;
  query: URLSearchParams;
  accessKeyId: string;
}

/** The answer to an operator request, sent as JSON. */
export interface AdminResponse {
  status: number;
  body: unknown;
}

/** Everything a handler needs about the request it serves. */
export interface RequestContext {
  req: FastifyRequest;
  reply: FastifyReply;
  target: RequestTarget;
  auth: AuthResult;
  /** The requester's canonical user id ('' for an anonymous request). */
  owner: string;
  /** Who asks and what they may do (ACLs, Object Ownership). */
  access: RequestAccess;
  requestId: string;
  options: S3Options;
  deps: S3Deps;
}

/** A single header value (first of repeats), or undefined. */
export function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Parses an HTTP date header; undefined when absent or unparseable (ignored, as HTTP says). */
export function dateHeader(req: FastifyRequest, name: string): number | undefined {
  const value = header(req, name);
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** HTTP-date (RFC 7231 IMF-fixdate) of epoch ms. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** ISO 8601 with milliseconds, as S3 XML timestamps. */
export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** A non-negative integer query parameter, within [0, max]; InvalidArgument otherwise. */
export function intParam(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new S3Error('InvalidArgument', `Provided ${name} not an integer or within integer range`, { ArgumentName: name, ArgumentValue: raw });
  return Math.min(Number(raw), max);
}
