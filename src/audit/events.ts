/**
 * The audit events a node records (audit-log.ts): calls to its admin API that change something,
 * and every request it refused with 403. Built from the request's method, path and the caller's
 * access key id only: never a signature, token, secret or body.
 */
import type { AuditEvent } from './audit-log.ts';

/** Longest path kept in an event (object keys may be long). */
const PATH_CHARS_MAX = 1024;
/** Query parameters of admin calls worth keeping (ids and settings; none carries a secret). */
const ADMIN_FIELDS = ['id', 'address', 'role', 'r', 'w', 'status', 'admin', 'description'];

/** An admin API call as the audit log sees it (the shape of s3/context.ts AdminRequest). */
export interface AuditedAdminRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  accessKeyId: string;
}

/**
 * The event of an answered admin call, or undefined when there is nothing to record: reads (GET)
 * change nothing, and refusals (403) are recorded as denials by the response hook already.
 */
export function adminEvent(req: AuditedAdminRequest, res: { status: number; body?: unknown }): AuditEvent | undefined {
  if (req.method === 'GET' || req.method === 'HEAD' || res.status === 403) return undefined;
  const params: Record<string, string> = {};
  for (const name of ADMIN_FIELDS) {
    const value = req.query.get(name);
    if (value !== null) params[name] = value.slice(0, 256);
  }
  const event: AuditEvent = { kind: 'admin', action: `${req.method} ${req.path}`, actor: req.accessKeyId, status: res.status, params };
  // A new key's id is what later lines will name; its secret (also in the body) is not kept.
  const created = (res.body as { accessKeyId?: unknown } | undefined)?.accessKeyId;
  if (typeof created === 'string') event['accessKeyId'] = created;
  return event;
}

/** A request as the response hook sees it (fastify's request, narrowed). */
export interface AuditedRequest {
  id: string;
  method: string;
  url: string;
  ip: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The event of a request refused with 403. */
export function denialEvent(req: AuditedRequest, status: number): AuditEvent {
  const path = req.url.split('?', 1)[0] ?? '';
  return {
    kind: 'denied',
    action: `${req.method} ${path.slice(0, PATH_CHARS_MAX)}`,
    actor: accessKeyIdOf(req),
    status,
    requestId: req.id,
    ip: req.ip,
  };
}

/** The access key id a request claims (SigV4 header or query, SigV2), or ''; nothing else of the signature. */
export function accessKeyIdOf(req: { url: string; headers: Record<string, string | string[] | undefined> }): string {
  const auth = req.headers['authorization'];
  const header = typeof auth === 'string' ? auth : '';
  const v4 = /Credential=([^/,\s]{1,128})\//.exec(header);
  if (v4?.[1]) return v4[1];
  const v2 = /^AWS ([^:\s]{1,128}):/.exec(header);
  if (v2?.[1]) return v2[1];
  const query = new URLSearchParams(req.url.split('?')[1] ?? '');
  const credential = query.get('X-Amz-Credential') ?? '';
  const fromQuery = credential.split('/')[0] || query.get('AWSAccessKeyId') || '';
  return fromQuery.slice(0, 128);
}
