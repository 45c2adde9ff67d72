/**
 * HttpChunkClient: moves chunk bytes between nodes over HTTP with undici pools, one pool per peer
 * S3 port, to each node's internal endpoint /_ts3gw/chunks/<id>. Bulk bytes take HTTP rather than
 * gRPC (protobuf framing and copies cost more for multi-MiB payloads); control stays on gRPC.
 * Calls carry the cluster id and a fresh peer auth token each (never the secret), and the id of
 * the S3 request they serve (util/request-id.ts); every call has a deadline.
 */
import { rootCertificates } from 'node:tls';
import { type Dispatcher, Pool } from 'undici';
import { isChunkId } from '../util/chunk-id.ts';
import { peerAuthKey, peerAuthToken } from '../util/peer-auth.ts';
import { requestIdHeaders } from '../util/request-id.ts';
import { INTERNAL_AUTH_HEADER, INTERNAL_CLUSTER_HEADER } from './chunk-wire.ts';

/** Connections kept per peer. */
export const CHUNK_POOL_CONNECTIONS_MAX = 16;
/** A chunk transfer that makes no progress for this long fails (and another copy is tried). */
export const CHUNK_TRANSFER_TIMEOUT_MS = 30_000;

/** Options of the chunk client. */
export interface HttpChunkClientOptions {
  clusterId: string;
  clusterSecret: string;
  /** Base S3 URL of a node, or undefined when it is not known (yet). */
  urlOf(nodeId: number): string | undefined;
  /** PEM CA that signs peers' HTTPS certificates (besides the public roots), for https:// peers. */
  tlsCa?: Buffer;
}

/** Chunk transfer over HTTP. */
export class HttpChunkClient {
  readonly #options: HttpChunkClientOptions;
  readonly #pools = new Map<string, Pool>();

  readonly #authKey: Buffer;

  constructor(options: HttpChunkClientOptions) {
    this.#options = options;
    this.#authKey = peerAuthKey(options.clusterSecret);
  }

  async put(nodeId: number, id: string, data: Uint8Array): Promise<void> {
    const res = await this.#pool(nodeId).request({
      method: 'PUT',
      path: `/_ts3gw/chunks/${id}`,
      headers: { ...this.#auth(), 'content-length': String(data.byteLength), 'content-type': 'application/octet-stream' },
      body: data,
      headersTimeout: CHUNK_TRANSFER_TIMEOUT_MS,
      bodyTimeout: CHUNK_TRANSFER_TIMEOUT_MS,
    });
    const text = await res.body.text();
    if (res.statusCode !== 204) throw new Error(`node ${nodeId} refused chunk ${id}: ${res.statusCode} ${text.slice(0, 200)}`);
  }

  async get(nodeId: number, id: string): Promise<Buffer | undefined> {
    const res = await this.#request(nodeId, 'GET', `/_ts3gw/chunks/${id}`);
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw new Error(`node ${nodeId} could not serve chunk ${id}: ${res.statusCode}`);
    return body;
  }

  /**
   * The chunk's bytes as they arrive, unverified (the consumer verifies, e.g. by handing them to
   * DiskChunkStore.putStream), or undefined when the node lacks it. The body must be consumed or
   * dumped, or its connection stays busy. A copy the peer finds corrupt arrives truncated, and
   * the body fails.
   */
  async openRead(nodeId: number, id: string): Promise<{ sizeBytes: number; body: AsyncIterable<Buffer> } | undefined> {
    const res = await this.#request(nodeId, 'GET', `/_ts3gw/chunks/${id}`);
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    const sizeBytes = Number(res.headers['content-length']);
    if (res.statusCode !== 200 || !Number.isSafeInteger(sizeBytes)) {
      await res.body.dump();
      throw new Error(`node ${nodeId} could not serve chunk ${id}: ${res.statusCode}`);
    }
    return { sizeBytes, body: res.body };
  }

  /** True when the node holds a copy of the chunk that verifies against its id (HEAD). */
  async has(nodeId: number, id: string): Promise<boolean> {
    const res = await this.#request(nodeId, 'HEAD', `/_ts3gw/chunks/${id}`);
    await res.body.dump();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    throw new Error(`node ${nodeId} could not check chunk ${id}: ${res.statusCode}`);
  }

  /**
   * Anti-entropy: the node's inventory digests of the chunks it holds in each range (positions
   * (start, end], see chunks/inventory.ts), one per range in order.
   */
  async inventoryDigests(nodeId: number, ranges: ReadonlyArray<{ start: number; end: number }>): Promise<string[]> {
    const body = JSON.stringify({ ranges: ranges.flatMap((r) => [r.start, r.end]) });
    const res = await this.#pool(nodeId).request({
      method: 'POST',
      path: '/_ts3gw/chunks/inventory',
      headers: { ...this.#auth(), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      body,
      headersTimeout: CHUNK_TRANSFER_TIMEOUT_MS,
      bodyTimeout: CHUNK_TRANSFER_TIMEOUT_MS,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`node ${nodeId} could not send inventory digests: ${res.statusCode} ${text.slice(0, 200)}`);
    const digests = (JSON.parse(text) as { digests?: unknown }).digests;
    if (!Array.isArray(digests) || digests.length !== ranges.length || !digests.every((d) => typeof d === 'string')) {
      throw new Error(`node ${nodeId} sent a malformed inventory digest answer`);
    }
    return digests as string[];
  }

  /** Anti-entropy: the sorted ids of the chunks the node holds in one range. */
  async inventoryList(nodeId: number, range: { start: number; end: number }): Promise<string[]> {
    const res = await this.#request(nodeId, 'GET', `/_ts3gw/chunks/inventory?start=${range.start}&end=${range.end}`);
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`node ${nodeId} could not list its inventory: ${res.statusCode} ${text.slice(0, 200)}`);
    const ids = (JSON.parse(text) as { ids?: unknown }).ids;
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && isChunkId(id))) {
      throw new Error(`node ${nodeId} sent a malformed inventory listing`);
    }
    return ids as string[];
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
    this.#pools.clear();
  }

  #pool(nodeId: number): Pool {
    const url = this.#options.urlOf(nodeId);
    if (!url) throw new Error(`no address known for node ${nodeId}`);
    let pool = this.#pools.get(url);
    if (!pool) {
      const ca = this.#options.tlsCa ? { connect: { ca: [...rootCertificates, this.#options.tlsCa.toString('utf8')] } } : {};
      pool = new Pool(url, { connections: CHUNK_POOL_CONNECTIONS_MAX, keepAliveTimeout: 30_000, ...ca });
      this.#pools.set(url, pool);
    }
    return pool;
  }

  /** A bodyless authenticated request to a node's internal chunk endpoint, with the transfer deadlines. */
  #request(nodeId: number, method: 'GET' | 'HEAD', path: string): Promise<Dispatcher.ResponseData> {
    return this.#pool(nodeId).request({
      method,
      path,
      headers: this.#auth(),
      headersTimeout: CHUNK_TRANSFER_TIMEOUT_MS,
      bodyTimeout: CHUNK_TRANSFER_TIMEOUT_MS,
    });
  }

  #auth(): Record<string, string> {
    return { [INTERNAL_CLUSTER_HEADER]: this.#options.clusterId, [INTERNAL_AUTH_HEADER]: peerAuthToken(this.#authKey, 'chunks', this.#options.clusterId), ...requestIdHeaders() };
  }
}
