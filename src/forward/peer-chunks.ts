/**
 * PeerChunks: everything a node asks of its peers about chunks, each over the transport that fits.
 * Chunk bytes (put, get, read, has) take the chunk wire; inventories (small JSON) take the HTTP
 * endpoint. A peer advertised as https:// (behind a TLS proxy) gets everything over HTTP, since
 * the wire is plain TCP, and so does, for a while, a peer that answers the wire's upgrade with
 * anything but 101 (an older node during a rolling upgrade, a proxy that does not pass upgrades).
 */
import { HttpChunkClient } from './chunk-client.ts';
import { errorCode } from '../util/errors.ts';
import { ChunkWireClient, type ChunkWireClientStats, WIRE_ERR_UNSUPPORTED, type WireChunkBytes } from './chunk-wire.ts';

/** How long a peer that refused the wire's upgrade is served over HTTP before the wire is tried again. */
export const WIRE_UNSUPPORTED_RETRY_MS = 5 * 60_000;

/** Options of the peer chunk client. */
export interface PeerChunksOptions {
  clusterId: string;
  clusterSecret: string;
  /** Base S3 URL of a node, or undefined when it is not known (yet). */
  urlOf(nodeId: number): string | undefined;
  /** Largest chunk a fetch accepts. */
  chunkBytesMax: number;
  /** PEM CA that signs peers' HTTPS certificates, for https:// peers (see HttpChunkClient). */
  tlsCa?: Buffer;
}

/** Chunk transfer to and from peers. */
export class PeerChunks {
  readonly #urlOf: (nodeId: number) => string | undefined;
  readonly #http: HttpChunkClient;
  readonly #wire: ChunkWireClient;
  /** Peer URLs that refused the upgrade, and until when they get HTTP. */
  readonly #httpUntil = new Map<string, number>();
  #httpFallbacks = 0;

  constructor(options: PeerChunksOptions) {
    this.#urlOf = options.urlOf;
    this.#http = new HttpChunkClient(options);
    this.#wire = new ChunkWireClient(options);
  }

  put(nodeId: number, id: string, data: Uint8Array): Promise<void> {
    return this.#either(nodeId, () => this.#wire.put(nodeId, id, data), () => this.#http.put(nodeId, id, data));
  }

  get(nodeId: number, id: string): Promise<Buffer | undefined> {
    return this.#either(nodeId, () => this.#wire.get(nodeId, id), () => this.#http.get(nodeId, id));
  }

  /** Like get, into a recycled buffer (see ChunkWireClient.read). */
  read(nodeId: number, id: string): Promise<WireChunkBytes | undefined> {
    return this.#either(
      nodeId,
      () => this.#wire.read(nodeId, id),
      async () => {
        const bytes = await this.#http.get(nodeId, id);
        return bytes === undefined ? undefined : { bytes, release: () => undefined };
      },
    );
  }

  has(nodeId: number, id: string): Promise<boolean> {
    return this.#either(nodeId, () => this.#wire.has(nodeId, id), () => this.#http.has(nodeId, id));
  }

  inventoryDigests(nodeId: number, ranges: ReadonlyArray<{ start: number; end: number }>): Promise<string[]> {
    return this.#http.inventoryDigests(nodeId, ranges);
  }

  inventoryList(nodeId: number, range: { start: number; end: number }): Promise<string[]> {
    return this.#http.inventoryList(nodeId, range);
  }

  /** The wire client's counters, and how often a peer refused the wire and got HTTP instead. */
  stats(): ChunkWireClientStats & { ts3gw_chunk_wire_http_fallbacks_total: number } {
    return { ...this.#wire.stats(), ts3gw_chunk_wire_http_fallbacks_total: this.#httpFallbacks };
  }

  async close(): Promise<void> {
    await Promise.all([this.#wire.close(), this.#http.close()]);
  }

  /** The wire when the peer speaks it, else HTTP (unknown peers fail in the wire client, which says so). */
  async #either<T>(nodeId: number, wire: () => Promise<T>, http: () => Promise<T>): Promise<T> {
    const url = this.#urlOf(nodeId);
    if (url !== undefined && (!url.startsWith('http://') || (this.#httpUntil.get(url) ?? 0) > Date.now())) return http();
    try {
      return await wire();
    } catch (err) {
      if (url === undefined || errorCode(err) !== WIRE_ERR_UNSUPPORTED) throw err;
      this.#httpUntil.set(url, Date.now() + WIRE_UNSUPPORTED_RETRY_MS);
      this.#httpFallbacks++;
      return http();
    }
  }
}
