/**
 * The operator API (/_ts3gw/admin/…, SigV4-authenticated with the root key): cluster status,
 * membership changes and leadership transfer. JSON in query parameters, JSON out.
 *
 *   GET    /_ts3gw/admin/cluster                         status of this node and the membership
 *   POST   /_ts3gw/admin/members?id=4&address=h:p&role=learner   add a learner
 *   POST   /_ts3gw/admin/members?id=4&role=voter         promote (or add) a voter
 *   DELETE /_ts3gw/admin/members?id=4                    remove a node
 *   POST   /_ts3gw/admin/transfer-leader?id=2            hand leadership to node 2
 *   GET    /_ts3gw/admin/replication                    replication factor R and write quorum W
 *   PUT    /_ts3gw/admin/replication?r=3&w=2            change them (through the log)
 *   GET    /_ts3gw/admin/maintenance                     chunk gc/repair/rebalance/scrub counters and progress
 *   GET    /_ts3gw/admin/nodes                           every member: role, addresses, gossip state, ring share,
 *                                                        replication progress (when this node leads)
 *   POST   /_ts3gw/admin/decommission?id=4               start draining node 4 (refused with the reasons if unsafe)
 *   GET    /_ts3gw/admin/decommission[?id=4]             decommissions and their progress
 *   DELETE /_ts3gw/admin/decommission?id=4               cancel a drain (node 4 rejoins the ring)
 *   GET    /_ts3gw/admin/safe-to-remove?id=4             whether removing node 4 now loses nothing
 *   POST   /_ts3gw/admin/replace?id=2                    give dead node 2's place to a new node (refused with the reasons while it answers or without a quorum)
 *   GET    /_ts3gw/admin/replace[?id=2]                  replacements and their progress
 *   DELETE /_ts3gw/admin/replace?id=2                    withdraw a replacement no new node has taken yet
 *   GET    /_ts3gw/admin/keys                            access keys (never their secrets)
 *   POST   /_ts3gw/admin/keys[?admin=true&description=…] a new key; its secret is in this answer only
 *   PUT    /_ts3gw/admin/keys?id=K&status=disabled|active  disable or enable a key
 *   DELETE /_ts3gw/admin/keys?id=K                       delete a key
 */
import { type KeyBook, newKeyPair, type SecretSealer } from './access-keys.ts';
import { removalProblems } from '../membership/decommission.ts';
import { replacementProblems } from '../membership/replace.ts';
import { statfs } from 'node:fs/promises';
import type { ChunkPlacement } from '../chunks/cluster-chunk-store.ts';
import type { Member } from '../membership/gossip.ts';
import type { AccessKeyRecord, DecommissionRecord, NodeRecord, ReplacementRecord } from '../meta/types.ts';
import { rangeLength, RING_SIZE } from '../placement/index.ts';
import type { RaftConsensus } from '../consensus/raft-consensus.ts';
import type { AdminRequest, AdminResponse } from '../s3/context.ts';
import { DEFAULT_REPLICATION } from './cluster-view.ts';
import { errorCode } from '../util/errors.ts';

/** What the admin API reads and changes. */
export interface AdminDeps {
  consensus: RaftConsensus;
  nodeId: number;
  clusterId: string;
  rootAccessKeyId: string;
  peers(): Record<string, string>;
  /** Chunk maintenance counters and progress (a snapshot). */
  maintenance?(): unknown;
  /** Gossip's view of the other members. */
  gossip?(): Member[];
  /** Nodes registered for data placement (committed). */
  registeredNodes?(): NodeRecord[];
  /** The current placement ring. */
  placement?(): ChunkPlacement | undefined;
  /** This node's data directory (its file system's usage is reported). */
  dataDir?: string;
  /** Decommission records (committed). */
  decommissions?(): Promise<DecommissionRecord[]>;
  /** Replacement records (committed). */
  replacements?(): Promise<ReplacementRecord[]>;
  /** Gossip's view of a node by Raft id (this node is alive to itself). */
  isAlive?(nodeId: number): boolean;
  /** Access keys: who may use this API, and key management. Without it only the root key may. */
  keys?: { book: KeyBook; sealer: SecretSealer; list(): Promise<AccessKeyRecord[]> };
  /** sha256 of the whole metadata state (its snapshot stream) and the applied index it was taken at. */
  metaDigest?(): Promise<{ appliedIndex: number; digest: string; stable: boolean }>;
}

/** Serves one operator request. */
export async function handleAdmin(req: AdminRequest, deps: AdminDeps): Promise<AdminResponse> {
  const allowed = deps.keys ? deps.keys.book.isAdmin(req.accessKeyId) : req.accessKeyId === deps.rootAccessKeyId;
  if (!allowed) return { status: 403, body: { error: 'AccessDenied', message: 'the admin API needs the root key or an admin key' } };
  const id = Number(req.query.get('id'));
  try {
    switch (`${req.method} ${req.path}`) {
      case 'GET /cluster': {
        const status = deps.consensus.status();
        return {
          status: 200,
          body: {
            nodeId: deps.nodeId,
            clusterId: deps.clusterId,
            role: status.role,
            leader: status.softState.lead,
            term: status.hardState.term,
            commitIndex: status.hardState.commit,
            appliedIndex: status.appliedIndex,
            lastIndex: status.lastIndex,
            voters: status.confState.voters,
            learners: status.confState.learners,
            peers: deps.peers(),
            ...(deps.dataDir ? { disk: await diskUsage(deps.dataDir) } : {}),
          },
        };
      }
      case 'GET /meta-digest':
        // The chaos suite's convergence check: equal digests at an equal applied index on every node.
        return deps.metaDigest ? { status: 200, body: await deps.metaDigest() } : { status: 501, body: { error: 'NotImplemented', message: 'no meta digest' } };
      case 'GET /keys':
      case 'POST /keys':
      case 'PUT /keys':
      case 'DELETE /keys':
        return deps.keys ? await handleKeys(req, deps, deps.keys) : { status: 501, body: { error: 'NotImplemented', message: 'no key book' } };
      case 'GET /nodes':
        return { status: 200, body: nodesReport(deps, await deps.decommissions?.()) };
      case 'POST /decommission': {
        if (!(id >= 1)) return badRequest('id must be a positive integer');
        const records = (await deps.decommissions?.()) ?? [];
        const existing = records.find((r) => r.nodeId === id && r.state !== 'removed');
        if (existing) return { status: 200, body: existing };
        const problems = await problemsOfRemoving(deps, id, records);
        if (problems.length > 0) return { status: 409, body: { error: 'RemovalUnsafe', message: problems.join('; '), problems } };
        const now = Date.now();
        const record: DecommissionRecord = { nodeId: id, state: 'draining', startedMs: now, updatedMs: now };
        const result = await deps.consensus.propose({ type: 'SetDecommission', nodeId: id, record, expected: null }, now);
        if (!result.ok) return { status: 409, body: { error: result.code, message: result.message } };
        return { status: 202, body: record };
      }
      case 'GET /decommission': {
        const records = (await deps.decommissions?.()) ?? [];
        if (!req.query.has('id')) return { status: 200, body: { decommissions: records } };
        const record = records.find((r) => r.nodeId === id);
        return record ? { status: 200, body: record } : { status: 404, body: { error: 'NotFound', message: `no decommission of node ${id}` } };
      }
      case 'DELETE /decommission': {
        const record = ((await deps.decommissions?.()) ?? []).find((r) => r.nodeId === id);
        if (!record) return { status: 404, body: { error: 'NotFound', message: `no decommission of node ${id}` } };
        if (record.state !== 'draining') return { status: 409, body: { error: 'TooLate', message: `node ${id} is ${record.state}: it can no longer be kept` } };
        const result = await deps.consensus.propose({ type: 'SetDecommission', nodeId: id, record: null, expected: 'draining' }, Date.now());
        if (!result.ok) return { status: 409, body: { error: result.code, message: result.message } };
        return { status: 200, body: { ok: true, nodeId: id } };
      }
      case 'GET /safe-to-remove': {
        if (!(id >= 1)) return badRequest('id must be a positive integer');
        const records = (await deps.decommissions?.()) ?? [];
        const record = records.find((r) => r.nodeId === id);
        if (record?.state === 'removed') return { status: 200, body: { nodeId: id, safe: true, problems: [], state: 'removed' } };
        const problems = await problemsOfRemoving(deps, id, records.filter((r) => r.nodeId !== id));
        // Quorum and copies allow it, but until a drain moved its chunks, removing it would take
        // copies away (and, for chunks written while a peer was down, possibly the last one).
        if (record?.state !== 'drained') {
          problems.push(record ? `node ${id} is still draining: ${record.remainingChunks ?? '?'} chunk(s) left to move` : `node ${id} still holds chunks: drain it first (ts3ctl decommission ${id})`);
        }
        return { status: 200, body: { nodeId: id, safe: problems.length === 0, problems, ...(record ? { state: record.state } : {}) } };
      }
      case 'POST /replace':
      case 'GET /replace':
      case 'DELETE /replace':
        return await handleReplace(req, deps, id);
      case 'GET /maintenance':
        return { status: 200, body: { nodeId: deps.nodeId, ...(deps.maintenance?.() ?? {}) } };
      case 'POST /members': {
        if (!(id >= 1)) return badRequest('id must be a positive integer');
        const role = req.query.get('role') ?? 'learner';
        const address = req.query.get('address') ?? undefined;
        if (role === 'learner') {
          if (!address) return badRequest('address (host:port of the new node’s Raft endpoint) is required');
          await deps.consensus.addLearner(id, address);
        } else if (role === 'voter') {
          await deps.consensus.addVoter(id, address);
        } else {
          return badRequest('role must be learner or voter');
        }
        return { status: 200, body: { ok: true, ...deps.consensus.confState() } };
      }
      case 'DELETE /members': {
        if (!(id >= 1)) return badRequest('id must be a positive integer');
        await deps.consensus.removeNode(id);
        return { status: 200, body: { ok: true, ...deps.consensus.confState() } };
      }
      case 'GET /replication':
        // Linearizable: a change acknowledged through any node is what every node answers next
        // (a follower may not have applied it yet; the leader answers before its followers do).
        await deps.consensus.readBarrier();
        return { status: 200, body: (await deps.consensus.reader.getReplication()) ?? DEFAULT_REPLICATION };
      case 'PUT /replication': {
        const replicationFactor = Number(req.query.get('r'));
        const writeQuorum = Number(req.query.get('w') ?? Math.floor(replicationFactor / 2) + 1);
        if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > 16) return badRequest('r must be an integer in 1..16');
        if (!Number.isInteger(writeQuorum) || writeQuorum < 1 || writeQuorum > replicationFactor) return badRequest('w must be an integer in 1..r');
        const result = await deps.consensus.propose({ type: 'SetReplication', replication: { replicationFactor, writeQuorum } }, Date.now());
        if (!result.ok) return { status: 409, body: { error: result.code, message: result.message } };
        return { status: 200, body: { replicationFactor, writeQuorum } };
      }
      case 'POST /transfer-leader': {
        if (!(id >= 1)) return badRequest('id must be a positive integer');
        deps.consensus.transferLeadership(id);
        return { status: 202, body: { ok: true } };
      }
      default:
        return { status: 404, body: { error: 'NotFound', message: `no admin operation ${req.method} ${req.path}` } };
    }
  } catch (err) {
    const code = errorCode(err);
    if (code === 'CONSENSUS_ERR_TIMEOUT' || code === 'CONSENSUS_ERR_NO_LEADER' || code === 'RAFT_PROPOSAL_DROPPED') {
      return { status: 503, body: { error: code, message: (err as Error).message } };
    }
    throw err;
  }
}

function badRequest(message: string): AdminResponse {
  return { status: 400, body: { error: 'BadRequest', message } };
}

/** File-system usage of the data directory, in bytes. */
async function diskUsage(dir: string): Promise<{ totalBytes: number; freeBytes: number }> {
  const fs = await statfs(dir);
  return { totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize };
}

/** One member as GET /nodes reports it. */
export interface NodeReport {
  nodeId: number;
  role: 'voter' | 'learner' | 'registered';
  raftAddress?: string;
  s3Url?: string;
  zone?: string;
  weight?: number;
  /** Gossip's view from the answering node ('self' for itself). */
  gossip: 'self' | Member['state'] | 'unknown';
  /** Share of chunk copies the ring gives it, in percent of all copies. */
  ringSharePercent: number;
  /** Being decommissioned (out of the ring, its chunks moving away). */
  draining?: boolean;
  /** Leader only: the highest log index known replicated on it, and how far behind that is. */
  match?: number;
  lagEntries?: number;
}

/** Every member the answering node knows, by id. */
function nodesReport(deps: AdminDeps, decommissions: DecommissionRecord[] = []): { nodeId: number; leader: number; term: number; lastIndex: number; nodes: NodeReport[] } {
  const status = deps.consensus.status();
  const registered = new Map((deps.registeredNodes?.() ?? []).map((n) => [n.nodeId, n]));
  const gossip = new Map((deps.gossip?.() ?? []).filter((m) => m.meta.nodeId > 0).map((m) => [m.meta.nodeId, m]));
  const shares = ringShares(deps.placement?.());
  const ids = new Set([...status.confState.voters, ...status.confState.learners, ...registered.keys()]);
  const leaving = new Set(decommissions.filter((d) => d.state !== 'removed').map((d) => d.nodeId));
  const nodes = [...ids].sort((a, b) => a - b).map((id): NodeReport => {
    const record = registered.get(id);
    const progress = status.progress.get(id);
    const role = status.confState.voters.includes(id) ? 'voter' : status.confState.learners.includes(id) ? 'learner' : 'registered';
    return {
      nodeId: id,
      role,
      ...(record ? { raftAddress: record.raftAddress, s3Url: record.s3Url, weight: record.weight, ...(record.zone ? { zone: record.zone } : {}) } : {}),
      gossip: id === deps.nodeId ? 'self' : (gossip.get(id)?.state ?? 'unknown'),
      ringSharePercent: Math.round((shares.get(id) ?? 0) * 10_000) / 100,
      ...(progress ? { match: progress.match, lagEntries: Math.max(0, status.lastIndex - progress.match) } : {}),
      ...(leaving.has(id) ? { draining: true } : {}),
    };
  });
  return { nodeId: deps.nodeId, leader: status.softState.lead, term: status.hardState.term, lastIndex: status.lastIndex, nodes };
}

/** Each node's share of all chunk copies the ring places (0..1, summing to 1). */
function ringShares(placement: ChunkPlacement | undefined): Map<number, number> {
  const shares = new Map<number, number>();
  const ranges = placement?.ranges?.();
  if (!placement || !ranges) return shares;
  const copies = placement.replicationFactor * RING_SIZE;
  for (const range of ranges) {
    const length = rangeLength(range.start, range.end);
    for (const id of range.owners) shares.set(id, (shares.get(id) ?? 0) + length / copies);
  }
  return shares;
}

/** removalProblems() with what this node knows. */
async function problemsOfRemoving(deps: AdminDeps, nodeId: number, decommissions: DecommissionRecord[]): Promise<string[]> {
  const replication = (await deps.consensus.reader.getReplication()) ?? DEFAULT_REPLICATION;
  return removalProblems({
    nodeId,
    confState: deps.consensus.confState(),
    registered: deps.registeredNodes?.() ?? [],
    decommissions,
    replicationFactor: replication.replicationFactor,
    isAlive: (id) => id === deps.nodeId || (deps.isAlive?.(id) ?? true),
  });
}

/**
 * Replacement of a dead node (src/membership/replace.ts). Asking records `waiting` only: the
 * old member leaves Raft when a new node on an empty disk asks to join under its id, so an
 * operator's request alone never costs a vote.
 */
async function handleReplace(req: AdminRequest, deps: AdminDeps, id: number): Promise<AdminResponse> {
  const records = (await deps.replacements?.()) ?? [];
  const record = records.find((r) => r.nodeId === id);
  if (req.method === 'GET') {
    if (!req.query.has('id')) return { status: 200, body: { replacements: records } };
    return record ? { status: 200, body: record } : { status: 404, body: { error: 'NotFound', message: `no replacement of node ${id}` } };
  }
  if (!(id >= 1)) return badRequest('id must be a positive integer');
  if (req.method === 'DELETE') {
    if (!record) return { status: 404, body: { error: 'NotFound', message: `no replacement of node ${id}` } };
    if (record.state !== 'waiting') return { status: 409, body: { error: 'TooLate', message: `node ${id}'s replacement is ${record.state}: a new node already took its place` } };
    const result = await deps.consensus.propose({ type: 'SetReplacement', nodeId: id, record: null, expected: 'waiting' }, Date.now());
    if (!result.ok) return { status: 409, body: { error: result.code, message: result.message } };
    return { status: 200, body: { ok: true, nodeId: id } };
  }
  // Asked again while under way: the same workflow (ts3ctl replace is safe to repeat).
  if (record && record.state !== 'done') return { status: 200, body: record };
  const status = deps.consensus.status();
  // A node keeps its place while gossip has not declared it dead (a suspect may be a slow node
  // on a loaded machine) or while this node leads and hears it: giving away the place of a
  // node that still runs is the one mistake this workflow must not make.
  const members = deps.gossip?.();
  const gossipAnswers = (n: number) =>
    members ? members.some((m) => m.meta.nodeId === n && (m.state === 'alive' || m.state === 'suspect')) : (deps.isAlive?.(n) ?? true);
  const problems = replacementProblems({
    nodeId: id,
    confState: status.confState,
    registered: deps.registeredNodes?.() ?? [],
    decommissions: (await deps.decommissions?.()) ?? [],
    isAlive: (n) => n === deps.nodeId || gossipAnswers(n) || (status.role === 'leader' && status.progress.get(n)?.recentActive === true),
  });
  if (problems.length > 0) return { status: 409, body: { error: 'ReplacementUnsafe', message: problems.join('; '), problems } };
  const now = Date.now();
  const next: ReplacementRecord = { nodeId: id, state: 'waiting', startedMs: now, updatedMs: now, wasVoter: status.confState.voters.includes(id) };
  const result = await deps.consensus.propose({ type: 'SetReplacement', nodeId: id, record: next, expected: record?.state ?? null }, now);
  if (!result.ok) return { status: 409, body: { error: result.code, message: result.message } };
  return { status: 202, body: next };
}

/** Access-key management; the root key is listed but cannot be changed here. */
async function handleKeys(req: AdminRequest, deps: AdminDeps, keys: NonNullable<AdminDeps['keys']>): Promise<AdminResponse> {
  const id = req.query.get('id') ?? '';
  const records = await keys.list();
  const shown = (k: AccessKeyRecord) => ({
    accessKeyId: k.accessKeyId,
    status: k.status,
    admin: k.admin,
    createdMs: k.createdMs,
    ...(k.description ? { description: k.description } : {}),
    ...(k.buckets ? { buckets: k.buckets } : {}),
  });
  const propose = async (op: Parameters<RaftConsensus['propose']>[0]): Promise<AdminResponse | undefined> => {
    const result = await deps.consensus.propose(op, Date.now());
    if (!result.ok) return { status: 409, body: { error: result.code, message: result.message } };
    // This node answers only after its own book holds the change.
    await keys.book.reload();
    return undefined;
  };
  switch (req.method) {
    case 'GET':
      return { status: 200, body: { root: deps.rootAccessKeyId, keys: records.map(shown) } };
    case 'POST': {
      const description = req.query.get('description') ?? undefined;
      if (description !== undefined && (description.length > 256 || /[\x00-\x1f]/.test(description))) return badRequest('description: at most 256 printable characters');
      const { accessKeyId, secretAccessKey } = newKeyPair();
      const record: AccessKeyRecord = { accessKeyId, sealedSecret: keys.sealer.seal(secretAccessKey), createdMs: Date.now(), status: 'active', admin: req.query.get('admin') === 'true', ...(description ? { description } : {}) };
      const failed = await propose({ type: 'PutAccessKey', key: record });
      if (failed) return failed;
      return { status: 201, body: { ...shown(record), secretAccessKey } };
    }
    case 'PUT': {
      const record = records.find((k) => k.accessKeyId === id);
      if (!record) return { status: 404, body: { error: 'NoSuchKey', message: `no access key ${id}` } };
      // ?bucket=B&permission=read|write|owner|none: one bucket permission of a scoped key (issue #18).
      const bucket = req.query.get('bucket');
      if (bucket !== null) {
        const permission = req.query.get('permission');
        if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) return badRequest('bucket: a bucket name');
        if (permission !== 'read' && permission !== 'write' && permission !== 'owner' && permission !== 'none') return badRequest('permission must be read, write, owner or none');
        // An admin key passes every check, so a scope on it would be silently ignored.
        if (record.admin && permission !== 'none') return badRequest(`${id} is an admin key: it has every permission on every bucket, a bucket scope would not limit it`);
        const failed = await propose({ type: 'SetKeyBucketPermission', accessKeyId: id, bucket, permission: permission === 'none' ? null : permission });
        if (failed) return failed;
        const buckets = { ...(record.buckets ?? {}) };
        if (permission === 'none') delete buckets[bucket];
        else buckets[bucket] = permission;
        return { status: 200, body: shown({ ...record, buckets }) };
      }
      const status = req.query.get('status');
      if (status !== 'active' && status !== 'disabled') return badRequest('status must be active or disabled');
      // Its own command, applied to the record as it is then: a permission changed meanwhile stays.
      const failed = await propose({ type: 'SetAccessKeyStatus', accessKeyId: id, status });
      if (failed) return failed;
      return { status: 200, body: shown({ ...record, status }) };
    }
    case 'DELETE': {
      if (id === deps.rootAccessKeyId) return badRequest('the root key is configured, not managed here');
      if (!records.some((k) => k.accessKeyId === id)) return { status: 404, body: { error: 'NoSuchKey', message: `no access key ${id}` } };
      const failed = await propose({ type: 'DeleteAccessKey', accessKeyId: id });
      if (failed) return failed;
      return { status: 200, body: { ok: true, accessKeyId: id } };
    }
    default:
      return { status: 405, body: { error: 'MethodNotAllowed', message: req.method } };
  }
}
