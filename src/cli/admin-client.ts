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

/** GET /nodes as the failover needs it. */
interface NodesListing {
  nodes: Array<{ nodeId: number; s3Url?: string }>;
}

/**
 * The admin API of a cluster rather than of one node: requests go to one node, and when it stops
 * answering (killed, restarting, partitioned away) to the next one that does. The endpoints are
 * the one given and every registered node's S3 URL, the node the command is about last (a
 * leaving node stops hearing the log once removed, a dead one answers nothing).
 */
export class FailoverTarget {
  readonly #targets: AdminTarget[];
  #current = 0;
  readonly #onSwitch: (from: string, to: string, why: string) => void;

  private constructor(targets: AdminTarget[], onSwitch: (from: string, to: string, why: string) => void) {
    this.#targets = targets;
    this.#onSwitch = onSwitch;
  }

  /** Learns the members from `target`; `lastNodeId` goes to the end of the list. */
  static async discover(target: AdminTarget, lastNodeId: number | undefined, onSwitch: (from: string, to: string, why: string) => void = () => {}): Promise<FailoverTarget> {
    const res = await adminRequest<NodesListing>(target, 'GET', '/nodes');
    const nodes = res.status === 200 && Array.isArray(res.body.nodes) ? res.body.nodes : [];
    const origin = new URL(target.endpoint).origin;
    const urlOf = (n: { s3Url?: string }) => (n.s3Url ? new URL(n.s3Url).origin : undefined);
    const last = nodes.filter((n) => n.nodeId === lastNodeId).map(urlOf);
    const others = nodes.filter((n) => n.nodeId !== lastNodeId).map(urlOf);
    const ordered = [...(last.includes(origin) ? [] : [origin]), ...others, ...last].filter((u): u is string => u !== undefined);
    const unique = [...new Set(ordered)];
    return new FailoverTarget(
      unique.map((endpoint) => ({ ...target, endpoint })),
      onSwitch,
    );
  }

  /** The endpoint asked now. */
  get endpoint(): string {
    return this.#targets[this.#current]!.endpoint;
  }

  /** The admin target of a node's own URL (its maintenance view), with the same credentials. */
  at(endpoint: string): AdminTarget {
    return { ...this.#targets[0]!, endpoint };
  }

  /**
   * One request, to the current node or, if it does not answer (a network error or a 503 of a
   * node without a leader), to each other one in turn; throws the last error if none answers.
   */
  async request<T>(method: string, path: string, query: Record<string, string | number> = {}): Promise<AdminAnswer<T>> {
    let lastError: unknown;
    for (let tried = 0; tried < this.#targets.length; tried++) {
      const target = this.#targets[this.#current]!;
      try {
        const res = await adminRequest<T>(target, method, path, query);
        if (res.status !== 503 || tried === this.#targets.length - 1) return res;
        lastError = new Error(`${target.endpoint} answered 503`);
      } catch (err) {
        lastError = err;
      }
      const next = (this.#current + 1) % this.#targets.length;
      if (next !== this.#current) this.#onSwitch(target.endpoint, this.#targets[next]!.endpoint, String((lastError as Error)?.message ?? lastError));
      this.#current = next;
    }
    throw lastError;
  }
}
