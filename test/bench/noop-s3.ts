/**
 * The bench's ceiling: a plain node:http server that answers the S3 calls the small rows make
 * with nothing behind them (no authentication, no disk, no metadata): a PUT keeps its body in
 * memory (at most NOOP_OBJECTS_MAX bodies of at most NOOP_OBJECT_BYTES_MAX; past that it is
 * answered and dropped), a GET answers the kept body, anything else 200 with no body. With the
 * same client as ts3gw and s3rver, its ops/s are what this machine's HTTP and the load generator
 * allow; the GET target is a share of it.
 * Usage: `node test/bench/noop-s3.ts`. Prints `no-op S3 is serving at http://127.0.0.1:PORT`.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

const NOOP_OBJECTS_MAX = 4096;
const NOOP_OBJECT_BYTES_MAX = 64 * 1024;

const objects = new Map<string, { body: Buffer; etag: string }>();

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const path = (req.url ?? '/').split('?', 1)[0]!;
  const parts: Buffer[] = [];
  let size = 0;
  req.on('data', (piece: Buffer) => {
    size += piece.length;
    if (size <= NOOP_OBJECT_BYTES_MAX) parts.push(piece);
  });
  req.on('end', () => {
    if (req.method === 'PUT') {
      const body = Buffer.concat(parts);
      const etag = createHash('md5').update(body).digest('hex');
      if (size <= NOOP_OBJECT_BYTES_MAX && (objects.size < NOOP_OBJECTS_MAX || objects.has(path))) objects.set(path, { body, etag });
      res.writeHead(200, { ETag: `"${etag}"`, 'Content-Length': '0' }).end();
      return;
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const found = objects.get(path);
      if (found) {
        res.writeHead(200, { ETag: `"${found.etag}"`, 'Content-Length': String(found.body.length), 'Content-Type': 'application/octet-stream' });
        res.end(req.method === 'GET' ? found.body : undefined);
        return;
      }
    }
    res.writeHead(200, { 'Content-Length': '0' }).end();
  });
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  process.stdout.write(`no-op S3 is serving at http://127.0.0.1:${address.port}\n`);
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The bench holds our stdin open; if it dies without signalling us, do not linger.
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
