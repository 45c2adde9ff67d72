/**
 * The internal chunk endpoint, /_ts3gw/chunks/<id> on the S3 port: how nodes hand each other
 * chunk bytes. Authenticated by the cluster id and secret headers, not by SigV4 (nodes do not
 * share users' keys). Bodies are bounded; the store verifies the hash before keeping anything.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** What the node gives the internal endpoint. */
export interface InternalChunks {
  /** True when the headers carry this cluster's id and secret. */
  authorize(headers: Record<string, string | string[] | undefined>): boolean;
  /** Largest chunk body accepted. */
  chunkBytesMax: number;
  put(id: string, data: Uint8Array): Promise<void>;
  /** The chunk's verified bytes, or undefined when this node has no good copy. */
  get(id: string): Promise<Buffer | undefined>;
}

/** Serves one internal chunk request (path below /_ts3gw/chunks/). */
export async function serveInternalChunk(req: FastifyRequest, reply: FastifyReply, id: string, chunks: InternalChunks): Promise<void> {
  reply.header('Connection', 'keep-alive');
  if (!chunks.authorize(req.headers)) {
    reply.code(403).type('text/plain').send('wrong cluster credentials');
    return;
  }
  if (!/^[0-9a-f]{64}$/.test(id)) {
    reply.code(400).type('text/plain').send('not a chunk id');
    return;
  }
  if (req.method === 'HEAD') {
    // Rebalancing asks before it drops a copy: 200 only for a copy that verifies (get() hashes it).
    const data = await chunks.get(id);
    reply.code(data ? 200 : 404).send();
    return;
  }
  if (req.method === 'GET') {
    const data = await chunks.get(id);
    if (!data) reply.code(404).type('text/plain').send('no such chunk');
    else reply.code(200).type('application/octet-stream').send(data);
    return;
  }
  if (req.method === 'PUT') {
    const length = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(length) || length < 0 || length > chunks.chunkBytesMax) {
      reply.code(413).type('text/plain').send('chunk body too large or without length');
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    for await (const piece of req.raw) {
      size += (piece as Buffer).length;
      if (size > length) break;
      parts.push(piece as Buffer);
    }
    if (size !== length) {
      reply.code(400).type('text/plain').send('body length does not match content-length');
      return;
    }
    await chunks.put(id, Buffer.concat(parts, size));
    reply.code(204).send();
    return;
  }
  reply.code(405).type('text/plain').send('GET, HEAD or PUT');
}
