/**
 * The internal chunk endpoint, /_ts3gw/chunks/<id> on the S3 port: how nodes hand each other
 * chunk bytes. Authenticated by the cluster id and secret headers, not by SigV4 (nodes do not
 * share users' keys). Bodies are bounded and streamed both ways: a PUT body goes straight into
 * the store, which hashes it as it arrives and keeps nothing that does not hash to <id>; a GET
 * streams the file, and the store withholds its last piece unless the whole file verified, so a
 * corrupt copy ends in a truncated (failed) transfer, never a complete one.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A stored chunk as the endpoint streams it (DiskChunkStore.openRead). */
export interface InternalChunkRead {
  sizeBytes: number;
  body: AsyncIterable<Buffer>;
}

/** What the node gives the internal endpoint. */
export interface InternalChunks {
  /** True when the headers carry this cluster's id and secret. */
  authorize(headers: Record<string, string | string[] | undefined>): boolean;
  /** Largest chunk body accepted. */
  chunkBytesMax: number;
  /**
   * Stores the `sizeBytes` bytes of `body` under `id` once they hash to it; rejects with a
   * `code` (CHUNK_ERR_HASH_MISMATCH, CHUNK_ERR_SIZE_MISMATCH, CHUNK_ERR_TOO_LARGE) otherwise.
   */
  putStream(id: string, sizeBytes: number, body: AsyncIterable<Uint8Array>): Promise<void>;
  /** The chunk opened for streaming, or undefined when this node has no copy. */
  openRead(id: string): Promise<InternalChunkRead | undefined>;
  /** True when this node holds a copy that hashes to `id`. */
  verify(id: string): Promise<boolean>;
}

/** Refusals of a PUT body, by the store's error code. */
const PUT_REFUSALS: Record<string, number> = {
  CHUNK_ERR_HASH_MISMATCH: 400,
  CHUNK_ERR_SIZE_MISMATCH: 400,
  CHUNK_ERR_TOO_LARGE: 413,
};

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
    // Rebalancing asks before it drops a copy: 200 only for a copy that verifies.
    reply.code((await chunks.verify(id)) ? 200 : 404).send();
    return;
  }
  if (req.method === 'GET') {
    const read = await chunks.openRead(id);
    if (!read) {
      reply.code(404).type('text/plain').send('no such chunk');
      return;
    }
    reply.code(200).type('application/octet-stream').header('content-length', String(read.sizeBytes));
    reply.send(Readable.from(read.body, { objectMode: false }));
    return;
  }
  if (req.method === 'PUT') {
    const length = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(length) || length < 0 || length > chunks.chunkBytesMax) {
      reply.code(413).header('Connection', 'close').type('text/plain').send('chunk body too large or without length');
      return;
    }
    try {
      await chunks.putStream(id, length, req.raw);
    } catch (err) {
      const status = PUT_REFUSALS[(err as { code?: string }).code ?? ''];
      if (status === undefined) throw err;
      reply.code(status).type('text/plain').send(String((err as Error).message));
      return;
    }
    reply.code(204).send();
    return;
  }
  reply.code(405).type('text/plain').send('GET, HEAD or PUT');
}
