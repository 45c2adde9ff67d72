/**
 * The serving end of the chunk wire (protocol in chunk-wire.ts). The node's HTTP server hands it
 * upgrade requests (`wantsChunkWire` for shouldUpgradeCallback, then `accept` on 'upgrade'); it
 * answers 101 to an authorized one and takes the connection over, one WireSession each.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { drained } from '../util/drained.ts';
import { PieceQueue } from '../util/piece-queue.ts';
import {
  encodeWireAnswerHead,
  WIRE_ANSWER_HEAD_BYTES,
  WIRE_MESSAGE_BYTES_MAX,
  WIRE_OP_GET,
  WIRE_OP_HAS,
  WIRE_OP_PUT,
  WIRE_PATH,
  WIRE_PROTOCOL,
  WIRE_REQUEST_BYTES,
  WIRE_SESSION_IDLE_MS,
  WIRE_STATUS_ERROR,
  WIRE_STATUS_NOT_FOUND,
  WIRE_STATUS_OK,
  WIRE_STATUS_REFUSED,
} from './chunk-wire.ts';

/** A stored chunk opened for streaming (DiskChunkStore.openRead's shape). */
export interface WireChunkRead {
  sizeBytes: number;
  /** The bytes; throws instead of yielding the last piece when the copy does not verify. */
  body: AsyncIterable<Buffer>;
  /** Gives the pieces' buffer back for reuse once no write refers to them. */
  release(): void;
}

/** What the node serves the wire from. */
export interface WireChunkStore {
  /** True when the headers carry this cluster's id and secret. */
  authorize(headers: IncomingHttpHeaders): boolean;
  /** Largest chunk accepted. */
  chunkBytesMax: number;
  /**
   * Stores the `sizeBytes` bytes of `body` under `id` once they hash to it; rejects otherwise,
   * with one of `refusalCodes` when the bytes were wrong.
   */
  putStream(id: string, sizeBytes: number, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** The chunk opened for streaming, or undefined when this node has no copy. */
  openRead(id: string): Promise<WireChunkRead | undefined>;
  /** True when this node holds a copy that hashes to `id`. */
  verify(id: string): Promise<boolean>;
}

/** Options of the wire server. */
export interface ChunkWireServerOptions {
  /** Error codes of putStream that mean "the bytes were wrong" (answered REFUSED, not ERROR). */
  refusalCodes: ReadonlySet<string>;
  /** A session with no traffic for this long is closed. */
  idleMs?: number;
  /**
   * False: read through the upgraded socket's own events, copying into the session's buffers
   * (what happens anyway to a socket without a plain TCP handle to move; tests cover it so).
   */
  moveHandle?: boolean;
  logger: { warn(obj: object, msg: string): void };
}

/** Largest landing buffer a session keeps between puts (the default chunk size). */
const WIRE_LANDING_KEPT_BYTES_MAX = 4 * 1024 * 1024;

/** Counters of the serving end, named as the node's Prometheus metrics (read at scrape time). */
export interface ChunkWireServerStats {
  /** Sessions open now. */
  ts3gw_chunk_wire_server_sessions: number;
  ts3gw_chunk_wire_server_sessions_total: number;
  /** Upgrade requests refused (credentials, path, closing). */
  ts3gw_chunk_wire_server_refused_total: number;
  ts3gw_chunk_wire_server_puts_total: number;
  ts3gw_chunk_wire_server_gets_total: number;
  ts3gw_chunk_wire_server_has_total: number;
  ts3gw_chunk_wire_server_received_bytes_total: number;
  ts3gw_chunk_wire_server_sent_bytes_total: number;
  /** Requests answered with an error, and sessions closed for a frame that was not one. */
  ts3gw_chunk_wire_server_errors_total: number;
}

/** For http.Server's shouldUpgradeCallback: does this request ask for the chunk wire? */
export function wantsChunkWire(req: IncomingMessage): boolean {
  return req.headers.upgrade?.toLowerCase() === WIRE_PROTOCOL;
}

/** Accepts chunk wire upgrades and serves their sessions until closed. */
export class ChunkWireServer {
  readonly #store: WireChunkStore;
  readonly #options: ChunkWireServerOptions;
  readonly #sessions = new Set<net.Socket>();
  readonly #stats: Omit<ChunkWireServerStats, 'ts3gw_chunk_wire_server_sessions'> = {
    ts3gw_chunk_wire_server_sessions_total: 0,
    ts3gw_chunk_wire_server_refused_total: 0,
    ts3gw_chunk_wire_server_puts_total: 0,
    ts3gw_chunk_wire_server_gets_total: 0,
    ts3gw_chunk_wire_server_has_total: 0,
    ts3gw_chunk_wire_server_received_bytes_total: 0,
    ts3gw_chunk_wire_server_sent_bytes_total: 0,
    ts3gw_chunk_wire_server_errors_total: 0,
  };
  #closed = false;

  constructor(store: WireChunkStore, options: ChunkWireServerOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Sessions being served. */
  get sessions(): number {
    return this.#sessions.size;
  }

  stats(): ChunkWireServerStats {
    return { ts3gw_chunk_wire_server_sessions: this.#sessions.size, ...this.#stats };
  }

  /** Handles an http.Server 'upgrade' event. */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: string) => {
      this.#stats.ts3gw_chunk_wire_server_refused_total++;
      // Closed once the answer left: the peer may never close its side.
      socket.on('error', () => undefined);
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
    };
    if (!wantsChunkWire(req)) return void refuse('400 Bad Request');
    if (req.method !== 'GET' || req.url !== WIRE_PATH) return void refuse('404 Not Found');
    if (!this.#store.authorize(req.headers)) return void refuse('403 Forbidden');
    // The client waits for the 101 before it sends a frame.
    if (head.length > 0) return void refuse('400 Bad Request');
    if (this.#closed || !(socket instanceof net.Socket)) return void refuse('503 Service Unavailable');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${WIRE_PROTOCOL}\r\n\r\n`);
    this.#stats.ts3gw_chunk_wire_server_sessions_total++;
    const session = new WireSession(socket, this.#store, this.#options, this.#stats);
    this.#sessions.add(session.socket);
    session.socket.once('close', () => this.#sessions.delete(session.socket));
  }

  /** Refuses new sessions and closes the open ones (their requests in flight fail). */
  close(): void {
    this.#closed = true;
    for (const socket of this.#sessions) socket.destroy();
    this.#sessions.clear();
  }
}

/** The counters sessions add to. */
type SessionStats = Omit<ChunkWireServerStats, 'ts3gw_chunk_wire_server_sessions'>;

/** The put a session is receiving: its bytes, handed to the store as they arrive. */
interface PutBody {
  bytes: PieceQueue;
  /** Settles once the store is done: undefined when stored, else why not. */
  stored: Promise<unknown>;
}

/**
 * One served connection. Reads land where the frame wants them: a request header in #request,
 * a put's bytes in #landing at their offset (handed to the store as views, no copy; #landing is
 * reused for the next put only after this one is answered). While a request is being answered
 * the socket is paused: the client sends nothing before the answer.
 */
class WireSession {
  readonly socket: net.Socket;
  readonly #store: WireChunkStore;
  readonly #options: ChunkWireServerOptions;
  readonly #stats: SessionStats;
  readonly #request = Buffer.alloc(WIRE_REQUEST_BYTES);
  #filled = 0;
  #put: PutBody | undefined;
  #landing: Buffer | undefined;

  constructor(upgraded: net.Socket, store: WireChunkStore, options: ChunkWireServerOptions, stats: SessionStats) {
    this.#store = store;
    this.#options = options;
    this.#stats = stats;
    this.socket = takeOver(upgraded, options.moveHandle ?? true, () => this.#nextBuffer(), (n) => this.#onRead(n));
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, WIRE_SESSION_IDLE_MS / 2);
    this.socket.setTimeout(options.idleMs ?? WIRE_SESSION_IDLE_MS, () => this.socket.destroy());
    this.socket.on('error', () => this.socket.destroy());
    // The wire has no half-close: a peer that ended its side is gone (an HTTP server's sockets
    // allow half-open connections, so the copying path would otherwise linger).
    this.socket.on('end', () => this.socket.destroy());
    this.socket.on('close', () => this.#endPut());
  }

  #nextBuffer(): Uint8Array {
    const put = this.#put;
    return put ? this.#landing!.subarray(put.bytes.filled, put.bytes.length) : this.#request.subarray(this.#filled);
  }

  #onRead(n: number): boolean {
    const put = this.#put;
    if (put) {
      // These n bytes of #landing stay put until the put is answered.
      this.#stats.ts3gw_chunk_wire_server_received_bytes_total += n;
      put.bytes.push(this.#landing!.subarray(put.bytes.filled, put.bytes.filled + n));
      if (put.bytes.complete) this.#endPut();
      return true;
    }
    this.#filled += n;
    if (this.#filled < WIRE_REQUEST_BYTES) return true;
    this.#filled = 0;
    return this.#onRequest();
  }

  #onRequest(): boolean {
    const r = this.#request;
    const op = r[0]!;
    const length = Number(r.readBigUInt64BE(4));
    const id = r.toString('hex', 12, 44);
    const known = op === WIRE_OP_PUT || op === WIRE_OP_GET || op === WIRE_OP_HAS;
    if (!known || r[1] !== 0 || r[2] !== 0 || r[3] !== 0 || (op !== WIRE_OP_PUT && length !== 0)) {
      // Not a frame of this protocol: nothing after it can be trusted to be one either.
      this.#stats.ts3gw_chunk_wire_server_errors_total++;
      this.socket.destroy();
      return false;
    }
    if (op === WIRE_OP_PUT) {
      this.#stats.ts3gw_chunk_wire_server_puts_total++;
      return this.#startPut(id, length);
    }
    if (op === WIRE_OP_GET) this.#stats.ts3gw_chunk_wire_server_gets_total++;
    else this.#stats.ts3gw_chunk_wire_server_has_total++;
    this.socket.pause();
    const answer = op === WIRE_OP_GET ? this.#answerGet(id) : this.#answerHas(id);
    answer.then(
      () => this.socket.resume(),
      () => this.socket.destroy(),
    );
    return true;
  }

  #startPut(id: string, length: number): boolean {
    if (length > this.#store.chunkBytesMax) {
      // Its bytes are on their way and this session will not read them: answer and close once
      // the answer left (ending alone would wait for a FIN it no longer reads).
      this.socket.pause();
      this.#answer(WIRE_STATUS_REFUSED, `chunk of ${length} bytes is larger than ${this.#store.chunkBytesMax}`);
      this.socket.end(() => this.socket.destroy());
      return false;
    }
    if (this.#landing === undefined || this.#landing.length < length) this.#landing = Buffer.allocUnsafe(length);
    const bytes = new PieceQueue(length);
    // Through a promise, so that a store throwing synchronously cannot escape into the socket's read callback.
    const stored = new Promise<void>((resolve) => resolve(this.#store.putStream(id, length, bytes))).then(
      () => undefined,
      (err: unknown) => err ?? new Error('put failed'),
    );
    this.#put = { bytes, stored };
    if (length === 0) this.#endPut();
    return true;
  }

  /** The put's bytes are all here (or the connection closed): answer once the store is done. */
  #endPut(): void {
    const put = this.#put;
    if (!put) return;
    this.#put = undefined;
    put.bytes.end();
    if (this.socket.destroyed) return;
    this.socket.pause();
    // A landing buffer grown for an unusually large chunk is not kept for the session's life.
    if (this.#landing !== undefined && this.#landing.length > WIRE_LANDING_KEPT_BYTES_MAX) this.#landing = undefined;
    void put.stored.then((err) => {
      if (err === undefined) this.#answer(WIRE_STATUS_OK, '');
      else {
        const refused = this.#options.refusalCodes.has((err as { code?: string }).code ?? '');
        if (!refused) this.#options.logger.warn({ err: String(err) }, 'chunk wire put failed');
        this.#answer(refused ? WIRE_STATUS_REFUSED : WIRE_STATUS_ERROR, String((err as Error).message ?? err));
      }
      this.socket.resume();
    });
  }

  async #answerHas(id: string): Promise<void> {
    let ok: boolean;
    try {
      ok = await this.#store.verify(id);
    } catch (err) {
      this.#answer(WIRE_STATUS_ERROR, String(err));
      return;
    }
    this.#answer(ok ? WIRE_STATUS_OK : WIRE_STATUS_NOT_FOUND, '');
  }

  /**
   * Streams the chunk after its answer header. A copy that fails verification throws out of its
   * body before the last piece: the session is destroyed, so the client sees a truncated answer
   * and fails, never a complete corrupt one.
   */
  async #answerGet(id: string): Promise<void> {
    let read: WireChunkRead | undefined;
    try {
      read = await this.#store.openRead(id);
    } catch (err) {
      this.#answer(WIRE_STATUS_ERROR, String(err));
      return;
    }
    if (!read) {
      this.#answer(WIRE_STATUS_NOT_FOUND, '');
      return;
    }
    const socket = this.socket;
    // The header leaves with the first piece (one writev), not as a packet of its own.
    socket.cork();
    socket.write(encodeWireAnswerHead(Buffer.allocUnsafe(WIRE_ANSWER_HEAD_BYTES), WIRE_STATUS_OK, read.sizeBytes));
    let corked = true;
    try {
      for await (const piece of read.body) {
        // Closed meanwhile (shutdown, idle timeout): stop, which closes the file too.
        if (socket.destroyed) throw new Error('session closed');
        this.#stats.ts3gw_chunk_wire_server_sent_bytes_total += piece.length;
        const more = socket.write(piece);
        if (corked) {
          socket.uncork();
          corked = false;
        }
        if (!more) await drained(socket);
      }
    } finally {
      if (corked) socket.uncork();
    }
    // Writes complete in order: once this empty one did, no piece is referenced any more.
    socket.write(Buffer.alloc(0), (err) => {
      if (!err) read.release();
    });
  }

  #answer(status: number, message: string): void {
    if (status === WIRE_STATUS_ERROR) this.#stats.ts3gw_chunk_wire_server_errors_total++;
    const text = Buffer.from(message.slice(0, WIRE_MESSAGE_BYTES_MAX), 'utf8').subarray(0, WIRE_MESSAGE_BYTES_MAX);
    const head = encodeWireAnswerHead(Buffer.allocUnsafe(WIRE_ANSWER_HEAD_BYTES), status, text.length);
    this.socket.write(text.length > 0 ? Buffer.concat([head, text]) : head);
  }
}


/**
 * A socket reading the upgraded connection with `onread`. Node offers `onread` only on sockets it
 * builds from options, so the upgraded socket's handle is moved into a new one (the old socket,
 * destroyed without its handle, leaves the HTTP server's books; the handle keeps reading for its
 * new owner). Where there is no plain handle to move, the old socket stays and its reads are
 * copied into the same buffers: slower, the same behaviour.
 */
function takeOver(upgraded: net.Socket, moveHandle: boolean, buffer: () => Uint8Array, callback: (n: number) => boolean): net.Socket {
  const handle = (upgraded as unknown as { _handle?: { readStart?: unknown } | null })._handle;
  if (moveHandle && handle && typeof handle.readStart === 'function' && upgraded.constructor === net.Socket) {
    const socket = new net.Socket({ handle, onread: { buffer, callback } } as unknown as net.SocketConstructorOpts);
    (upgraded as unknown as { _handle: unknown })._handle = null;
    upgraded.destroy();
    return socket;
  }
  upgraded.on('data', (data: Buffer) => {
    let at = 0;
    while (at < data.length && !upgraded.destroyed) {
      // The session paused (answering): the rest waits, as unread bytes wait in the kernel on
      // the onread path.
      if (upgraded.isPaused()) {
        upgraded.unshift(data.subarray(at));
        return;
      }
      const into = buffer();
      const n = Math.min(into.length, data.length - at);
      into.set(data.subarray(at, at + n));
      at += n;
      if (!callback(n)) return;
    }
  });
  upgraded.resume();
  return upgraded;
}
