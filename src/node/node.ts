/**
 * The composition root: builds every module from the configuration, starts them in dependency
 * order and stops them in reverse. A node with no peers is a cluster of one (LocalConsensus).
 */
import { mkdir, readFile, statfs } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { Registry } from 'prom-client';
import {
  CHUNK_ERR_HASH_MISMATCH,
  CHUNK_ERR_NOT_FOUND,
  CHUNK_ERR_SIZE_MISMATCH,
  CHUNK_ERR_TOO_LARGE,
  CHUNK_SIZE_BYTES_MAX,
} from '../chunks/chunk-store.ts';
import { ClusterChunkStore } from '../chunks/cluster-chunk-store.ts';
import { openDiskChunkStore } from '../chunks/disk-chunk-store.ts';
import { inventoryDigests, listRange } from '../chunks/inventory.ts';
import { ChunkMaintenance } from '../chunks/maintenance.ts';
import { type Config, joinSeeds, parsePeers } from '../config/config.ts';
import { DurableLogStorage } from '../consensus/durable-log-storage.ts';
import { DEFAULT_RAFT_TIMING, RaftConsensus } from '../consensus/raft-consensus.ts';
import type { PeerAddress } from '../consensus/transport.ts';
import { INTERNAL_AUTH_HEADER, INTERNAL_CLUSTER_HEADER } from '../forward/chunk-wire.ts';
import { ChunkWireServer, wantsChunkWire, type WireChunkStore } from '../forward/chunk-wire-server.ts';
import { PeerChunks } from '../forward/peer-chunks.ts';
import { GrpcTransport } from '../rpc/grpc-transport.ts';
import { openLevelMetaStore } from '../meta/level-meta-store.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { ObjectService } from '../objects/object-service.ts';
import { buildS3App } from '../s3/server.ts';
import { systemClock } from '../util/clock.ts';
import { FaultControl } from '../faults/fault-control.ts';
import { metaDigest } from './meta-digest.ts';
import { errorCode, StoreError } from '../util/errors.ts';
import { type Credentials, loadRootCredentials } from './credentials.ts';
import { KeyBook, SecretSealer } from './access-keys.ts';
import { handleAdmin } from './admin.ts';
import { ClusterView } from './cluster-view.ts';
import { buildPlacement } from './placement.ts';
import { bootstrapClusterId, loadIdentity, readIdentity } from './identity.ts';
import { Incarnations } from './incarnations.ts';
import { loadPeers, savePeers } from './peers.ts';
import { advertisedRaftAddress, answerJoin, emptyGossipStats, formedPeers, joinThroughSeeds, type NodeGossip, startGossip } from './membership.ts';
import { JOIN_AUTH_HEADER, JoinAdmitter, type JoinAnswer } from '../membership/join.ts';
import { Promoter } from '../membership/promoter.ts';
import { DecommissionWorker } from '../membership/decommission.ts';
import { ReplaceWorker } from '../membership/replace.ts';
import { type PeerAuthPurpose, PeerAuthVerifier, peerAuthKey } from '../util/peer-auth.ts';
import { AUDIT_FILE, AuditLog } from '../audit/audit-log.ts';
import { adminEvent, denialEvent } from '../audit/events.ts';
import { readPeerTls, readS3Tls, trustPeerCa, watchTlsFiles } from './tls-files.ts';
import { instrumentS3 } from './s3-metrics.ts';
import { ChunkStoreCensus } from './chunk-store-census.ts';
import type { ConsensusObserver } from '../consensus/observer.ts';

/** A draining node's refusal of a chunk copy (the writer counts the other copies). */
const CHUNK_ERR_DRAINING = 'CHUNK_ERR_DRAINING';

/** A learner within this many entries of the leader's log counts as caught up. */
const PROMOTION_LAG_ENTRIES_MAX = 100;
/** How often the leader looks for learners to promote. */
const PROMOTION_INTERVAL_MS = 1_000;
/** How often a node reports its own drain, and the leader finishes drained nodes. */
const DECOMMISSION_INTERVAL_MS = 1_000;
/** /health/ready: applied within this many entries of the known commit index. */
const READY_LAG_ENTRIES_MAX = 100;
/** Shutdown: idle kept-alive connections are closed this often while requests finish. */
const IDLE_SWEEP_MS = 100;
/** Shutdown: in-flight requests get this long before their connections are cut. */
const REQUEST_DRAIN_GRACE_MS = 10_000;
/** How often gossip's record of this node is refreshed (formed or not). */
const ADVERTISE_INTERVAL_MS = 1_000;
/** Shutdown: how long a leader waits for another voter to take over. */
const LEADERSHIP_HANDOVER_MS = 3_000;

/** XML request bodies: DeleteObjects with 1000 maximal keys, escaped, fits in 2 MiB. */
export const XML_BODY_BYTES_MAX = 2 * 1024 * 1024;

/** A running node. */
export interface RunningNode {
  /** Base URL of the S3 endpoint, e.g. http://127.0.0.1:9000 */
  s3Url: string;
  credentials: Credentials;
  /** True when this start generated the root credentials (print them once). */
  generatedCredentials: boolean;
  /** host:port of the Raft endpoint actually bound. */
  raftAddress: string;
  consensus: RaftConsensus;
  close(): Promise<void>;
}

/** Starts a node and resolves once it serves S3. */
export async function startNode(config: Config, logger: FastifyBaseLogger): Promise<RunningNode> {
  // Peers' HTTPS endpoints (S3 TLS) are signed by the cluster's CA: trusted before the first join request.
  const tlsCa = config.tlsCa === undefined ? undefined : await readFile(config.tlsCa);
  if (tlsCa) trustPeerCa(tlsCa);
  const s3Tls = await readS3Tls(config);
  const peerTls = await readPeerTls(config);
  await mkdir(config.dataDir, { recursive: true });
  const { credentials, generated } = await loadRootCredentials(config.dataDir, {
    accessKey: config.rootAccessKey,
    secretKey: config.rootSecretKey,
  });
  const staticPeers = config.peers ? parsePeers(config.peers) : undefined;
  const raftDir = join(config.dataDir, 'raft');
  // A first start with seeds joins through them: gossip finds a member, which has the cluster
  // allocate this node an id and add it as a learner (src/membership/join.ts). Gossip starts
  // here, on the UDP side of the Raft port, and keeps running for failure detection.
  const seeds = joinSeeds(config);
  let gossip: NodeGossip | undefined;
  let joined: (JoinAnswer & { incarnation: string }) | undefined;
  const stored = await readIdentity(raftDir);
  if (!stored && seeds) {
    // config.clusterSecret is set: validate() requires it for a join through seeds.
    gossip = await startGossip(config, { port: config.raftPort, nodeId: 0, seeds, secret: config.clusterSecret ?? '' }, logger);
    joined = await joinThroughSeeds(config, gossip, seeds, logger);
    gossip.setNodeId(joined.nodeId);
    logger.info({ nodeId: joined.nodeId, clusterId: joined.clusterId, replaced: joined.replaced ?? false }, 'admitted to the cluster as a learner');
  } else if (!stored && config.replace && staticPeers && staticPeers.length > 1 && config.join === undefined && config.clusterSecret) {
    // A founder on an empty disk: the first formation (everyone's disk is new), or this node
    // lost its disk and the others formed the cluster long ago. Gossip tells which.
    const self = staticPeers.find((p) => p.id === config.nodeId);
    const others = staticPeers.filter((p) => p.id !== config.nodeId).map((p) => p.raftAddress);
    gossip = await startGossip(config, { port: config.raftPort, nodeId: config.nodeId, seeds: others, secret: config.clusterSecret, ...(self ? { address: self.raftAddress } : {}) }, logger);
    const formed = await formedPeers(gossip, others, staticPeers.length, logger);
    if (formed.length > 0) {
      logger.warn({ nodeId: config.nodeId, formed }, 'empty data directory, but the cluster is formed: taking this node\'s place back');
      joined = await joinThroughSeeds(config, gossip, formed, logger, true);
      logger.info({ nodeId: joined.nodeId, replaced: joined.replaced ?? false }, 'admitted back into the cluster');
    }
  }
  const nodeId = joined?.nodeId ?? (config.nodeId === 0 ? (stored?.nodeId ?? 1) : config.nodeId);
  const { identity } = await loadIdentity(raftDir, {
    nodeId,
    clusterId: () => joined?.clusterId ?? config.clusterId ?? bootstrapClusterId(staticPeers),
    ...(joined ? { incarnation: joined.incarnation } : {}),
  });
  if (config.clusterId !== undefined && config.clusterId !== identity.clusterId) {
    throw new Error(`data directory belongs to cluster ${identity.clusterId}, not ${config.clusterId}`);
  }
  // The Raft log is fsynced; the state machine behind it need not be (a restart replays the log).
  const meta = await openLevelMetaStore({ location: join(config.dataDir, 'meta'), syncWrites: false });
  // Chaos suite only (TS3GW_FAULTS_FILE): clock and disk faults read from a file; never in production.
  const faults = config.faultsFile === undefined ? undefined : new FaultControl(config.faultsFile, logger);
  faults?.start();
  const clock = faults?.clock ?? systemClock;
  const diskFaults = faults ? { faults: faults.disk } : {};
  const localChunks = await openDiskChunkStore({ dir: join(config.dataDir, 'chunks'), fsync: true, ...diskFaults });
  // Chunk count and bytes for the metrics, walked in the background.
  const census = new ChunkStoreCensus(localChunks, logger);
  census.start();
  const log = await DurableLogStorage.open(raftDir, { fsync: true, ...diskFaults });
  if (log.truncatedBytes > 0) logger.warn({ bytes: log.truncatedBytes }, 'cut a torn tail off the raft log');
  const incarnations = await Incarnations.load(raftDir);
  const transport = new GrpcTransport({
    nodeId,
    // Gossip already holds the UDP side of a port it picked (raft port 0): Raft takes the same number.
    listenAddress: `${config.raftHost}:${gossip?.port ?? config.raftPort}`,
    clusterId: identity.clusterId,
    clusterSecret: config.clusterSecret ?? identity.clusterSecret,
    incarnation: identity.incarnation,
    checkIncarnation: (id, incarnation) => incarnations.check(id, incarnation),
    logger,
    ...(peerTls ? { tls: peerTls } : {}),
  });
  // Addresses: the static list, then what committed membership changes taught this node.
  const peers = new Map<number, string>([
    ...(staticPeers ?? []).map((p): [number, string] => [p.id, p.raftAddress]),
    ...(await loadPeers(raftDir)),
    // A founder's address is in no log entry: the member that admitted us told us.
    ...Object.entries(joined?.peers ?? {}).map(([id, address]): [number, string] => [Number(id), address]),
  ]);
  peers.delete(nodeId);
  if (log.isNew && !config.join && !joined) {
    // First start: found the cluster from the static peer list (or alone).
    const voters = staticPeers ? staticPeers.map((p) => p.id) : [nodeId];
    await log.bootstrap({ voters: voters.sort((a, b) => a - b), learners: [] });
  }
  const publishPeers = () => transport.setPeers([...peers].map(([id, raftAddress]): PeerAddress => ({ id, raftAddress })));
  publishPeers();
  // Addresses come from committed membership changes and from gossip (a founder's own address
  // is in no log entry); both are authenticated by the cluster secret.
  const learnPeer = (id: number, raftAddress: string) => {
    if (id === nodeId || peers.get(id) === raftAddress) return;
    peers.set(id, raftAddress);
    publishPeers();
    void savePeers(raftDir, peers).catch((err: unknown) => logger.error({ err }, 'could not save peer addresses'));
  };
  if (joined) void savePeers(raftDir, peers).catch((err: unknown) => logger.error({ err }, 'could not save peer addresses'));
  // Filled with the metrics' hooks once they exist (the Raft host starts first, and may elect
  // itself before: those leader changes are counted here and handed over).
  let leaderChangesBeforeMetrics = 0;
  const consensusObserver: ConsensusObserver = { leaderChanged: () => void leaderChangesBeforeMetrics++ };
  const consensus = await RaftConsensus.start(
    { ...DEFAULT_RAFT_TIMING, nodeId, tickMs: config.raftTickMs, electionTimeoutTicks: config.raftElectionTicks, snapshotEveryEntries: config.raftSnapshotEntries, leaseReads: config.raftLeaseReads, seed: config.nodeId * 7919 + Date.now() },
    {
      log,
      meta,
      transport,
      logger,
      onPeerAddress: (peer) => learnPeer(peer.id, peer.raftAddress),
      // A removed node may come back later with a fresh disk as a new member.
      onPeerRemoved: (id) => incarnations.forget(id),
      observer: consensusObserver,
    },
  );
  const clusterSecret = config.clusterSecret ?? identity.clusterSecret;
  // One replay cache for the S3 port's internal endpoints (chunks, join); gRPC keeps its own.
  const peerAuth = new PeerAuthVerifier(peerAuthKey(clusterSecret));
  // Admin actions and 403s, hash-chained (ts3ctl audit verify).
  const auditLog = await AuditLog.open(join(config.dataDir, AUDIT_FILE), { logger });
  // Access keys other than the root one: in the log, secrets sealed by the cluster secret.
  const sealer = new SecretSealer(clusterSecret);
  const keyBook = new KeyBook({ root: credentials, sealer, appliedIndex: () => meta.appliedIndex(), listAccessKeys: () => meta.listAccessKeys(), logger });
  await keyBook.start();
  const admitter = new JoinAdmitter({
    clusterId: identity.clusterId,
    confState: () => consensus.confState(),
    propose: (op, stampMs) => consensus.propose(op, stampMs),
    addLearner: (id, address) => consensus.addLearner(id, address),
    listNodes: () => meta.listNodes(),
    removeNode: (id) => consensus.removeNode(id),
    incarnationOf: (id) => incarnations.get(id),
    leader: () => (consensus.status().role === 'leader' ? { self: true } : { self: false, s3Url: view?.urlOf(consensus.leader) }),
    isActive: (id) => consensus.status().progress.get(id)?.recentActive === true,
    leavingIds: async () => (await meta.listDecommissions()).map((d) => d.nodeId),
    replacementOf: async (id) => (await meta.listReplacements()).find((r) => r.nodeId === id),
    peers: () => Object.fromEntries([...peers, [nodeId, view?.nodes().find((n) => n.nodeId === nodeId)?.raftAddress ?? advertisedRaftAddress(config, transport.port)]]),
  });
  // Set once S3 listens (its URL is what peers fetch chunks from); until then chunks stay local.
  let view: ClusterView | undefined;
  const remoteChunks = new PeerChunks({ clusterId: identity.clusterId, clusterSecret, urlOf: (id) => view?.urlOf(id), chunkBytesMax: CHUNK_SIZE_BYTES_MAX, ...(tlsCa ? { tlsCa } : {}) });
  const chunks = new ClusterChunkStore({ selfId: nodeId, logger }, {
    local: localChunks,
    remote: remoteChunks,
    placement: () => view?.placement(),
    refreshPlacement: async () => {
      await view?.refresh();
    },
  });
  const maintenance = new ChunkMaintenance(
    {
      selfId: nodeId,
      gcGraceMs: config.gcGraceSeconds * 1000,
      intervalMs: config.maintenanceIntervalMs,
      chunksPerSecond: config.maintenanceChunksPerSecond,
      bytesPerSecond: config.maintenanceBytesPerSecond,
      scrubBytesPerSecond: config.scrubBytesPerSecond,
    },
    {
      local: localChunks,
      remote: remoteChunks,
      placement: () => view?.placement(),
      chunkRefs: () => meta.chunkRefs(),
      barrier: () => consensus.readBarrier(),
      draining: () => view?.decommissions().some((d) => d.nodeId === nodeId && d.state !== 'removed') ?? false,
      logger,
    },
  );
  const objects = new ObjectService(
    { chunkSizeBytes: config.chunkSizeBytes, inlineMaxBytes: config.inlineMaxBytes, objectSizeBytesMax: config.objectSizeBytesMax },
    { consensus, chunks, clock },
  );
  // What peers get from this node, over the chunk wire and the HTTP chunk endpoint alike.
  const servedChunks: WireChunkStore = {
    authorize: (headers) => peerAuthorized(peerAuth, headers[INTERNAL_CLUSTER_HEADER] === identity.clusterId ? headers[INTERNAL_AUTH_HEADER] : undefined, 'chunks', identity.clusterId, logger),
    chunkBytesMax: CHUNK_SIZE_BYTES_MAX,
    // A draining node takes no new copies: a writer still on the old ring counts the others.
    putStream: (id, sizeBytes, body) => {
      if (view?.decommissions().some((d) => d.nodeId === nodeId && d.state !== 'removed')) {
        return Promise.reject(new StoreError(CHUNK_ERR_DRAINING, `node ${nodeId} is being decommissioned and takes no new chunks`));
      }
      return localChunks.putStream(id, sizeBytes, body);
    },
    openRead: async (id) => {
      try {
        return await localChunks.openRead(id);
      } catch (err) {
        if (errorCode(err) === CHUNK_ERR_NOT_FOUND) return undefined;
        throw err;
      }
    },
    verify: async (id) => (await localChunks.verify(id)) === 'ok',
  };
  const wireServer = new ChunkWireServer(servedChunks, {
    refusalCodes: new Set([CHUNK_ERR_HASH_MISMATCH, CHUNK_ERR_SIZE_MISMATCH, CHUNK_ERR_TOO_LARGE, CHUNK_ERR_DRAINING]),
    logger,
  });
  let closing = false;
  const registry = new Registry();
  const metrics = createMetrics(registry, {
    raft: () => {
      const status = consensus.status();
      return {
        term: status.hardState.term,
        commitIndex: status.hardState.commit,
        appliedIndex: meta.appliedIndex(),
        isLeader: status.role === 'leader',
        hasLeader: consensus.leader !== 0,
        role: status.role,
        logBytes: log.sizeBytes,
      };
    },
    disk: async () => {
      const fs = await statfs(config.dataDir);
      return { totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize };
    },
    counters: () => ({ ...(maintenance.stats() as unknown as Record<string, number>), ...wireServer.stats(), ...remoteChunks.stats(), ...(gossip?.stats() ?? emptyGossipStats()), ...auditLog.stats(), ...census.stats() }),
  });
  const app = buildS3App(
    {
      region: config.region,
      ...(s3Tls ? { tls: s3Tls } : {}),
      ...(config.domain ? { domain: config.domain } : {}),
      limits: { xmlBodyBytesMax: XML_BODY_BYTES_MAX, chunkBytesMax: 16 * 1024 * 1024, trailerBytesMax: 16 * 1024, userMetaBytesMax: 2048 },
    },
    {
      objects,
      clock,
      lookupSecret: (id) => keyBook.secretOf(id),
      ownerOf: (id) => id,
      // The root key and admin keys are the cluster's operators: every ACL check passes for them.
      isSuperuser: (id) => keyBook.isAdmin(id),
      keyScope: (id) => keyBook.scopeOf(id),
      // Ready: serving, a leader known, and caught up with what it committed (a restarted node
      // replaying its log is not ready yet: a rolling upgrade must wait for it).
      isReady: () => !closing && consensus.leader !== 0 && meta.appliedIndex() + READY_LAG_ENTRIES_MAX >= consensus.status().hardState.commit,
      metricsText: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
      observeRequest: (method, status, seconds) => metrics.observeRequest(method, status, seconds),
      internalChunks: {
        ...servedChunks,
        inventoryDigests: (ranges) => inventoryDigests(localChunks.list(), ranges),
        inventoryList: (range) => listRange((shard) => localChunks.listShard(shard), range),
      },
      admin: async (req) => {
        const res = await handleAdmin(req, {
          consensus,
          nodeId,
          clusterId: identity.clusterId,
          rootAccessKeyId: credentials.accessKeyId,
          peers: () => Object.fromEntries([...peers].map(([id, address]) => [String(id), address])),
          maintenance: () => maintenance.stats(),
          gossip: () => gossip?.members() ?? [],
          registeredNodes: () => view?.nodes() ?? [],
          placement: () => view?.placement(),
          dataDir: config.dataDir,
          decommissions: () => meta.listDecommissions(),
          replacements: () => meta.listReplacements(),
          keys: { book: keyBook, sealer, list: () => meta.listAccessKeys() },
          isAlive: (id) => gossip?.isAlive(id) ?? false,
          metaDigest: () => metaDigest(meta),
        });
        const event = adminEvent(req, res);
        if (event) await auditLog.append(event);
        return res;
      },
      join: {
        authorize: (headers) => peerAuthorized(peerAuth, headers[JOIN_AUTH_HEADER], 'join', '', logger),
        admit: (body) => answerJoin(admitter, body, logger),
      },
    },
    logger,
  );
  // Peers' chunk wire connections start as upgrades of requests to the S3 port; every other
  // upgrade request (h2c, websocket) is served as the plain HTTP/1.1 request it also is.
  // (Node >= 24.9 reads this property per request; @types/node does not list it yet.)
  (app.server as { shouldUpgradeCallback?: typeof wantsChunkWire }).shouldUpgradeCallback = wantsChunkWire;
  app.server.on('upgrade', (req, socket, head) => wireServer.accept(req, socket, head));
  Object.assign(consensusObserver, metrics.consensus);
  for (let i = 0; i < leaderChangesBeforeMetrics; i++) metrics.consensus.leaderChanged();
  instrumentS3(app, metrics, config.domain);
  app.addHook('onResponse', async (req, reply) => {
    if (reply.statusCode === 403) void auditLog.append(denialEvent(req, reply.statusCode));
  });
  await app.listen({ host: config.s3Host, port: config.s3Port });
  const stopTlsWatch = s3Tls
    ? watchTlsFiles(
        [config.s3TlsCert ?? '', config.s3TlsKey ?? ''],
        async () => (app.server as unknown as { setSecureContext(o: object): void }).setSecureContext((await readS3Tls(config)) ?? {}),
        logger,
      )
    : undefined;
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const s3Url = `${s3Tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  const self = staticPeers?.find((p) => p.id === nodeId);
  const raftAddress = self?.raftAddress ?? advertisedRaftAddress(config, transport.port);
  view = new ClusterView(
    {
      nodeId,
      s3Url: config.advertiseUrl ?? s3Url,
      raftAddress,
      weight: config.weight,
      ...(config.zone ? { zone: config.zone } : {}),
    },
    consensus,
    buildPlacement,
    logger,
  );
  view.start();
  maintenance.start();
  // Every node gossips (failure detection, and so joiners can find it): founders seed it with
  // their static peers and the peers they learned, a joined node already runs it.
  gossip ??= await startGossip(config, { port: transport.port, nodeId, seeds: [...peers.values()], address: raftAddress, secret: clusterSecret }, logger);
  // Gossip says whether this node's cluster has committed anything (a wiped founder asks).
  const advertiseSelf = () => gossip?.setSelf({ nodeId, raftAddress, s3Url: config.advertiseUrl ?? s3Url, formed: meta.appliedIndex() > 0 });
  advertiseSelf();
  const advertiser = setInterval(advertiseSelf, ADVERTISE_INTERVAL_MS);
  advertiser.unref();
  gossip.onPeer(learnPeer);
  const promoter = new Promoter(
    { votersTarget: config.votersTarget, lagEntriesMax: PROMOTION_LAG_ENTRIES_MAX, intervalMs: PROMOTION_INTERVAL_MS },
    {
      status: () => consensus.status(),
      isAlive: (id) => gossip?.isAlive(id) ?? false,
      isLeaving: (id) => view?.decommissions().some((d) => d.nodeId === id) ?? false,
      addVoter: (id) => consensus.addVoter(id),
      logger,
    },
  );
  promoter.start();
  /** On shutdown of a leader: transfer to the most caught-up voter, wait a little for it. */
  const handOverLeadership = async () => {
    const status = consensus.status();
    if (status.role !== 'leader') return;
    // Among voters that answer: a transfer to an unreachable one stalls proposals until it times out.
    const next = status.confState.voters
      .filter((id) => id !== nodeId && status.progress.get(id)?.recentActive === true)
      .sort((a, b) => (status.progress.get(b)?.match ?? 0) - (status.progress.get(a)?.match ?? 0))[0];
    if (next === undefined) return;
    logger.info({ to: next }, 'shutting down: handing over leadership');
    consensus.transferLeadership(next);
    const deadline = Date.now() + LEADERSHIP_HANDOVER_MS;
    while (Date.now() < deadline && consensus.status().role === 'leader') await new Promise((r) => setTimeout(r, 20));
  };
  const decommissioner = new DecommissionWorker(
    {
      selfId: nodeId,
      status: () => consensus.status(),
      listDecommissions: () => meta.listDecommissions(),
      propose: (op, stampMs) => consensus.propose(op, stampMs),
      removeNode: (id) => consensus.removeNode(id),
      transferLeadership: (id) => consensus.transferLeadership(id),
      maintenance: () => maintenance.stats(),
      ringHasSelf: () => view?.ringHasSelf() ?? true,
      nowMs: () => Date.now(),
      logger,
    },
    DECOMMISSION_INTERVAL_MS,
  );
  decommissioner.start();
  const replacer = new ReplaceWorker(
    {
      selfId: nodeId,
      incarnation: identity.incarnation,
      admittedAsReplacement: joined?.replaced === true,
      listReplacements: () => meta.listReplacements(),
      propose: (op, stampMs) => consensus.propose(op, stampMs),
      maintenance: () => maintenance.stats(),
      ringHasSelf: () => view?.ringHasSelf() ?? false,
      nowMs: () => Date.now(),
      logger,
    },
    DECOMMISSION_INTERVAL_MS,
  );
  replacer.start();

  return {
    s3Url,
    credentials,
    generatedCredentials: generated,
    raftAddress: `${config.raftHost}:${transport.port}`,
    consensus,
    async close() {
      closing = true;
      // A leader hands over first, so a rolling restart costs no election timeout of 503s.
      await handOverLeadership();
      // Stop taking requests and let in-flight ones finish, then stop what they used.
      promoter.stop();
      decommissioner.stop();
      replacer.stop();
      keyBook.stop();
      census.stop();
      // Gossip first: its address updates must not reach a transport that is closing.
      await gossip?.close();
      clearInterval(advertiser);
      view?.stop();
      await maintenance.stop();
      // Peers' chunk sessions first: they are not requests app.close() would wait for, and
      // those peers try other copies.
      wireServer.close();
      // app.close() waits for in-flight requests, but a kept-alive connection that finished its
      // request after the close began stays open until the keep-alive timeout (72 s): sweep idle
      // connections while waiting, and cut what is left once the grace is over.
      const sweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS);
      const cut = setTimeout(() => app.server.closeAllConnections(), REQUEST_DRAIN_GRACE_MS);
      try {
        await app.close();
      } finally {
        clearInterval(sweep);
        clearTimeout(cut);
      }
      await consensus.close();
      await remoteChunks.close();
      await chunks.close();
      await meta.flush();
      await meta.close();
      await auditLog.close();
      stopTlsWatch?.();
    },
  };
}

/** Checks a peer's token on the S3 port's internal endpoints; a refusal is logged with its reason (never the token). */
function peerAuthorized(verifier: PeerAuthVerifier, token: string | string[] | undefined, purpose: PeerAuthPurpose, clusterId: string, logger: FastifyBaseLogger): boolean {
  const verdict = token === undefined ? { ok: false as const, reason: 'no peer auth token or another cluster id' } : verifier.verify(token, purpose, clusterId);
  if (!verdict.ok) {
    // At most one line per reason every 10 s: a misconfigured peer retries many times a second.
    const key = `${purpose} ${verdict.reason}`;
    const now = performance.now();
    if ((refusalsLogged.get(key) ?? Number.NEGATIVE_INFINITY) < now - 10_000) {
      if (refusalsLogged.size > 256) refusalsLogged.clear();
      refusalsLogged.set(key, now);
      logger.warn({ purpose, reason: verdict.reason }, 'refused an internal request: wrong cluster credentials');
    }
  }
  return verdict.ok;
}
const refusalsLogged = new Map<string, number>();
