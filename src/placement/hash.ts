/**
 * Positions on the placement ring. The ring is the 32-bit circle [0, 2^32): every virtual node
 * sits at a token and every chunk at a position, and a chunk belongs to the virtual nodes that
 * follow its position clockwise (see ring.ts).
 *
 * Tokens are MurmurHash3_x86_32 of (node id, vnode index) so that they depend on nothing but
 * those two numbers: adding a node never moves another node's tokens, which is what keeps a
 * membership change from reshuffling data between untouched nodes.
 *
 * A chunk's position is the first 32 bits of its id, taken directly rather than hashed again.
 * Chunk ids are sha256 digests, already uniform, so a second hash would add cost and nothing
 * else; and because the mapping is monotonic a ring range (start, end] is exactly a range of
 * chunk ids by prefix, so anti-entropy can compare inventories of one ring range by listing a
 * contiguous id range.
 */
import murmur from 'murmurhash3js-revisited';
import { assert } from '../util/assert.ts';
import { isChunkId } from '../util/chunk-id.ts';

export { CHUNK_ID_HEX_LENGTH, isChunkId } from '../util/chunk-id.ts';

/** Number of positions on the ring (the circle is [0, RING_SIZE)). */
export const RING_SIZE = 0x1_0000_0000;

/** Seed of the token hash. Changing it moves every token: it is part of the on-disk layout. */
export const TOKEN_HASH_SEED = 0;

/** Largest node id the ring accepts; ids are hashed as unsigned 32-bit integers. */
export const NODE_ID_MAX = 0xffff_ffff;

/**
 * Returns the ring position of a chunk: its first 8 hex digits as an unsigned 32-bit integer.
 * Throws TypeError for anything that is not a chunk id, because a malformed id must not be
 * silently placed somewhere.
 */
export function chunkPosition(chunkId: string): number {
  if (!isChunkId(chunkId)) throw new TypeError(`chunk id must be 64 lowercase hex digits, got ${JSON.stringify(chunkId)}`);
  const position = Number.parseInt(chunkId.slice(0, 8), 16);
  assert(Number.isInteger(position) && position >= 0 && position < RING_SIZE, 'chunk position is on the ring');
  return position;
}

/**
 * Returns the token of virtual node `vnode` of node `nodeId`: MurmurHash3_x86_32 over the 8
 * bytes (nodeId, vnode), each big-endian unsigned 32-bit.
 */
export function vnodeToken(nodeId: number, vnode: number): number {
  assert(Number.isInteger(nodeId) && nodeId >= 0 && nodeId <= NODE_ID_MAX, `node id ${nodeId} is a u32`);
  assert(Number.isInteger(vnode) && vnode >= 0 && vnode <= 0xffff_ffff, `vnode index ${vnode} is a u32`);
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, nodeId, false);
  view.setUint32(4, vnode, false);
  const token = murmur.x86.hash32(bytes, TOKEN_HASH_SEED);
  assert(token !== undefined && Number.isInteger(token) && token >= 0 && token < RING_SIZE, 'murmur hash32 gives a u32');
  return token;
}
