/**
 * The chunk wire: how nodes move chunk bytes to each other. A connection opens as an HTTP/1.1
 * request on the peer's S3 port (GET /_ts3gw/chunks/wire, `Upgrade: ts3gw-chunks/1`, the cluster
 * id header and a fresh peer auth token, util/peer-auth.ts, as the HTTP chunk endpoint takes them
 * too; the secret itself never travels) and, once answered 101, carries binary
 * frames, one request at a time, each answered before the next is sent:
 *
 *   request  op (1 byte: 'P' put, 'G' get, 'H' has), 3 zero bytes, body length (u64 BE; 0 but
 *            for a put), chunk id (32 bytes: the raw sha256); a put's bytes follow
 *   answer   status (1 byte, WIRE_STATUS_*), body length (u64 BE), body (a get's chunk bytes, or
 *            the text of a refusal or error; empty otherwise)
 *
 * Why not HTTP bodies (the endpoint in s3/internal.ts still serves them): node:http and undici
 * read every socket into a fresh buffer, copy it again into the body stream and emit an event per
 * piece; for multi-MiB payloads that churn cost more CPU than the bytes' hashing
 * (`npm run bench:cluster`). Here both ends read with `onread` into memory they own: a get's
 * bytes land in the buffer handed to the caller, a put's in a buffer the serving session reuses,
 * and no read crosses a frame (each read asks for exactly what the frame still misses). The
 * upgrade keeps one port per node (nothing new to configure or open) and reuses its auth.
 */
import net from 'node:net';
import { isChunkId } from '../util/chunk-id.ts';
import { StoreError } from '../util/errors.ts';
import { PEER_AUTH_HEADER, peerAuthKey, peerAuthToken } from '../util/peer-auth.ts';

export const WIRE_PROTOCOL = 'ts3gw-chunks/1';
export const WIRE_PATH = '/_ts3gw/chunks/wire';
/** Size of a request frame's header. */
export const WIRE_REQUEST_BYTES = 44;
/** Size of an answer frame's header. */
export const WIRE_ANSWER_HEAD_BYTES = 9;
export const WIRE_OP_PUT = 0x50; // 'P'
export const WIRE_OP_GET = 0x47; // 'G'
export const WIRE_OP_HAS = 0x48; // 'H'
/** Done: stored, here are the bytes, or the copy verifies. */
export const WIRE_STATUS_OK = 0;
/** This node has no (good) copy. */
export const WIRE_STATUS_NOT_FOUND = 1;
/** The request was wrong (bytes that do not hash to the id, too large): do not retry as is. */
export const WIRE_STATUS_REFUSED = 2;
/** The node failed (disk, closing): another copy may do. */
export const WIRE_STATUS_ERROR = 3;
/**
 * The peer answered the upgrade with something other than 101 or 403: it does not speak the
 * chunk wire (an older node, a proxy in between). Callers may fall back to the HTTP endpoint.
 */
export const WIRE_ERR_UNSUPPORTED = 'WIRE_ERR_UNSUPPORTED';

/** Longest refusal or error text an answer carries. */
export const WIRE_MESSAGE_BYTES_MAX = 4096;

/** Header names of inter-node authentication on the S3 port (HTTP endpoint and wire upgrade). */
export const INTERNAL_CLUSTER_HEADER = 'x-ts3gw-cluster-id';
export const INTERNAL_AUTH_HEADER = PEER_AUTH_HEADER;

/** Longest answer to the upgrade request (a 101, or a refusal with a short body). */
const HANDSHAKE_BYTES_MAX = 2048;
/** Connections kept per peer. */
export const WIRE_CONNECTIONS_PER_PEER_MAX = 16;
/**
 * A transfer that makes no progress for this long fails (and another copy is tried); an idle
 * pooled connection is closed after as long. Serving sessions wait longer
 * (WIRE_SESSION_IDLE_MS), so an idle connection is normally closed by the side that would reuse it.
 */
export const WIRE_TIMEOUT_MS = 30_000;
/**
 * Size of the landing buffers read() recycles: the default chunk size. (A fresh 4 MiB buffer per
 * fetched chunk cost this VM ~1.3 ms of CPU per MiB, five times the transfer itself: page faults
 * on first touch and the garbage collections that external memory growth sets off.)
 */
export const WIRE_READ_BUFFER_BYTES = 4 * 1024 * 1024;
/** Released landing buffers kept for reuse (32 MiB); more concurrent reads allocate fresh ones. */
export const WIRE_READ_BUFFERS_KEPT_MAX = 8;
export const WIRE_SESSION_IDLE_MS = 2 * WIRE_TIMEOUT_MS;

/** Writes a request header into `into` (WIRE_REQUEST_BYTES). */
export function encodeWireRequest(into: Buffer, op: number, length: number, id: string): Buffer {
  into.fill(0, 0, 4);
  into[0] = op;
  into.writeBigUInt64BE(BigInt(length), 4);
  into.write(id, 12, 32, 'hex');
  return into;
}

/** Writes an answer header into `into` (WIRE_ANSWER_HEAD_BYTES). */
export function encodeWireAnswerHead(into: Buffer, status: number, length: number): Buffer {
  into[0] = status;
  into.writeBigUInt64BE(BigInt(length), 1);
  return into;
}

/** An answer as the client got it. */
export interface WireAnswer {
  status: number;
  /** A get's bytes (exactly their length, owned by the caller) or a message (other statuses). */
  body: Buffer;
}

/** A chunk fetched into a recycled buffer (ChunkWireClient.read). */
export interface WireChunkBytes {
  /** The bytes as the node sent them (unverified: the caller verifies). */
  bytes: Buffer;
  /**
   * Gives the buffer back for reuse by a later read. Call it once nothing refers to the bytes
   * any more (e.g. after they were written to the local store), or not at all when unsure.
   */
  release(): void;
}

/** Counters of the client, named as the node's Prometheus metrics (read at scrape time). */
export interface ChunkWireClientStats {
  /** Connections open now, to all peers. */
  ts3gw_chunk_wire_client_connections: number;
  ts3gw_chunk_wire_client_requests_total: number;
  /** Requests that failed (connection lost, timeout, refused upgrade), retries not counted. */
  ts3gw_chunk_wire_client_failures_total: number;
  /** Requests sent again after a pooled connection turned out closed. */
  ts3gw_chunk_wire_client_retries_total: number;
  ts3gw_chunk_wire_client_sent_bytes_total: number;
  ts3gw_chunk_wire_client_received_bytes_total: number;
}

/** Options of the chunk wire client. */
export interface ChunkWireClientOptions {
  clusterId: string;
  clusterSecret: string;
  /** Base S3 URL (http://host:port) of a node, or undefined when it is not known (yet). */
  urlOf(nodeId: number): string | undefined;
  /** Largest chunk a get accepts: bounds what one answer may make this node allocate. */
  chunkBytesMax: number;
  connectionsPerPeer?: number;
  timeoutMs?: number;
}

/** Calls to one peer: its open connections, the idle ones among them, callers waiting for one. */
interface Peer {
  readonly host: string;
  readonly port: number;
  readonly all: Set<WireConnection>;
  idle: WireConnection[];
  readonly waiting: Array<() => void>;
}

/**
 * Chunk transfer over the chunk wire: a pool of connections per peer, each carrying one request
 * at a time. A request that fails on a connection that had been idle in the pool, before any byte
 * of its answer, is sent once more on a fresh connection (the peer may have closed the idle one
 * as the request left); every operation is idempotent (chunks are named by their bytes).
 */
export class ChunkWireClient {
  readonly #options: ChunkWireClientOptions;
  readonly #peers = new Map<string, Peer>();
  readonly #clusterId: string;
  readonly #authKey: Buffer;
  readonly #connectionsMax: number;
  readonly #timeoutMs: number;
  /** Landing buffers of released reads (WIRE_READ_BUFFER_BYTES each). */
  readonly #spare: Buffer[] = [];
  readonly #stats: Omit<ChunkWireClientStats, 'ts3gw_chunk_wire_client_connections'> = {
    ts3gw_chunk_wire_client_requests_total: 0,
    ts3gw_chunk_wire_client_failures_total: 0,
    ts3gw_chunk_wire_client_retries_total: 0,
    ts3gw_chunk_wire_client_sent_bytes_total: 0,
    ts3gw_chunk_wire_client_received_bytes_total: 0,
  };
  #closed = false;

  constructor(options: ChunkWireClientOptions) {
    this.#options = options;
    this.#connectionsMax = options.connectionsPerPeer ?? WIRE_CONNECTIONS_PER_PEER_MAX;
    this.#timeoutMs = options.timeoutMs ?? WIRE_TIMEOUT_MS;
    // It goes into a hand-written request head: nothing may end a header line early.
    if (/[\r\n\0]/.test(options.clusterId)) throw new TypeError('cluster id must not contain line breaks or NUL');
    this.#clusterId = options.clusterId;
    this.#authKey = peerAuthKey(options.clusterSecret);
  }

  /** The upgrade request of a new connection, with a token of its own (a token is good once). */
  #upgradeHead(): string {
    return (
      `GET ${WIRE_PATH} HTTP/1.1\r\nHost: node\r\nConnection: Upgrade\r\nUpgrade: ${WIRE_PROTOCOL}\r\n` +
      `${INTERNAL_CLUSTER_HEADER}: ${this.#clusterId}\r\n${INTERNAL_AUTH_HEADER}: ${peerAuthToken(this.#authKey, 'chunks', this.#clusterId)}\r\n\r\n`
    );
  }

  /** Stores `data` as chunk `id` on the node; resolves once the node holds it durably. */
  async put(nodeId: number, id: string, data: Uint8Array): Promise<void> {
    const answer = await this.#call(nodeId, WIRE_OP_PUT, id, data);
    if (answer.status !== WIRE_STATUS_OK) throw new Error(`node ${nodeId} refused chunk ${id}: ${describe(answer)}`);
  }

  /** The chunk's bytes as the node sent them (unverified: the caller verifies), or undefined when it has no good copy. */
  async get(nodeId: number, id: string): Promise<Buffer | undefined> {
    const answer = await this.#call(nodeId, WIRE_OP_GET, id, undefined);
    if (answer.status === WIRE_STATUS_NOT_FOUND) return undefined;
    if (answer.status !== WIRE_STATUS_OK) throw new Error(`node ${nodeId} could not serve chunk ${id}: ${describe(answer)}`);
    return answer.body;
  }

  /** Like get, into a recycled buffer the caller gives back with release(). */
  async read(nodeId: number, id: string): Promise<WireChunkBytes | undefined> {
    let landing: Buffer | undefined;
    const answer = await this.#call(nodeId, WIRE_OP_GET, id, undefined, (length) => {
      if (length > WIRE_READ_BUFFER_BYTES) return Buffer.allocUnsafe(length);
      landing = this.#spare.pop() ?? Buffer.allocUnsafe(WIRE_READ_BUFFER_BYTES);
      return landing.subarray(0, length);
    });
    if (answer.status === WIRE_STATUS_NOT_FOUND) return undefined;
    if (answer.status !== WIRE_STATUS_OK) throw new Error(`node ${nodeId} could not serve chunk ${id}: ${describe(answer)}`);
    let released = false;
    return {
      bytes: answer.body,
      release: () => {
        if (released) return;
        released = true;
        if (landing && this.#spare.length < WIRE_READ_BUFFERS_KEPT_MAX) this.#spare.push(landing);
      },
    };
  }

  /** True when the node holds a copy of the chunk that verifies against its id. */
  async has(nodeId: number, id: string): Promise<boolean> {
    const answer = await this.#call(nodeId, WIRE_OP_HAS, id, undefined);
    if (answer.status === WIRE_STATUS_OK) return true;
    if (answer.status === WIRE_STATUS_NOT_FOUND) return false;
    throw new Error(`node ${nodeId} could not check chunk ${id}: ${describe(answer)}`);
  }

  stats(): ChunkWireClientStats {
    let connections = 0;
    for (const peer of this.#peers.values()) connections += peer.all.size;
    return { ts3gw_chunk_wire_client_connections: connections, ...this.#stats };
  }

  /** Closes every connection; calls in flight fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const peer of this.#peers.values()) {
      for (const conn of peer.all) conn.destroy(new Error('chunk wire client closed'));
      for (const wake of peer.waiting.splice(0)) wake();
    }
    this.#peers.clear();
  }

  /** One request, retried once on a fresh connection when a pooled one turned out closed. */
  async #call(nodeId: number, op: number, id: string, data: Uint8Array | undefined, landing?: Landing): Promise<WireAnswer> {
    // The id is written as 32 raw bytes: anything else would leave another id's bytes behind.
    if (!isChunkId(id)) throw new TypeError(`not a chunk id: ${id}`);
    const url = this.#options.urlOf(nodeId);
    if (!url) throw new Error(`no address known for node ${nodeId}`);
    const peer = this.#peer(url);
    const stats = this.#stats;
    stats.ts3gw_chunk_wire_client_requests_total++;
    for (let attempt = 0; ; attempt++) {
      let conn: WireConnection;
      try {
        conn = await this.#acquire(peer);
      } catch (err) {
        stats.ts3gw_chunk_wire_client_failures_total++;
        throw err;
      }
      const wasIdle = conn.answers > 0;
      try {
        const answer = await conn.call(op, id, data, op === WIRE_OP_GET ? this.#options.chunkBytesMax : 0, landing);
        this.#release(peer, conn);
        stats.ts3gw_chunk_wire_client_sent_bytes_total += data?.byteLength ?? 0;
        if (answer.status === WIRE_STATUS_OK) stats.ts3gw_chunk_wire_client_received_bytes_total += answer.body.length;
        return answer;
      } catch (err) {
        // The connection is gone (call() destroys it on any failure). The peer closed it while
        // it sat in the pool; the others idle there as long are likely closed too.
        if (attempt === 0 && wasIdle && !conn.answerStarted && !conn.timedOut && !this.#closed) {
          for (const stale of peer.idle.splice(0)) stale.destroy(new Error('idle connection replaced'));
          stats.ts3gw_chunk_wire_client_retries_total++;
          continue;
        }
        stats.ts3gw_chunk_wire_client_failures_total++;
        throw err;
      }
    }
  }

  #peer(url: string): Peer {
    let peer = this.#peers.get(url);
    if (!peer) {
      const parsed = new URL(url);
      if (parsed.protocol !== 'http:') throw new Error(`the chunk wire speaks plain TCP; ${url} is not http://`);
      const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
      peer = { host, port: Number(parsed.port || 80), all: new Set(), idle: [], waiting: [] };
      this.#peers.set(url, peer);
    }
    return peer;
  }

  async #acquire(peer: Peer): Promise<WireConnection> {
    for (;;) {
      if (this.#closed) throw new Error('chunk wire client closed');
      const idle = peer.idle.pop();
      if (idle) return idle;
      if (peer.all.size < this.#connectionsMax) {
        const conn = new WireConnection(peer.host, peer.port, this.#upgradeHead(), this.#timeoutMs, () => {
          peer.all.delete(conn);
          peer.idle = peer.idle.filter((c) => c !== conn);
          peer.waiting.shift()?.();
        });
        peer.all.add(conn);
        await conn.ready;
        return conn;
      }
      await new Promise<void>((resolve) => peer.waiting.push(resolve));
    }
  }

  #release(peer: Peer, conn: WireConnection): void {
    if (this.#closed || conn.closed) return;
    peer.idle.push(conn);
    peer.waiting.shift()?.();
  }
}

function describe(answer: WireAnswer): string {
  const name = ['ok', 'not found', 'refused', 'error'][answer.status] ?? `status ${answer.status}`;
  return answer.body.length > 0 ? `${name}: ${answer.body.toString('utf8')}` : name;
}

/** Where an OK answer's body of `length` bytes lands (a fresh buffer when not given). */
type Landing = (length: number) => Buffer;

/** What a connection is reading. */
type Phase = 'handshake' | 'idle' | 'head' | 'body' | 'closed';

/**
 * One client connection. `onread` lands every read where the current frame wants it: the upgrade
 * answer in #head, an answer's header in #head, its body straight in the buffer the caller gets.
 * Node asks for the next read's buffer right after each read, so while idle the buffer offered
 * is the start of the next answer's header (nothing else may arrive before a request).
 */
class WireConnection {
  readonly ready: Promise<void>;
  /** Answers received so far. */
  answers = 0;
  /** A byte of the current answer arrived (a failure after that is not a stale connection). */
  answerStarted = false;
  timedOut = false;
  closed = false;
  readonly #socket: net.Socket;
  readonly #head = Buffer.allocUnsafe(HANDSHAKE_BYTES_MAX);
  readonly #request = Buffer.alloc(WIRE_REQUEST_BYTES);
  #phase: Phase = 'handshake';
  #filled = 0;
  #body: Buffer | undefined;
  #status = 0;
  /** Largest body the current answer may have when it is OK. */
  #okBytesMax = 0;
  #landing: Landing | undefined;
  #settle: ((err: Error | undefined) => void) | undefined;
  /** Settles once the socket no longer refers to the put's bytes (written, or the socket closed). */
  #written: (() => void) | undefined;
  readonly #onClose: () => void;

  constructor(host: string, port: number, upgrade: string, timeoutMs: number, onClose: () => void) {
    this.#onClose = onClose;
    this.ready = new Promise<void>((resolve, reject) => {
      this.#settle = (err) => (err ? reject(err) : resolve());
    });
    this.#socket = net.connect({
      host,
      port,
      noDelay: true,
      onread: { buffer: () => this.#nextBuffer(), callback: (n: number) => this.#onRead(n) },
    });
    this.#socket.setKeepAlive(true, timeoutMs);
    this.#socket.setTimeout(timeoutMs, () => {
      if (this.#phase === 'idle') {
        this.destroy(new Error('idle'));
        return;
      }
      this.timedOut = true;
      this.destroy(new Error(`chunk wire to ${host}:${port}: no progress for ${timeoutMs} ms`));
    });
    this.#socket.on('error', (err) => this.destroy(err));
    this.#socket.on('close', () => {
      this.destroy(new Error(`chunk wire to ${host}:${port} closed`));
      // A closed handle refers to no bytes any more, whether or not a write callback came.
      this.#wrote();
    });
    this.#socket.once('connect', () => this.#socket.write(upgrade));
  }

  /** Sends one request and resolves with its answer. At most one at a time. */
  call(op: number, id: string, data: Uint8Array | undefined, okBytesMax: number, landing: Landing | undefined): Promise<WireAnswer> {
    if (this.#phase !== 'idle') return Promise.reject(new Error(`chunk wire connection is ${this.#phase}`));
    this.#phase = 'head';
    this.#filled = 0;
    this.#okBytesMax = okBytesMax;
    this.#landing = landing;
    this.answerStarted = false;
    const answered = new Promise<WireAnswer>((resolve, reject) => {
      this.#settle = (err) => {
        if (err) return reject(err);
        const body = this.#body!;
        this.#body = undefined;
        resolve({ status: this.#status, body });
      };
    });
    const length = data?.byteLength ?? 0;
    // Header and bytes leave in one writev. No wait for 'drain': the answer normally comes only
    // after the peer has every byte. The call settles only once the socket is done with `data`
    // too (a refusal can come early), since the caller may reuse it as soon as the call settles.
    const written = new Promise<void>((resolve) => {
      this.#written = resolve;
    });
    this.#socket.cork();
    this.#socket.write(encodeWireRequest(this.#request, op, length, id));
    if (length > 0) this.#socket.write(data!, () => this.#wrote());
    else this.#wrote();
    this.#socket.uncork();
    return answered.then(
      async (answer) => {
        await written;
        return answer;
      },
      async (err: unknown) => {
        await written;
        throw err;
      },
    );
  }

  #wrote(): void {
    const done = this.#written;
    this.#written = undefined;
    done?.();
  }

  destroy(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.#phase = 'closed';
    this.#socket.destroy();
    this.#finish(err);
    this.#onClose();
  }

  #nextBuffer(): Uint8Array {
    switch (this.#phase) {
      case 'handshake':
        return this.#head.subarray(this.#filled);
      case 'head':
        return this.#head.subarray(this.#filled, WIRE_ANSWER_HEAD_BYTES);
      case 'body':
        return this.#body!.subarray(this.#filled);
      default:
        return this.#head.subarray(0, WIRE_ANSWER_HEAD_BYTES);
    }
  }

  #onRead(n: number): boolean {
    switch (this.#phase) {
      case 'handshake':
        this.#filled += n;
        return this.#onHandshakeBytes();
      case 'head':
        this.answerStarted = true;
        this.#filled += n;
        if (this.#filled === WIRE_ANSWER_HEAD_BYTES) this.#onAnswerHead();
        return !this.closed;
      case 'body':
        this.#filled += n;
        if (this.#filled === this.#body!.length) this.#answered();
        return true;
      default:
        this.destroy(new Error('chunk wire peer sent bytes nobody asked for'));
        return false;
    }
  }

  #onHandshakeBytes(): boolean {
    const end = this.#head.subarray(0, this.#filled).indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.#filled === this.#head.length) this.destroy(new Error('chunk wire upgrade answer too long'));
      return !this.closed;
    }
    const text = this.#head.toString('latin1', 0, end);
    const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
    if (status !== '101') {
      const line = text.split('\r\n', 1)[0];
      this.destroy(status === '403' ? new Error(`peer refused the chunk wire: ${line}`) : new StoreError(WIRE_ERR_UNSUPPORTED, `peer does not speak the chunk wire: ${line}`));
      return false;
    }
    if (end + 4 !== this.#filled) {
      this.destroy(new Error('chunk wire peer sent bytes after its upgrade answer'));
      return false;
    }
    this.#phase = 'idle';
    this.#finish(undefined);
    return true;
  }

  #onAnswerHead(): void {
    const status = this.#head[0]!;
    const length = Number(this.#head.readBigUInt64BE(1));
    const max = status === WIRE_STATUS_OK ? this.#okBytesMax : WIRE_MESSAGE_BYTES_MAX;
    if (status > WIRE_STATUS_ERROR || !(length <= max)) {
      this.destroy(new Error(`chunk wire answer of ${length} bytes with status ${status} (at most ${max})`));
      return;
    }
    this.#status = status;
    this.#body = status === WIRE_STATUS_OK && length > 0 && this.#landing ? this.#landing(length) : Buffer.allocUnsafe(length);
    this.#filled = 0;
    if (length === 0) this.#answered();
    else this.#phase = 'body';
  }

  #answered(): void {
    this.answers++;
    this.#phase = 'idle';
    this.#finish(undefined);
  }

  #finish(err: Error | undefined): void {
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.(err);
  }
}
