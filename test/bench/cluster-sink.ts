/**
 * Baseline receiver of `npm run bench:cluster`, run as its own process (like a ts3gw node) so the
 * baselines cross a process boundary the way a chunk transfer does:
 *
 *   tcp   a plain net server on 127.0.0.1: counts the bytes of each connection and, when the
 *         client ends its side, answers with the count (8 bytes, big-endian) and closes.
 *   http  a plain node:http server: PUT reads the whole body (collected like the chunk endpoint
 *         does) and answers 204 without storing it; GET answers with a fixed body of the size in
 *         ?bytes= (4 MiB by default). No fsync, no hashing: HTTP framing and copies only.
 *
 * Prints one line `sink tcp=<port> http=<port>` once both listen; exits on SIGTERM or when its
 * parent's stdin closes.
 */
import http from 'node:http';
import net from 'node:net';

const tcp = net.createServer((socket) => {
  let bytes = 0;
  socket.on('data', (piece: Buffer) => {
    bytes += piece.length;
  });
  socket.on('end', () => {
    const out = Buffer.alloc(8);
    out.writeBigUInt64BE(BigInt(bytes));
    socket.end(out);
  });
  socket.on('error', () => socket.destroy());
});

const bodies = new Map<number, Buffer>();
const web = http.createServer((req, res) => {
  if (req.method === 'PUT') {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (piece: Buffer) => {
      parts.push(piece);
      size += piece.length;
    });
    req.on('end', () => {
      Buffer.concat(parts, size);
      res.writeHead(204).end();
    });
    return;
  }
  const bytes = Number(new URL(req.url ?? '/', 'http://sink').searchParams.get('bytes') ?? 4 * 1024 * 1024);
  let body = bodies.get(bytes);
  if (!body) {
    body = Buffer.alloc(bytes, 7);
    bodies.set(bytes, body);
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
});
web.keepAliveTimeout = 30_000;

const listen = (server: net.Server | http.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));

const [tcpPort, httpPort] = await Promise.all([listen(tcp), listen(web)]);
process.stdout.write(`sink tcp=${tcpPort} http=${httpPort}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
