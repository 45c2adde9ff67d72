/**
 * The node's side of gossip and joining: binds gossip on the UDP side of the Raft port, runs a
 * join through seeds, and answers the join endpoint. The protocols themselves live in
 * src/membership/; this file only connects them to configuration, logs and errors.
 */
import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config/config.ts';
import { DEFAULT_GOSSIP_TIMING, Gossip, type Member, type MemberMeta } from '../membership/gossip.ts';
import {
  type JoinAdmitter,
  type JoinAnswer,
  joinCluster,
  MEMBERSHIP_ERR_BAD_REQUEST,
  MEMBERSHIP_ERR_BUSY,
  MEMBERSHIP_ERR_CONFLICT,
  MEMBERSHIP_ERR_NOT_LEADER,
  parseJoinRequest,
  postJoin,
} from '../membership/join.ts';
import { UdpGossipTransport } from '../membership/udp-transport.ts';
import { errorCode } from '../util/errors.ts';
import { newIncarnation } from './identity.ts';

/** Gossip as the node uses it. */
export interface NodeGossip {
  /** The UDP port bound (the Raft port's number). */
  port: number;
  /** This node's gossip address. */
  address: string;
  members(): Member[];
  /** True when gossip sees the node with this Raft id alive. */
  isAlive(nodeId: number): boolean;
  /** Called with each member's Raft id and address whenever gossip learns or changes them. */
  onPeer(listener: (nodeId: number, raftAddress: string) => void): void;
  setNodeId(nodeId: number): void;
  setSelf(meta: MemberMeta): void;
  resync(seeds: string[]): void;
  stats(): Record<string, number>;
  close(): Promise<void>;
}

/** Gossip's counters before gossip runs (metrics register their names once, at start). */
export function emptyGossipStats(): Record<string, number> {
  return {
    ts3gw_gossip_sent_messages_total: 0,
    ts3gw_gossip_received_messages_total: 0,
    ts3gw_gossip_rejected_messages_total: 0,
    ts3gw_gossip_members_alive: 0,
    ts3gw_gossip_members_suspect: 0,
    ts3gw_gossip_members_dead: 0,
  };
}

/** host:port other nodes reach this node's Raft endpoint at. */
export function advertisedRaftAddress(config: Config, port: number): string {
  if (config.advertiseRaft) return config.advertiseRaft;
  const wildcard = config.raftHost === '0.0.0.0' || config.raftHost === '::' || config.raftHost === '';
  if (!wildcard) return `${config.raftHost.includes(':') ? `[${config.raftHost}]` : config.raftHost}:${port}`;
  // Listening everywhere: the host of the advertised S3 URL is the best guess, else loopback.
  const host = config.advertiseUrl ? new URL(config.advertiseUrl).hostname : '127.0.0.1';
  return `${host}:${port}`;
}

/** Binds and starts gossip; `seeds` are gossip (= Raft) addresses of other nodes. */
export async function startGossip(config: Config, at: { port: number; nodeId: number; seeds: string[]; address?: string; secret: string }, logger: FastifyBaseLogger): Promise<NodeGossip> {
  const transport = await UdpGossipTransport.bind(config.raftHost, at.port, at.secret, logger);
  // Founders go by the address their static peers know them by (the seeds others use).
  const address = at.address ?? advertisedRaftAddress(config, transport.port);
  const gossip = new Gossip(
    {
      ...DEFAULT_GOSSIP_TIMING,
      protocolPeriodMs: config.gossipPeriodMs,
      pingTimeoutMs: Math.floor(config.gossipPeriodMs * 0.4),
      suspicionTimeoutMs: config.gossipSuspicionMs,
      address,
      meta: { nodeId: at.nodeId, raftAddress: address, s3Url: config.advertiseUrl ?? '' },
      seed: randomInt(2 ** 31),
      incarnation: Math.floor(Date.now() / 1000),
    },
    transport,
  );
  transport.onMessage((m) => gossip.receive(m));
  gossip.onChange((member, previous) => {
    const fields = { member: member.address, nodeId: member.meta.nodeId, incarnation: member.incarnation, previous: previous ?? 'unknown' };
    if (member.state === 'alive') logger.info(fields, previous === undefined ? 'gossip: new member' : 'gossip: member alive');
    else logger.warn(fields, `gossip: member ${member.state}`);
  });
  gossip.start(at.seeds.filter((s) => s !== address));
  return {
    port: transport.port,
    address,
    members: () => gossip.members(),
    isAlive: (nodeId) => gossip.members().some((m) => m.meta.nodeId === nodeId && m.state === 'alive'),
    onPeer: (listener) =>
      gossip.onChange((member) => {
        // Only from a live member: a dead entry may hold the address of a node's previous life.
        if (member.state === 'alive' && member.meta.nodeId > 0 && member.meta.raftAddress !== '') listener(member.meta.nodeId, member.meta.raftAddress);
      }),
    setNodeId: (nodeId) => gossip.setMeta({ ...gossip.self().meta, nodeId }),
    setSelf: (meta) => {
      if (JSON.stringify(meta) !== JSON.stringify(gossip.self().meta)) gossip.setMeta(meta);
    },
    resync: (seeds) => {
      for (const s of seeds) if (s !== address) gossip.syncWith(s);
    },
    stats: () => {
      const members = gossip.members();
      const count = (state: string) => members.filter((m) => m.state === state).length;
      return { ...transport.stats(), ts3gw_gossip_members_alive: count('alive'), ts3gw_gossip_members_suspect: count('suspect'), ts3gw_gossip_members_dead: count('dead') };
    },
    close: async () => {
      gossip.stop();
      await transport.close();
    },
  };
}

/** Joins through `seeds`; resolves with the id and cluster the cluster gave this node. */
export async function joinThroughSeeds(config: Config, gossip: NodeGossip, seeds: string[], logger: FastifyBaseLogger, replace = config.replace): Promise<JoinAnswer & { incarnation: string }> {
  const incarnation = newIncarnation();
  // The address gossip goes by: a founder's static one, else the advertised one.
  const raftAddress = gossip.address;
  const s3Url = config.advertiseUrl ?? `${config.s3TlsCert ? 'https' : 'http'}://${raftAddress.replace(/:\d+$/, '')}:${config.s3Port}`;
  logger.info({ seeds, raftAddress }, 'joining the cluster through its seeds');
  const answer = await joinCluster(
    {
      seeds,
      secret: config.clusterSecret ?? '',
      request: { incarnation, raftAddress, s3Url, ...(config.nodeId > 0 ? { nodeId: config.nodeId, ...(replace ? { replace: true } : {}) } : {}) },
      ...(config.clusterId ? { expectedClusterId: config.clusterId } : {}),
      timeoutMs: config.joinTimeoutSeconds * 1000,
      retryMs: 500,
    },
    {
      members: () => gossip.members().filter((m) => m.meta.s3Url !== ''),
      resync: () => gossip.resync(seeds),
      post: postJoin,
      sleep: (ms) => sleep(ms),
      nowMs: () => Date.now(),
      logger,
    },
  );
  return { ...answer, incarnation };
}

/**
 * For a founder starting on an empty disk with TS3GW_REPLACE: the gossip addresses of static
 * peers in a formed cluster (this node lost its disk and must take its old place back), or []
 * once a majority of the founders is heard and none is formed (the first formation: bootstrap).
 * Without either answer it keeps waiting: bootstrapping a founder that lost its disk would give
 * the cluster a voter with an empty log, so silence is never taken for a first formation.
 */
export async function formedPeers(gossip: NodeGossip, seeds: string[], founders: number, logger: FastifyBaseLogger): Promise<string[]> {
  let lastLogMs = Date.now();
  for (;;) {
    const alive = gossip.members().filter((m) => m.state === 'alive' && seeds.includes(m.address));
    const formed = alive.filter((m) => m.meta.formed === true && m.meta.s3Url !== '');
    if (formed.length > 0) return formed.map((m) => m.address);
    // This node plus the founders heard from, all unformed, are a majority: a first formation.
    if (alive.length + 1 > founders / 2) return [];
    if (Date.now() - lastLogMs > 10_000) {
      lastLogMs = Date.now();
      logger.warn({ heard: alive.length, founders }, 'empty data directory: waiting to hear from a majority of the founders before founding or rejoining');
    }
    gossip.resync(seeds);
    await sleep(200);
  }
}

/** The join endpoint's answer to one request body: admitted, refused, or not now (503). */
export async function answerJoin(admitter: JoinAdmitter, body: unknown, logger: FastifyBaseLogger): Promise<{ status: number; body: unknown }> {
  try {
    const answer = await admitter.admit(parseJoinRequest(body));
    logger.info({ ...answer }, 'admitted a joining node as a learner');
    return { status: 200, body: answer };
  } catch (err) {
    const code = errorCode(err);
    const message = (err as Error).message;
    if (code === MEMBERSHIP_ERR_CONFLICT) {
      logger.warn({ err: message }, 'refused a joining node');
      return { status: 409, body: { error: code, message } };
    }
    if (code === MEMBERSHIP_ERR_BAD_REQUEST) return { status: 400, body: { error: code, message } };
    if (code === MEMBERSHIP_ERR_NOT_LEADER) {
      const leaderUrl = (err as { meta?: { leaderUrl?: string } }).meta?.leaderUrl;
      return leaderUrl ? { status: 421, body: { error: code, message, leaderUrl } } : { status: 503, body: { error: code, message } };
    }
    if (code === MEMBERSHIP_ERR_BUSY) return { status: 503, body: { error: code, message } };
    if (code === 'CONSENSUS_ERR_TIMEOUT' || code === 'CONSENSUS_ERR_NO_LEADER' || code === 'RAFT_PROPOSAL_DROPPED' || code === 'CONSENSUS_ERR_CLOSED') {
      return { status: 503, body: { error: code, message } };
    }
    throw err;
  }
}
