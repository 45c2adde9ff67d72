/**
 * The digest of a node's whole metadata state: sha256 over its snapshot stream (every key and
 * value in key order, the applied index among them). Nodes that applied the same log prefix hold
 * equal digests, so after a chaos run heals, equal digests at an equal applied index on every node
 * show that their state machines converged (a diverging apply, a bad snapshot install, or a lost
 * entry would all show). It reads the whole store: an operator and test tool, not a hot path.
 */
import { createHash } from 'node:crypto';

/** What metaDigest reads. */
export interface DigestibleMeta {
  appliedIndex(): number;
  exportSnapshot(): AsyncIterable<Uint8Array>;
}

/**
 * Keys of the store that are this node's own bookkeeping, not replicated state: the marker a
 * snapshot install leaves (src/meta/snapshot.ts). The first 10-minute chaos run with the digest
 * check saw it as a difference between nodes that had installed a snapshot and the others.
 */
const NODE_LOCAL_KEYS = new Set(['M\u0000snapshotInstalled']);

/** sha256 (hex) of the state and the applied index; `stable` is false when an apply moved the index while it was read. */
export async function metaDigest(meta: DigestibleMeta): Promise<{ appliedIndex: number; digest: string; stable: boolean }> {
  const before = meta.appliedIndex();
  const hash = createHash('sha256');
  // The stream is records (keyLength:u32be key valueLength:u32be value) cut anywhere into chunks.
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of meta.exportSnapshot()) {
    pending = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at >= 4) {
      const keyLength = pending.readUInt32BE(at);
      if (pending.length - at < 8 + keyLength) break;
      const valueLength = pending.readUInt32BE(at + 4 + keyLength);
      const end = at + 8 + keyLength + valueLength;
      if (pending.length < end) break;
      if (!NODE_LOCAL_KEYS.has(pending.toString('latin1', at + 4, at + 4 + keyLength))) hash.update(pending.subarray(at, end));
      at = end;
    }
    pending = pending.subarray(at);
  }
  const after = meta.appliedIndex();
  return { appliedIndex: after, digest: hash.digest('hex'), stable: before === after };
}
