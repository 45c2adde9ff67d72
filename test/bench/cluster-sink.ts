/**
 * Baseline receiver of `npm run bench:cluster`, run as its own process (like a ts3gw node) so the
 * baselines cross a process boundary the way a chunk transfer between nodes does. It answers the
 * same chunk transfer (one 4 MiB chunk per request, acknowledged) over three protocols, each with
 * up to three kinds of receiver work:
 *
 *   discard  the bytes are counted and dropped (PUT); a fixed buffer is sent (GET). The protocol
 *            alone: framing, copies, event-loop work.
 *   store    the bytes go through the production DiskChunkStore in BENCH_SINK_STORE_DIR (fsync
 *            on): a PUT is hashed as it arrives, written in batches, fsynced and renamed
 *            (putStream); a GET streams the file and verifies its hash (openRead). Exactly the
 *            work a node's internal chunk endpoint does, without fastify and the rest of the node.
 *   tmpfs    the same store in BENCH_SINK_TMPFS_DIR (on tmpfs, when the bench found one): the
 *            same work with fsync as cheap as it gets, so the transfer machinery shows without
 *            the disk's bound. Raw TCP and HTTP only.
 *
 * Protocols:
 *   tcp   plain net socket. Request: 1 byte op ('P' or 'G'), 1 byte work ('d', 's' or 'm'), 8 bytes
 *         length (big-endian), 32 bytes chunk id (raw sha256); a PUT's bytes follow. Answer to a
 *         PUT: 1 byte (0 ok, 1 refused); to a GET: 8 bytes length, then the bytes. Many requests
 *         per connection, one at a time (like an HTTP keep-alive connection). The upper bound
 *         of the three: both ends read with `onread` into buffers they own and reuse (no
 *         allocation per read), a discarding PUT never copies or touches its bytes, and a
 *         request or answer leaves in one write (see TcpSession).
 *   http  plain node:http, path /_ts3gw/chunks/<id> as on a node (so the production
 *         HttpChunkClient talks to it); one server per kind of work.
 *   wire  the production chunk wire (src/forward/chunk-wire-server.ts) on those same HTTP
 *         servers, as a node runs it on its S3 port: the production ChunkWireClient upgrades a
 *         request and moves the chunk in binary frames. Discarding, its store drains the pieces
 *         the session hands over (the session's framing and landing buffer are all the work).
 *   grpc  @grpc/grpc-js without a .proto (identity serializers): Put is client-streaming (the id,
 *         work and length in metadata, the bytes as messages of BENCH_GRPC_PIECE_KIB), Get is
 *         server-streaming. The throwaway service lives here and in cluster-bench.ts only.
 *
 * Prints one line `sink tcp=<port> http-discard=<port> http-store=<port> http-tmpfs=<port or 0>
 * grpc=<port>` once all listen; exits on SIGTERM or when its parent's stdin closes. The store
 * directories belong to the bench (it empties them between rows and removes them at the end).
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { CHUNK_SIZE_BYTES_MAX } from '../../src/chunks/chunk-store.ts';
import { type DiskChunkStore, openDiskChunkStore } from '../../src/chunks/disk-chunk-store.ts';
import { ChunkWireServer, type WireChunkStore, wantsChunkWire } from '../../src/forward/chunk-wire-server.ts';
import { PieceQueue } from '../../src/util/piece-queue.ts';

/** Header of one raw TCP request. */
export const TCP_HEADER_BYTES = 42;
/** gRPC message size of the bench service (both directions). */
export const GRPC_PIECE_BYTES = Number(process.env['BENCH_GRPC_PIECE_KIB'] ?? 256) * 1024;
/** The bench service, shared with the client in cluster-bench.ts. */
export const GRPC_SERVICE = {
  put: {
    path: '/ts3gwbench.Chunks/Put',
    requestStream: true,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
  get: {
    path: '/ts3gwbench.Chunks/Get',
    requestStream: false,
    responseStream: true,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
} satisfies grpc.ServiceDefinition;
/** Channel options of both ends: messages up to a chunk, no compression. */
export const GRPC_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
};

/** A fixed body per size, for GETs that discard (the sender's cost without a store). */
const bodies = new Map<number, Buffer>();
function fixedBody(bytes: number): Buffer {
  let body = bodies.get(bytes);
  if (!body) {
    body = Buffer.alloc(bytes, 7);
    bodies.set(bytes, body);
  }
  return body;
}

// ------------------------------------------------------------------------------------ tcp

/** Length prefix of a raw TCP GET answer. */
export const TCP_ANSWER_HEADER_BYTES = 8;
/** Largest body a raw TCP request or answer carries: bounds each connection's landing buffer. */
export const TCP_BODY_BYTES_MAX = CHUNK_SIZE_BYTES_MAX;
/** Most bytes one read of a discarding PUT takes: one reused buffer that JS never touches. */
const TCP_DISCARD_READ_BYTES = 256 * 1024;
const TCP_ACK_OK = Buffer.of(0);
const TCP_ACK_REFUSED = Buffer.of(1);

/** Discarding GET answers per size: length prefix and body in one buffer, sent by one write. */
const fixedAnswers = new Map<number, Buffer>();
function fixedAnswer(bytes: number): Buffer {
  let answer = fixedAnswers.get(bytes);
  if (!answer) {
    answer = Buffer.alloc(TCP_ANSWER_HEADER_BYTES + bytes, 7);
    answer.writeBigUInt64BE(BigInt(bytes), 0);
    fixedAnswers.set(bytes, answer);
  }
  return answer;
}

/** The body of the PUT a raw TCP connection is receiving. */
type TcpBody =
  | { work: 'discard'; left: number }
  | { work: 'store'; bytes: PieceQueue; stored: Promise<boolean> };

/**
 * One raw TCP connection of the sink, read as an upper bound should be: with `onread`, so the
 * kernel copies into memory this connection owns and reuses, and no read allocates. (Node's
 * default reads allocate a fresh 64 KiB buffer each; on this VM the page faults of that churn
 * cost ~2.5 ms of receiver CPU per MiB and halved PUT throughput.) Reads are bounded by the
 * framing, so no read ever crosses into the next request:
 *
 *   header   42 bytes straight into #header (the next read asks for exactly what is missing)
 *   discard  body read into #scratch, at most TCP_DISCARD_READ_BYTES a read, counted, dropped
 *   store    body read straight into #landing at its offset; each read's bytes are handed to
 *            DiskChunkStore.putStream as they arrive (no copy); #landing is reused for the next
 *            PUT only after this one is answered, and the socket is paused until then
 *
 * A GET pauses reading while it is answered (the client sends nothing meanwhile).
 */
class TcpSession {
  readonly #stores: SinkStores;
  readonly #header = Buffer.alloc(TCP_HEADER_BYTES);
  #headerFilled = 0;
  readonly #scratch = Buffer.allocUnsafe(TCP_DISCARD_READ_BYTES);
  /** Store PUT bodies land here; allocated by the first one, grown for a larger one. */
  #landing: Buffer | undefined;
  #body: TcpBody | undefined;
  readonly #socket: net.Socket;

  constructor(handle: unknown, stores: SinkStores) {
    this.#stores = stores;
    // Node offers `onread` only on sockets it builds from options, not on the ones a net.Server
    // accepts, so the accepted handle (the server has pauseOnConnect, nothing was read from it)
    // is wrapped in a socket that has it; node:http's server reads its sockets' handles directly
    // too (parser.consume).
    this.#socket = new net.Socket({
      handle,
      onread: { buffer: () => this.#nextReadBuffer(), callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf) },
    } as net.SocketConstructorOpts);
    // The server already turned Nagle off on this handle; said again so it holds whatever the
    // server's options become (the 1-byte acks must not wait).
    this.#socket.setNoDelay(true);
    this.#socket.on('error', () => this.#socket.destroy());
    this.#socket.on('close', () => this.#endBody());
    this.#socket.resume();
  }

  /** Where the next read lands: never empty, never past the current header or body. */
  #nextReadBuffer(): Uint8Array {
    const body = this.#body;
    if (body === undefined) return this.#header.subarray(this.#headerFilled);
    if (body.work === 'discard') return this.#scratch.subarray(0, Math.min(body.left, this.#scratch.length));
    return this.#landing!.subarray(body.bytes.filled, body.bytes.length);
  }

  #onRead(n: number, buf: Uint8Array): boolean {
    const body = this.#body;
    if (body === undefined) {
      this.#headerFilled += n;
      if (this.#headerFilled === TCP_HEADER_BYTES) {
        this.#headerFilled = 0;
        this.#onHeader();
      }
      return true;
    }
    if (body.work === 'discard') {
      body.left -= n;
      if (body.left === 0) {
        this.#body = undefined;
        this.#socket.write(TCP_ACK_OK);
      }
      return true;
    }
    // `buf` is #landing from body.bytes.filled on: these n bytes stay put until the PUT is answered.
    body.bytes.push(Buffer.from(buf.buffer, buf.byteOffset, n));
    if (body.bytes.complete) this.#endBody();
    return true;
  }

  #onHeader(): void {
    const h = this.#header;
    const op = String.fromCharCode(h[0]!);
    const work = h[1] === 0x73 ? 'store' : h[1] === 0x6d ? 'tmpfs' : 'discard';
    const store = work === 'discard' ? undefined : this.#stores[work];
    const length = Number(h.readBigUInt64BE(2));
    const id = h.subarray(10, 42).toString('hex');
    if ((op !== 'P' && op !== 'G') || !(length >= 0 && length <= TCP_BODY_BYTES_MAX) || (work !== 'discard' && store === undefined)) {
      this.#socket.destroy(new Error(`bad raw TCP request ${op} of ${length} bytes (${work})`));
      return;
    }
    if (op === 'G') {
      this.#socket.pause();
      this.#answerGet(store, id, length).then(
        () => this.#socket.resume(),
        (err: unknown) => this.#socket.destroy(err as Error),
      );
      return;
    }
    if (store === undefined) {
      if (length === 0) this.#socket.write(TCP_ACK_OK);
      else this.#body = { work: 'discard', left: length };
      return;
    }
    if (this.#landing === undefined || this.#landing.length < length) this.#landing = Buffer.allocUnsafe(length);
    const bytes = new PieceQueue(length);
    const stored = store.putStream(id, length, bytes).then(
      () => true,
      () => false,
    );
    this.#body = { work: 'store', bytes, stored };
    if (length === 0) this.#endBody();
  }

  /** The store PUT's body is complete (or the connection closed): answer once it is stored. */
  #endBody(): void {
    const body = this.#body;
    if (body?.work !== 'store') return;
    this.#body = undefined;
    body.bytes.end();
    if (this.#socket.destroyed) return;
    this.#socket.pause();
    void body.stored.then((ok) => {
      this.#socket.write(ok ? TCP_ACK_OK : TCP_ACK_REFUSED);
      this.#socket.resume();
    });
  }

  /** A discarding GET (no store) sends a fixed answer in one write; a storing GET streams the file. */
  async #answerGet(store: DiskChunkStore | undefined, id: string, length: number): Promise<void> {
    const socket = this.#socket;
    if (store === undefined) {
      if (!socket.write(fixedAnswer(length))) await once(socket, 'drain');
      return;
    }
    const read = await store.openRead(id);
    const head = Buffer.allocUnsafe(TCP_ANSWER_HEADER_BYTES);
    head.writeBigUInt64BE(BigInt(read.sizeBytes), 0);
    // The length prefix leaves with the first piece (one writev), not as a packet of its own.
    socket.cork();
    socket.write(head);
    let corked = true;
    for await (const piece of read.body) {
      const more = socket.write(piece);
      if (corked) {
        socket.uncork();
        corked = false;
      }
      if (!more) await once(socket, 'drain');
    }
    if (corked) socket.uncork();
    // Writes complete in order: once this empty one did, no piece is referenced (as the node
    // endpoint does on its response's 'finish').
    socket.write(Buffer.alloc(0), (err) => {
      if (!err) read.release();
    });
  }
}

// ------------------------------------------------------------------------------------ http

/** The sink's stores: on the bench's temp dir (disk) and, when it has one, on tmpfs. */
interface SinkStores {
  store: DiskChunkStore;
  tmpfs: DiskChunkStore | undefined;
}

/** A node:http chunk server: discarding without a store, storing with one. */
function httpServer(store: DiskChunkStore | undefined): http.Server {
  const server = http.createServer((req, res) => {
    const id = /\/_ts3gw\/chunks\/([0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    if (!id) {
      res.writeHead(400).end();
      return;
    }
    const fail = (err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    };
    if (req.method === 'PUT') {
      const length = Number(req.headers['content-length']);
      if (store !== undefined) {
        store.putStream(id, length, req).then(() => res.writeHead(204).end(), fail);
        return;
      }
      req.on('data', () => undefined);
      req.on('end', () => res.writeHead(204).end());
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(404).end();
      return;
    }
    if (store === undefined) {
      const body = fixedBody(4 * 1024 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
      return;
    }
    store.openRead(id).then(async (read) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(read.sizeBytes) });
      res.once('finish', () => read.release());
      for await (const piece of read.body) if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
      res.end();
    }, fail);
  });
  server.keepAliveTimeout = 30_000;
  const wire = new ChunkWireServer(store ? wireStore(store) : wireDiscard, { refusalCodes: new Set(), logger: console });
  (server as { shouldUpgradeCallback?: typeof wantsChunkWire }).shouldUpgradeCallback = wantsChunkWire;
  server.on('upgrade', (req, socket, head) => wire.accept(req, socket, head));
  return server;
}

/** The wire's view of a sink store (no auth: the sink is the bench's own). */
function wireStore(store: DiskChunkStore): WireChunkStore {
  return {
    authorize: () => true,
    chunkBytesMax: CHUNK_SIZE_BYTES_MAX,
    putStream: (id, size, body) => store.putStream(id, size, body),
    openRead: (id) => store.openRead(id),
    verify: async (id) => (await store.verify(id)) === 'ok',
  };
}

/** A wire store that drops what it is given and serves a fixed body. */
const wireDiscard: WireChunkStore = {
  authorize: () => true,
  chunkBytesMax: CHUNK_SIZE_BYTES_MAX,
  async putStream(_id, size, body) {
    let n = 0;
    for await (const piece of body) n += piece.length;
    if (n !== size) throw new Error(`${n} of ${size} bytes`);
  },
  openRead: async () => ({
    sizeBytes: 4 * 1024 * 1024,
    body: (async function* () {
      yield fixedBody(4 * 1024 * 1024);
    })(),
    release: () => undefined,
  }),
  verify: async () => true,
};

// ------------------------------------------------------------------------------------ grpc

function grpcServer(store: DiskChunkStore): grpc.Server {
  const server = new grpc.Server(GRPC_OPTIONS);
  server.addService(GRPC_SERVICE, {
    put: (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const id = String(call.metadata.get('chunk-id')[0]);
      const work = String(call.metadata.get('work')[0]);
      const length = Number(call.metadata.get('length')[0]);
      const done = (err: unknown) => callback(err ? { code: grpc.status.INTERNAL, details: String(err) } : null, Buffer.alloc(0));
      if (work === 's') {
        store.putStream(id, length, call).then(() => done(undefined), done);
        return;
      }
      call.on('data', () => undefined);
      call.on('end', () => done(undefined));
    },
    get: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const work = String.fromCharCode(call.request[0]!);
      const id = call.request.subarray(1).toString('hex');
      void (async () => {
        if (work === 'd') {
          const body = fixedBody(4 * 1024 * 1024);
          for (let o = 0; o < body.length; o += GRPC_PIECE_BYTES) {
            if (!call.write(body.subarray(o, o + GRPC_PIECE_BYTES))) await new Promise((r) => call.once('drain', r));
          }
        } else {
          // No release(): grpc-js frames (copies) a written message later than write() returns,
          // so the pieces may still be read after the loop; the buffer is left to the GC.
          const read = await store.openRead(id);
          for await (const piece of read.body) if (!call.write(piece)) await new Promise((r) => call.once('drain', r));
        }
        call.end();
      })().catch((err: unknown) => call.destroy(err as Error));
    },
  });
  return server;
}

// ------------------------------------------------------------------------------------ main

if (import.meta.main) {
  const storeDir = process.env['BENCH_SINK_STORE_DIR'];
  if (!storeDir) throw new Error('BENCH_SINK_STORE_DIR is required');
  const tmpfsDir = process.env['BENCH_SINK_TMPFS_DIR'];
  const stores: SinkStores = {
    store: await openDiskChunkStore({ dir: storeDir, fsync: true }),
    tmpfs: tmpfsDir ? await openDiskChunkStore({ dir: tmpfsDir, fsync: true }) : undefined,
  };
  const store = stores.store;
  // pauseOnConnect: a TcpSession takes the accepted handle over before anything is read from it.
  const tcp = net.createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
    const handle = (accepted as unknown as { _handle: unknown })._handle;
    // The accepted socket gives up the handle, so only the session reads and closes it.
    (accepted as unknown as { _handle: unknown })._handle = null;
    new TcpSession(handle, stores);
  });
  const listen = (server: net.Server | http.Server): Promise<number> =>
    new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const rpc = grpcServer(store);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    rpc.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const [tcpPort, httpDiscard, httpStore, httpTmpfs] = await Promise.all([
    listen(tcp),
    listen(httpServer(undefined)),
    listen(httpServer(store)),
    stores.tmpfs ? listen(httpServer(stores.tmpfs)) : Promise.resolve(0),
  ]);
  process.stdout.write(`sink tcp=${tcpPort} http-discard=${httpDiscard} http-store=${httpStore} http-tmpfs=${httpTmpfs} grpc=${grpcPort}\n`);
  const exit = () => process.exit(0);
  process.stdin.resume();
  process.stdin.on('end', exit);
  process.on('SIGTERM', exit);
}
