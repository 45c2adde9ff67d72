/**
 * A client of the operator API (/_ts3gw/admin/… on any node's S3 port), SigV4-signed with the
 * root key like any S3 request. The signing reuses the server's own SigV4 steps
 * (src/s3/auth/sigv4.ts), so client and server cannot drift apart.
 */
import {
  canonicalHeaders,
  canonicalQueryString,
  canonicalRequest,
  credentialScope,
  EMPTY_SHA256_HEX,
  SIGV4_ALGORITHM,
  sha256Hex,
  signature,
  signingKey,
  stringToSign,
} from '../s3/auth/sigv4.ts';

/** Where the API is and who asks. */
export interface AdminTarget {
  /** Base URL of any node's S3 port, e.g. http://127.0.0.1:9000 */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** An answer of the API. */
export interface AdminAnswer<T = unknown> {
  status: number;
  body: T;
}

/** Per-request deadline: the API answers from memory or after one Raft round. */
export const ADMIN_REQUEST_TIMEOUT_MS = 30_000;

/** Signs and sends one request; the body of the answer is parsed JSON. */
export async function adminRequest<T = unknown>(target: AdminTarget, method: string, path: string, query: Record<string, string | number> = {}): Promise<AdminAnswer<T>> {
  const url = new URL(`/_ts3gw/admin${path}`, target.endpoint);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, String(v));
  const rawQuery = url.search.replace(/^\?/, '');
  const now = new Date();
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = { host: url.host, 'x-amz-content-sha256': EMPTY_SHA256_HEX, 'x-amz-date': amzDate };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonical = canonicalRequest(method, url.pathname, canonicalQueryString(rawQuery), canonicalHeaders(headers, names), signedHeaders, EMPTY_SHA256_HEX);
  const scope = credentialScope(day, target.region, 's3');
  const sig = signature(signingKey(target.secretAccessKey, day, target.region, 's3'), stringToSign(amzDate, scope, sha256Hex(canonical)));
  const res = await fetch(url, {
    method,
    headers: { ...headers, authorization: `${SIGV4_ALGORITHM} Credential=${target.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${sig}` },
    signal: AbortSignal.timeout(ADMIN_REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as T };
  } catch {
    // An S3 XML error (bad signature, unknown key) or a proxy's page: keep the text.
    return { status: res.status, body: { error: `HTTP ${res.status}`, message: text.slice(0, 500) } as T };
  }
}
