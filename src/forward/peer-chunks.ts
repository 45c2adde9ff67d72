/**
 * PeerChunks: everything a node asks of its peers about chunks, each over the transport that fits.
 * Chunk bytes (put, get, read, has) take the chunk wire; inventories (small JSON) take the HTTP
 * endpoint. A peer advertised as https:// (behind a TLS proxy) gets everything over HTTP, since
 * the wire is plain TCP.
 */
import { HttpChunkClient } from './chunk-client.ts';
import { ChunkWireClient, type WireChunkBytes } from './chunk-wire.ts';

/** Options of the peer chunk client. */
export interface PeerChunksOptions {
  clusterId: string;
  clusterSecret: string;
  /** Base S3 URL of a node, or undefined when it is not known (yet). */
  urlOf(nodeId: number): string | undefined;
  /** Largest chunk a fetch accepts. */
  chunkBytesMax: number;
}

/** Chunk transfer to and from peers. */
export class PeerChunks {
  readonly #urlOf: (nodeId: number) => string | undefined;
  readonly #http: HttpChunkClient;
  readonly #wire: ChunkWireClient;

  constructor(options: PeerChunksOptions) {
    this.#urlOf = options.urlOf;
    this.#http = new HttpChunkClient(options);
    this.#wire = new ChunkWireClient(options);
  }

  put(nodeId: number, id: string, data: Uint8Array): Promise<void> {
    return this.#viaWire(nodeId) ? this.#wire.put(nodeId, id, data) : this.#http.put(nodeId, id, data);
  }

  get(nodeId: number, id: string): Promise<Buffer | undefined> {
    return this.#viaWire(nodeId) ? this.#wire.get(nodeId, id) : this.#http.get(nodeId, id);
  }

  /** Like get, into a recycled buffer (see ChunkWireClient.read). */
  async read(nodeId: number, id: string): Promise<WireChunkBytes | undefined> {
    if (this.#viaWire(nodeId)) return this.#wire.read(nodeId, id);
    const bytes = await this.#http.get(nodeId, id);
    return bytes === undefined ? undefined : { bytes, release: () => undefined };
  }

  has(nodeId: number, id: string): Promise<boolean> {
    return this.#viaWire(nodeId) ? this.#wire.has(nodeId, id) : this.#http.has(nodeId, id);
  }

  inventoryDigests(nodeId: number, ranges: ReadonlyArray<{ start: number; end: number }>): Promise<string[]> {
    return this.#http.inventoryDigests(nodeId, ranges);
  }

  inventoryList(nodeId: number, range: { start: number; end: number }): Promise<string[]> {
    return this.#http.inventoryList(nodeId, range);
  }

  async close(): Promise<void> {
    await Promise.all([this.#wire.close(), this.#http.close()]);
  }

  /** Unknown peers fail in the wire client, which says so. */
  #viaWire(nodeId: number): boolean {
    return this.#urlOf(nodeId)?.startsWith('http://') ?? true;
  }
}
