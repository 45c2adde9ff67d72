/**
 * The node's persisted identity: its Raft id and the id of the cluster it belongs to, written
 * once (temp + fsync + rename) when the node first joins. A restart with a different node id, or
 * a data directory from another cluster, is refused instead of silently merged.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { PeerSpec } from '../config/config.ts';
import { errorCode, StoreError } from '../util/errors.ts';

/** The data directory belongs to another node or cluster. */
export const NODE_ERR_IDENTITY = 'NODE_ERR_IDENTITY';

/** What a node is, for good. */
export interface Identity {
  nodeId: number;
  clusterId: string;
  /** Secret for inter-node calls when none is configured (a cluster of one). */
  clusterSecret: string;
  /** Random id of this data directory's life; a wiped disk gets a new one. */
  incarnation: string;
}

/**
 * The cluster id of a static bootstrap: every founding member derives the same one from the same
 * peer list; a cluster of one gets a random one.
 */
export function bootstrapClusterId(peers: PeerSpec[] | undefined): string {
  if (!peers || peers.length <= 1) return randomBytes(8).toString('hex');
  const canonical = [...peers].sort((a, b) => a.id - b.id).map((p) => `${p.id}@${p.raftAddress}`).join(',');
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** The stored identity, or undefined before the first start. */
export async function readIdentity(dir: string): Promise<Identity | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'identity.json'), 'utf8')) as Identity;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
    return undefined;
  }
}

/** A new data directory's incarnation (random; a wiped disk gets another). */
export function newIncarnation(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Loads the identity, or creates it on first start; refuses a mismatch. A join passes the
 * incarnation it announced to the cluster, so the identity written is the one admitted.
 */
export async function loadIdentity(dir: string, wanted: { nodeId: number; clusterId: () => string; incarnation?: string }): Promise<{ identity: Identity; created: boolean }> {
  const path = join(dir, 'identity.json');
  const existing = await readIdentity(dir);
  if (existing) {
    if (existing.nodeId !== wanted.nodeId) {
      throw new StoreError(NODE_ERR_IDENTITY, `data directory belongs to node ${existing.nodeId}, not node ${wanted.nodeId}`);
    }
    return { identity: existing, created: false };
  }
  const identity: Identity = { nodeId: wanted.nodeId, clusterId: wanted.clusterId(), clusterSecret: randomBytes(24).toString('base64url'), incarnation: wanted.incarnation ?? newIncarnation() };
  await mkdir(dir, { recursive: true });
  const handle = await open(`${path}.tmp`, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(identity, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(`${path}.tmp`, path);
  return { identity, created: true };
}
