/**
 * Baseline receiver of `npm run bench:cluster`, run as its own process (like a ts3gw node) so the
 * baselines cross a process boundary the way a chunk transfer between nodes does. It answers the
 * same chunk transfer (one 4 MiB chunk per request, acknowledged) over three protocols, each with
 * two kinds of receiver work:
 *
 *   discard  the bytes are counted and dropped (PUT); a fixed buffer is sent (GET). The protocol
 *            alone: framing, copies, event-loop work.
 *   store    the bytes go through the production DiskChunkStore in a temp dir (fsync on): a PUT
 *            is hashed as it arrives, written in batches, fsynced and renamed (putStream); a GET
 *            streams the file and verifies its hash (openRead). Exactly the work a node's
 *            internal chunk endpoint does, without fastify and the rest of the node.
 *
 * Protocols:
 *   tcp   plain net socket. Request: 1 byte op ('P' or 'G'), 1 byte work ('d' or 's'), 8 bytes
 *         length (big-endian), 32 bytes chunk id (raw sha256); a PUT's bytes follow. Answer to a
 *         PUT: 1 byte (0 ok, 1 refused); to a GET: 8 bytes length, then the bytes. Many requests
 *         per connection, one at a time (like an HTTP keep-alive connection).
 *   http  plain node:http, path /_ts3gw/chunks/<id> as on a node (so the production
 *         HttpChunkClient talks to it); one server per kind of work.
 *   grpc  @grpc/grpc-js without a .proto (identity serializers): Put is client-streaming (the id,
 *         work and length in metadata, the bytes as messages of BENCH_GRPC_PIECE_KIB), Get is
 *         server-streaming. The throwaway service lives here and in cluster-bench.ts only.
 *
 * Prints one line `sink tcp=<port> http-discard=<port> http-store=<port> grpc=<port>` once all
 * listen; exits on SIGTERM or when its parent's stdin closes (removing its store directory).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type DiskChunkStore, openDiskChunkStore } from '../../src/chunks/disk-chunk-store.ts';

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

/** Pull-based reads from a socket: exact byte counts and bounded streams, with backpressure. */
class SocketReader {
  readonly #socket: net.Socket;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (piece: Buffer) => {
      this.#buffered.push(piece);
      this.#bufferedBytes += piece.length;
      if (this.#bufferedBytes > 8 * 1024 * 1024) socket.pause();
      this.#wake?.();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  /** The next `n` bytes, or undefined at a clean end of stream before any of them. */
  async exact(n: number): Promise<Buffer | undefined> {
    while (this.#bufferedBytes < n) {
      if (this.#ended) {
        if (this.#bufferedBytes === 0) return undefined;
        throw new Error('connection ended inside a request');
      }
      await this.#wait();
    }
    // Copy only the n bytes asked for (a header), never the chunk bytes buffered behind them.
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.#buffered[0]!;
      const take = Math.min(piece.length, n - filled);
      piece.copy(out, filled, 0, take);
      filled += take;
      if (take === piece.length) this.#buffered.shift();
      else this.#buffered[0] = piece.subarray(take);
    }
    this.#bufferedBytes -= n;
    return out;
  }

  /** The next `n` bytes as they arrive, in the pieces the socket delivered. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buffered.length === 0) {
        if (this.#ended) throw new Error('connection ended inside a chunk');
        await this.#wait();
        continue;
      }
      const piece = this.#buffered.shift()!;
      this.#bufferedBytes -= piece.length;
      if (piece.length > left) {
        this.#buffered.unshift(piece.subarray(left));
        this.#bufferedBytes += piece.length - left;
        yield piece.subarray(0, left);
        return;
      }
      left -= piece.length;
      yield piece;
    }
  }

  #wait(): Promise<void> {
    this.#socket.resume();
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }
}

async function serveTcp(socket: net.Socket, store: DiskChunkStore): Promise<void> {
  const reader = new SocketReader(socket);
  for (;;) {
    const header = await reader.exact(TCP_HEADER_BYTES);
    if (!header) return;
    const op = String.fromCharCode(header[0]!);
    const work = String.fromCharCode(header[1]!);
    const length = Number(header.readBigUInt64BE(2));
    const id = header.subarray(10, 42).toString('hex');
    if (op === 'P') {
      let ok = true;
      if (work === 's') {
        ok = await store.putStream(id, length, reader.stream(length)).then(
          () => true,
          () => false,
        );
      } else {
        for await (const _ of reader.stream(length)) {
          // Counted and dropped.
        }
      }
      if (!socket.write(Buffer.of(ok ? 0 : 1))) await new Promise((r) => socket.once('drain', r));
      continue;
    }
    // GET: length is what a discarding GET sends; a storing GET sends the file.
    const out = Buffer.alloc(8);
    if (work === 's') {
      const read = await store.openRead(id);
      out.writeBigUInt64BE(BigInt(read.sizeBytes));
      socket.write(out);
      for await (const piece of read.body) if (!socket.write(piece)) await new Promise((r) => socket.once('drain', r));
    } else {
      out.writeBigUInt64BE(BigInt(length));
      socket.write(out);
      if (!socket.write(fixedBody(length))) await new Promise((r) => socket.once('drain', r));
    }
  }
}

// ------------------------------------------------------------------------------------ http

function httpServer(work: 'discard' | 'store', store: DiskChunkStore): http.Server {
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
      if (work === 'store') {
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
    if (work === 'discard') {
      const body = fixedBody(4 * 1024 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
      return;
    }
    store.openRead(id).then(async (read) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(read.sizeBytes) });
      for await (const piece of read.body) if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
      res.end();
    }, fail);
  });
  server.keepAliveTimeout = 30_000;
  return server;
}

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
  const storeDir = await mkdtemp(join(process.env['BENCH_SINK_DIR'] ?? tmpdir(), 'ts3gw-sink-'));
  const store = await openDiskChunkStore({ dir: storeDir, fsync: true });
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    serveTcp(socket, store).then(
      () => socket.end(),
      () => socket.destroy(),
    );
  });
  const listen = (server: net.Server | http.Server): Promise<number> =>
    new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
  const rpc = grpcServer(store);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    rpc.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  const [tcpPort, httpDiscard, httpStore] = await Promise.all([listen(tcp), listen(httpServer('discard', store)), listen(httpServer('store', store))]);
  process.stdout.write(`sink tcp=${tcpPort} http-discard=${httpDiscard} http-store=${httpStore} grpc=${grpcPort}\n`);
  const exit = () => {
    void rm(storeDir, { recursive: true, force: true }).finally(() => process.exit(0));
  };
  process.stdin.resume();
  process.stdin.on('end', exit);
  process.on('SIGTERM', exit);
}
