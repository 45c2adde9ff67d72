/**
 * Request metrics of the S3 port by operation: in-flight requests, answers by operation and
 * status with their latency, and the bytes client connections moved: at each answer, what its
 * connection read and wrote since the previous answer on it (heads included), so every byte is
 * counted once even though the parser reads ahead of the request it is on. The operation comes
 * from the same parse the router uses (s3/endpoint.ts operationOf), so the label set is bounded.
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics/metrics.ts';
import { operationOf } from '../s3/endpoint.ts';
import { parseTarget } from '../s3/names.ts';

/** A connection's byte counts as of its last answer. */
interface Seen {
  read: number;
  written: number;
}

/** Adds the hooks to `app` (before it listens). */
export function instrumentS3(app: FastifyInstance, metrics: Metrics, domain: string | undefined): void {
  const seen = new WeakMap<object, Seen>();
  app.addHook('onRequest', async (_req, reply) => {
    metrics.inFlight(1);
    // 'close' comes for every response, answered or aborted (onResponse misses the aborted).
    reply.raw.once('close', () => metrics.inFlight(-1));
  });
  app.addHook('onResponse', async (req, reply) => {
    const socket = req.raw.socket;
    const at = seen.get(socket) ?? { read: 0, written: 0 };
    const now = { read: socket.bytesRead, written: socket.bytesWritten };
    seen.set(socket, now);
    let operation = 'Invalid';
    try {
      operation = operationOf(req.method, parseTarget(req.raw.url ?? '/', req.headers.host, domain), req.headers);
    } catch {
      // An unparsable URL is counted as Invalid.
    }
    metrics.observeOperation(operation, reply.statusCode, reply.elapsedTime / 1000, now.read - at.read, now.written - at.written);
  });
}
