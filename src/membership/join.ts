/**
 * Joining a running cluster, both sides.
 *
 *   joiner                               any member                      leader (Raft)
 *   gossip sync with the seeds ────────► (learns members, their S3 URLs)
 *   POST /_ts3gw/join {incarnation, raftAddress, s3Url[, nodeId]}   (peer auth token header)
 *                                        AllocateNodeId ───────────────► committed: id N
 *                                        AddLearnerNode(N, raftAddress) ► committed
 *   ◄──────────────── 200 {nodeId: N, clusterId}
 *   writes its identity, starts Raft as N; the leader streams it a snapshot and the log;
 *   the promoter (promoter.ts) makes it a voter once it caught up, if voters are wanted.
 *
 * Everything that decides membership goes through the log (the id counter, the conf change);
 * gossip only told the joiner whom to ask. A joiner that names an id which is already a member
 * with another data directory (a wiped disk claiming an old identity) is refused with a reason.
 */
import { request } from 'undici';
import type { ConfState } from '../raft/types.ts';
import type { ApplyResult, MetaOp, NodeRecord, ReplacementRecord } from '../meta/types.ts';
import { StoreError } from '../util/errors.ts';
import { PEER_AUTH_HEADER, peerAuthKey, peerAuthToken } from '../util/peer-auth.ts';
import type { Member } from './gossip.ts';

/** The joiner names an id that is a member with another data directory, or asks for nonsense. */
export const MEMBERSHIP_ERR_CONFLICT = 'MEMBERSHIP_ERR_CONFLICT';
/** A join request that is not well formed. */
export const MEMBERSHIP_ERR_BAD_REQUEST = 'MEMBERSHIP_ERR_BAD_REQUEST';
/** No member admitted the joiner before its deadline. */
export const MEMBERSHIP_ERR_JOIN_TIMEOUT = 'MEMBERSHIP_ERR_JOIN_TIMEOUT';
/** The cluster refused the joiner for good (wrong secret, identity conflict, other cluster). */
export const MEMBERSHIP_ERR_REFUSED = 'MEMBERSHIP_ERR_REFUSED';
/** Not now (the member to replace still answers, or the quorum is thin): the joiner retries. */
export const MEMBERSHIP_ERR_BUSY = 'MEMBERSHIP_ERR_BUSY';
/** Joins are decided by the leader (it has heard from every member); ask it (meta.leaderUrl). */
export const MEMBERSHIP_ERR_NOT_LEADER = 'MEMBERSHIP_ERR_NOT_LEADER';

/** Path of the join endpoint on every node's S3 port. */
export const JOIN_PATH = '/_ts3gw/join';
/**
 * Header carrying the joiner's peer auth token (util/peer-auth.ts), made for the purpose 'join'
 * with no cluster id (the joiner may not know it yet): proves it holds the cluster secret.
 */
export const JOIN_AUTH_HEADER = PEER_AUTH_HEADER;
/** Largest join request body. */
export const JOIN_BODY_BYTES_MAX = 4096;

/** What a joiner says about itself. */
export interface JoinRequest {
  /** The id it wants (TS3GW_NODE_ID given explicitly); absent: allocate one. */
  nodeId?: number;
  /** Random id of its data directory's life (identity.json). */
  incarnation: string;
  /** host:port of its Raft endpoint as members reach it. */
  raftAddress: string;
  s3Url: string;
  /**
   * Take over the place of member `nodeId` if it is there with another data directory: a node
   * whose disk was lost (a StatefulSet pod with a new PVC). The old member is removed from Raft
   * and the new one added back as a learner under the same id; chunks are refilled by repair.
   */
  replace?: boolean;
}

/** The member's answer. */
export interface JoinAnswer {
  nodeId: number;
  clusterId: string;
  /** Raft addresses of the members (id → host:port): a founder's is in no log entry. */
  peers: Record<string, string>;
  /** True when the answer removed an old member of this id first (replace). */
  replaced?: boolean;
}

/** What admitting a joiner needs from the node (RaftConsensus plus the incarnation book). */
export interface AdmitDeps {
  clusterId: string;
  confState(): ConfState;
  propose(op: MetaOp, stampMs: number): Promise<ApplyResult>;
  addLearner(id: number, raftAddress: string): Promise<void>;
  removeNode(id: number): Promise<void>;
  listNodes(): Promise<NodeRecord[]>;
  /** The data-directory incarnation last seen from a member, if any traffic came from it. */
  incarnationOf(id: number): string | undefined;
  /** Raft addresses of the members this node knows, itself included. */
  peers(): Record<string, string>;
  /**
   * Whether this node leads, else the leader's S3 URL if known. Only the leader admits: it has
   * heard from every member, so it knows each one's data-directory incarnation (a follower hears
   * only from the leader and could not tell a lost disk from a late founder).
   */
  leader(): { self: true } | { self: false; s3Url: string | undefined };
  /** True when the leader heard from this member lately (its progress is recentActive). */
  isActive(id: number): boolean;
  /** Ids with a decommission record: they left (or are leaving) and may not come back as such. */
  leavingIds(): Promise<number[]>;
  /** The replacement record of a node id (an operator's ts3ctl replace), if any. */
  replacementOf(id: number): Promise<ReplacementRecord | undefined>;
}

/** Checks the shape of a join request body; throws MEMBERSHIP_ERR_BAD_REQUEST. */
export function parseJoinRequest(body: unknown): JoinRequest {
  const bad = (why: string) => new StoreError(MEMBERSHIP_ERR_BAD_REQUEST, why);
  if (typeof body !== 'object' || body === null) throw bad('a JSON object is expected');
  const b = body as Record<string, unknown>;
  if (typeof b['incarnation'] !== 'string' || !/^[0-9a-f]{8,64}$/.test(b['incarnation'])) throw bad('incarnation must be hex');
  if (typeof b['raftAddress'] !== 'string' || !/^[^\s/@]+:\d{1,5}$/.test(b['raftAddress'])) throw bad('raftAddress must be host:port');
  if (typeof b['s3Url'] !== 'string' || !/^https?:\/\/[^/\s]+$/.test(b['s3Url'])) throw bad('s3Url must be http(s)://host:port');
  if (b['nodeId'] !== undefined && !(Number.isSafeInteger(b['nodeId']) && (b['nodeId'] as number) >= 1)) throw bad('nodeId must be a positive integer');
  if (b['replace'] !== undefined && (typeof b['replace'] !== 'boolean' || b['nodeId'] === undefined)) throw bad('replace must be a boolean and needs a nodeId');
  return {
    ...(b['replace'] === true ? { replace: true } : {}),
    incarnation: b['incarnation'],
    raftAddress: b['raftAddress'],
    s3Url: b['s3Url'],
    ...(b['nodeId'] !== undefined ? { nodeId: b['nodeId'] as number } : {}),
  };
}

/**
 * Admits joiners, one at a time on this node (each admission is two log entries; doing them in
 * turn keeps the answers easy to reason about, and joins are rare).
 */
export class JoinAdmitter {
  readonly #deps: AdmitDeps;
  #turn: Promise<unknown> = Promise.resolve();

  constructor(deps: AdmitDeps) {
    this.#deps = deps;
  }

  /** Allocates an id (or checks the one asked for) and adds the joiner as a learner. */
  admit(request: JoinRequest): Promise<JoinAnswer> {
    const run = this.#turn.then(() => this.#admit(request));
    this.#turn = run.catch(() => undefined);
    return run;
  }

  async #admit(request: JoinRequest): Promise<JoinAnswer> {
    const deps = this.#deps;
    const lead = deps.leader();
    if (!lead.self) {
      throw new StoreError(MEMBERSHIP_ERR_NOT_LEADER, lead.s3Url ? `ask the leader at ${lead.s3Url}` : 'no leader known yet', lead.s3Url ? { leaderUrl: lead.s3Url } : {});
    }
    const conf = deps.confState();
    const members = new Set([...conf.voters, ...conf.learners]);
    let nodeId = request.nodeId;
    if (nodeId !== undefined && (await deps.leavingIds()).includes(nodeId)) {
      throw new StoreError(MEMBERSHIP_ERR_CONFLICT, `node ${nodeId} was decommissioned (or is being): start this node without a node id to join as a new member`, { nodeId });
    }
    // The operator asked for this place to be given to a new node (ts3ctl replace): a joiner
    // naming the id is the replacement, with or without TS3GW_REPLACE.
    const asked = nodeId !== undefined ? await deps.replacementOf(nodeId) : undefined;
    // The same data directory asking again after the leader recorded its admission (the answer
    // was lost): the place is already its own; removing and adding it again would only churn.
    if (nodeId !== undefined && asked?.state !== 'waiting' && asked?.incarnation === request.incarnation && members.has(nodeId)) {
      return { nodeId, clusterId: deps.clusterId, peers: deps.peers(), replaced: true };
    }
    const replace = request.replace === true || asked?.state === 'waiting';
    if (nodeId !== undefined && members.has(nodeId)) {
      const known = deps.incarnationOf(nodeId);
      // A founder that never ran yet (it started late, after the others formed): its place is
      // waiting for it; nothing to change. One that ran registered itself through the log, so
      // an unknown incarnation alone does not make a late founder (this leader may be new).
      const ranBefore = (await deps.listNodes()).some((n) => n.nodeId === nodeId);
      if (replace && known === undefined && !ranBefore) return { nodeId, clusterId: deps.clusterId, peers: deps.peers() };
      if (replace && known !== request.incarnation) {
        // Only the place of a member that is gone: one the leader still hears from is alive
        // (a second process with the same id, a remounted empty directory), and taking a voter
        // out while too few others answer would lose the quorum.
        if (deps.isActive(nodeId)) {
          throw new StoreError(MEMBERSHIP_ERR_BUSY, `node ${nodeId} still answers the leader: a replacement waits until it is gone`, { nodeId });
        }
        if (conf.voters.includes(nodeId)) {
          const others = conf.voters.filter((id) => id !== nodeId);
          const answering = others.filter((id) => deps.isActive(id)).length;
          if (others.length > 0 && answering < Math.floor(others.length / 2) + 1) {
            throw new StoreError(MEMBERSHIP_ERR_BUSY, `only ${answering} of the other ${others.length} voters answer: replacing node ${nodeId} now would lose the quorum`, { nodeId });
          }
        }
        // The old data directory is gone: remove that member, add the new one in its place. The
        // removal makes every node forget the old incarnation, so the new one is heard.
        const wasVoter = conf.voters.includes(nodeId);
        await deps.removeNode(nodeId);
        await addLearnerSoon(deps, nodeId, request.raftAddress);
        await recordJoined(deps, nodeId, request.incarnation, asked, wasVoter);
        return { nodeId, clusterId: deps.clusterId, peers: deps.peers(), replaced: true };
      }
      if (known !== request.incarnation) {
        throw new StoreError(
          MEMBERSHIP_ERR_CONFLICT,
          `node ${nodeId} is already a member with another data directory (a wiped or replaced disk cannot take back an old identity): ` +
            `start it without a node id to join as a new member, or replace node ${nodeId} (ts3ctl replace ${nodeId})`,
          { nodeId },
        );
      }
      // The same data directory asking again (its first answer was lost): already admitted.
      return { nodeId, clusterId: deps.clusterId, peers: deps.peers() };
    }
    if (nodeId === undefined) {
      const registered = await deps.listNodes();
      const floor = Math.max(0, ...members, ...registered.map((n) => n.nodeId)) + 1;
      // By incarnation: a joiner asking again after a lost answer gets the same id back.
      const result = await deps.propose({ type: 'AllocateNodeId', floor, incarnation: request.incarnation }, Date.now());
      if (!result.ok || result.value?.kind !== 'AllocateNodeId') throw new StoreError(MEMBERSHIP_ERR_BAD_REQUEST, `could not allocate a node id: ${result.ok ? 'no value' : result.message}`);
      nodeId = result.value.nodeId;
      // Already added as a learner by the first attempt: nothing more to change.
      if (members.has(nodeId)) return { nodeId, clusterId: deps.clusterId, peers: deps.peers() };
    }
    await deps.addLearner(nodeId, request.raftAddress);
    // A retried replace finds the old member already removed (by its first attempt, or by a
    // leader that died before it added the new one): the place it takes is the same.
    if (replace) await recordJoined(deps, nodeId, request.incarnation, asked, asked?.wasVoter ?? false);
    return { nodeId, clusterId: deps.clusterId, peers: deps.peers(), ...(replace ? { replaced: true } : {}) };
  }
}

/**
 * Records that the new node took `nodeId`'s place (visible in GET /_ts3gw/admin/replace). Best
 * effort: the admission itself is done, and the new node records it itself if this is lost
 * (ReplaceWorker).
 */
async function recordJoined(deps: AdmitDeps, nodeId: number, incarnation: string, asked: ReplacementRecord | undefined, wasVoter: boolean): Promise<void> {
  const now = Date.now();
  const record: ReplacementRecord = { nodeId, state: 'joined', startedMs: asked?.startedMs ?? now, updatedMs: now, wasVoter: asked?.wasVoter ?? wasVoter, incarnation };
  try {
    await deps.propose({ type: 'SetReplacement', nodeId, record, expected: asked?.state ?? null }, now);
  } catch (err) {
    // Lost leadership or timed out after the admission itself was done: the joiner must still
    // get its answer (it was admitted), and it records the step itself once it runs.
    const code = (err as { code?: string }).code;
    if (code !== 'CONSENSUS_ERR_NO_LEADER' && code !== 'RAFT_PROPOSAL_DROPPED' && code !== 'CONSENSUS_ERR_TIMEOUT') throw err;
  }
}

/**
 * addLearner right after another membership change: Raft takes one change at a time, and the
 * leader refuses the next until the previous one is applied everywhere it must be, so a refusal
 * (dropped proposal, timeout) is retried a few times before the joiner is told to come back.
 */
async function addLearnerSoon(deps: AdmitDeps, nodeId: number, raftAddress: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.addLearner(nodeId, raftAddress);
      return;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= CONF_CHANGE_RETRIES || (code !== 'CONSENSUS_ERR_NO_LEADER' && code !== 'RAFT_PROPOSAL_DROPPED' && code !== 'CONSENSUS_ERR_TIMEOUT')) throw err;
      await new Promise((r) => setTimeout(r, CONF_CHANGE_RETRY_MS));
    }
  }
}

const CONF_CHANGE_RETRIES = 20;
const CONF_CHANGE_RETRY_MS = 100;

/** Requests a joiner sends in one round (each member once, plus leaders they point to). */
const JOIN_ASKS_PER_ROUND_MAX = 32;

/** How a joiner reaches members' join endpoints (fetch, or a fake in tests). */
export type JoinPoster = (url: string, secret: string, request: JoinRequest) => Promise<{ status: number; body: unknown }>;

/**
 * The real poster: undici's request with a deadline. Not fetch: the Fetch standard re-sends a
 * request answered 421 on a reused connection, with the same headers, and a follower answers a
 * join with 421 (ask the leader); the re-sent token is then refused as a replay (403), which the
 * joiner must take as final. A fresh token goes with every post instead.
 */
export const postJoin: JoinPoster = async (url, secret, joinRequest) => {
  const res = await request(`${url}${JOIN_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [JOIN_AUTH_HEADER]: peerAuthToken(peerAuthKey(secret), 'join', '') },
    body: JSON.stringify(joinRequest),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's page, an older node): kept as text for the message.
  }
  return { status: res.statusCode, body };
};

/** What the joiner's loop needs. */
export interface JoinerDeps {
  /** Members gossip knows of now (alive ones are asked). */
  members(): Member[];
  /** Asks the seeds again (gossip sync). */
  resync(): void;
  post: JoinPoster;
  sleep(ms: number): Promise<void>;
  nowMs(): number;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * Asks members to admit this node until one does, a refusal is final, or `timeoutMs` passes.
 * Members are those gossip found through the seeds that already have a node id.
 */
export async function joinCluster(
  options: { seeds: string[]; secret: string; request: JoinRequest; expectedClusterId?: string; timeoutMs: number; retryMs: number },
  deps: JoinerDeps,
): Promise<JoinAnswer> {
  const deadline = deps.nowMs() + options.timeoutMs;
  let lastProblem = 'no member found yet';
  let lastLogMs = 0;
  for (let attempt = 0; deps.nowMs() < deadline; attempt++) {
    const candidates = deps.members().filter((m) => m.state === 'alive' && m.meta.nodeId > 0);
    const urls = candidates.map((m) => m.meta.s3Url);
    for (let i = 0; i < urls.length && i < JOIN_ASKS_PER_ROUND_MAX; i++) {
      const url = urls[i]!;
      let res: { status: number; body: unknown };
      try {
        res = await deps.post(url, options.secret, options.request);
      } catch (err) {
        lastProblem = `${url}: ${String(err)}`;
        continue;
      }
      const member = { meta: { s3Url: url } };
      const body = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as Record<string, unknown>;
      const message = typeof body['message'] === 'string' ? body['message'] : String(res.body);
      if (res.status === 200 && Number.isSafeInteger(body['nodeId']) && typeof body['clusterId'] === 'string') {
        const peers = typeof body['peers'] === 'object' && body['peers'] !== null ? (body['peers'] as Record<string, string>) : {};
        const answer: JoinAnswer = { nodeId: body['nodeId'] as number, clusterId: body['clusterId'], peers, ...(body['replaced'] === true ? { replaced: true } : {}) };
        if (options.expectedClusterId !== undefined && answer.clusterId !== options.expectedClusterId) {
          throw new StoreError(MEMBERSHIP_ERR_REFUSED, `the seeds belong to cluster ${answer.clusterId}, not ${options.expectedClusterId} (TS3GW_CLUSTER_ID)`);
        }
        return answer;
      }
      // Not the leader: ask the one it names next.
      if (res.status === 421 && typeof body['leaderUrl'] === 'string') {
        urls.splice(i + 1, 0, body['leaderUrl']);
        lastProblem = `${url}: ${message}`;
        continue;
      }
      if (res.status === 403) throw new StoreError(MEMBERSHIP_ERR_REFUSED, `${member.meta.s3Url} refused the join: wrong cluster secret (${message})`);
      if (res.status === 409 || res.status === 400) throw new StoreError(MEMBERSHIP_ERR_REFUSED, `${member.meta.s3Url} refused the join: ${message}`);
      // 503 (no leader yet, election under way) and anything else: try another, then again.
      lastProblem = `${member.meta.s3Url} answered ${res.status}: ${message}`;
    }
    if (deps.nowMs() - lastLogMs >= 10_000) {
      lastLogMs = deps.nowMs();
      deps.logger.info({ seeds: options.seeds, members: candidates.length, problem: lastProblem }, 'waiting to join the cluster');
    }
    if (attempt % 3 === 0) deps.resync();
    await deps.sleep(options.retryMs);
  }
  throw new StoreError(
    MEMBERSHIP_ERR_JOIN_TIMEOUT,
    `could not join through ${options.seeds.join(', ')} within ${Math.round(options.timeoutMs / 1000)} s: ${lastProblem}` +
      (deps.members().length === 0 ? ' (no seed answered gossip: unreachable, or its cluster secret differs from ours)' : ''),
  );
}
