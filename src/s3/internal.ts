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
import { isChunkId } from '../util/chunk-id.ts';

/** A stored chunk as the endpoint streams it (DiskChunkStore.openRead). */
export interface InternalChunkRead {
  sizeBytes: number;
  body: AsyncIterable<Buffer>;
  /** Gives the body's buffer back for reuse; called once the response finished (see there). */
  release(): void;
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
  /**
   * Anti-entropy: the inventory digest of the chunks this node holds in each ring range
   * (positions (start, end]); a TypeError for malformed ranges.
   */
  inventoryDigests(ranges: Array<{ start: number; end: number }>): Promise<string[]>;
  /** Anti-entropy: the sorted ids of the chunks this node holds in one ring range. */
  inventoryList(range: { start: number; end: number }): Promise<string[]>;
}

/** Largest inventory request body: 65,536 ranges of two 10-digit numbers fit. */
export const INVENTORY_BODY_BYTES_MAX = 2 * 1024 * 1024;

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
  if (id === 'inventory') {
    await serveInventory(req, reply, chunks);
    return;
  }
  if (!isChunkId(id)) {
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
    // 'finish' comes after the last socket write completed, and writes complete in order, so
    // no piece is referenced any more. An aborted response ('close' alone) keeps the buffer
    // out of the pool: a cancelled write may still point into it.
    reply.raw.once('finish', () => read.release());
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

/**
 * /_ts3gw/chunks/inventory: POST {"ranges": [start0, end0, start1, end1, …]} answers
 * {"digests": [...]} (one per range); GET ?start=&end= answers {"ids": [...]} for one range.
 */
async function serveInventory(req: FastifyRequest, reply: FastifyReply, chunks: InternalChunks): Promise<void> {
  const bad = (why: string) => reply.code(400).type('text/plain').send(why);
  try {
    if (req.method === 'POST') {
      const length = Number(req.headers['content-length']);
      if (!Number.isSafeInteger(length) || length < 0 || length > INVENTORY_BODY_BYTES_MAX) {
        reply.code(413).header('Connection', 'close').type('text/plain').send('inventory request too large or without length');
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      for await (const piece of req.raw) {
        size += (piece as Buffer).length;
        if (size > length) break;
        parts.push(piece as Buffer);
      }
      if (size !== length) return void bad('body length does not match content-length');
      const flat = (JSON.parse(Buffer.concat(parts, size).toString('utf8')) as { ranges?: unknown }).ranges;
      if (!Array.isArray(flat) || flat.length % 2 !== 0) return void bad('ranges must be [start, end, …]');
      const ranges = [];
      for (let i = 0; i < flat.length; i += 2) ranges.push({ start: flat[i] as number, end: flat[i + 1] as number });
      reply.code(200).type('application/json').send(JSON.stringify({ digests: await chunks.inventoryDigests(ranges) }));
      return;
    }
    if (req.method === 'GET') {
      const query = new URL(req.raw.url ?? '/', 'http://node').searchParams;
      const range = { start: Number(query.get('start')), end: Number(query.get('end')) };
      reply.code(200).type('application/json').send(JSON.stringify({ ids: await chunks.inventoryList(range) }));
      return;
    }
  } catch (err) {
    if (err instanceof TypeError || err instanceof SyntaxError) return void bad(err.message);
    throw err;
  }
  reply.code(405).type('text/plain').send('GET or POST');
}

/** The join endpoint (/_ts3gw/join): how a new node asks to be admitted (src/membership/join.ts). */
export interface InternalJoin {
  /** True when the headers carry the cluster secret (a joiner may not know the cluster id). */
  authorize(headers: Record<string, string | string[] | undefined>): boolean;
  /** Answers one parsed JSON body. */
  admit(body: unknown): Promise<{ status: number; body: unknown }>;
}

/** Largest join request body (a few short strings). */
export const JOIN_REQUEST_BYTES_MAX = 4096;

/** Serves POST /_ts3gw/join. */
export async function serveJoin(req: FastifyRequest, reply: FastifyReply, join: InternalJoin): Promise<void> {
  const send = (status: number, body: unknown) => reply.code(status).type('application/json').send(JSON.stringify(body));
  if (req.method !== 'POST') return void send(405, { error: 'MethodNotAllowed', message: 'POST only' });
  if (!join.authorize(req.headers)) return void send(403, { error: 'AccessDenied', message: 'wrong cluster secret' });
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of req.raw) {
    size += (piece as Buffer).length;
    if (size > JOIN_REQUEST_BYTES_MAX) {
      reply.header('Connection', 'close');
      return void send(413, { error: 'RequestTooLarge', message: `join requests are at most ${JOIN_REQUEST_BYTES_MAX} bytes` });
    }
    parts.push(piece as Buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(parts, size).toString('utf8'));
  } catch (err) {
    return void send(400, { error: 'BadRequest', message: `not JSON: ${(err as Error).message}` });
  }
  const res = await join.admit(body);
  send(res.status, res.body);
}
