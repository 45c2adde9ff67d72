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

/** sha256 (hex) of the state and the applied index; `stable` is false when an apply moved the index while it was read. */
export async function metaDigest(meta: DigestibleMeta): Promise<{ appliedIndex: number; digest: string; stable: boolean }> {
  const before = meta.appliedIndex();
  const hash = createHash('sha256');
  for await (const chunk of meta.exportSnapshot()) hash.update(chunk);
  const after = meta.appliedIndex();
  return { appliedIndex: after, digest: hash.digest('hex'), stable: before === after };
}
