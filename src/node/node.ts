/**
 * The composition root: builds every module from the configuration, starts them in dependency
 * order and stops them in reverse. A node with no peers is a cluster of one (LocalConsensus).
 */
import { timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
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
import { type Config, parsePeers } from '../config/config.ts';
import { DurableLogStorage } from '../consensus/durable-log-storage.ts';
import { DEFAULT_RAFT_TIMING, RaftConsensus } from '../consensus/raft-consensus.ts';
import type { PeerAddress } from '../consensus/transport.ts';
import { INTERNAL_CLUSTER_HEADER, INTERNAL_SECRET_HEADER } from '../forward/chunk-wire.ts';
import { ChunkWireServer, wantsChunkWire, type WireChunkStore } from '../forward/chunk-wire-server.ts';
import { PeerChunks } from '../forward/peer-chunks.ts';
import { GrpcTransport } from '../rpc/grpc-transport.ts';
import { openLevelMetaStore } from '../meta/level-meta-store.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { ObjectService } from '../objects/object-service.ts';
import { buildS3App } from '../s3/server.ts';
import { systemClock } from '../util/clock.ts';
import { errorCode } from '../util/errors.ts';
import { type Credentials, loadRootCredentials } from './credentials.ts';
import { handleAdmin } from './admin.ts';
import { ClusterView } from './cluster-view.ts';
import { buildPlacement } from './placement.ts';
import { bootstrapClusterId, loadIdentity } from './identity.ts';
import { Incarnations } from './incarnations.ts';
import { loadPeers, savePeers } from './peers.ts';

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
  await mkdir(config.dataDir, { recursive: true });
  const { credentials, generated } = await loadRootCredentials(config.dataDir, {
    accessKey: config.rootAccessKey,
    secretKey: config.rootSecretKey,
  });
  const staticPeers = config.peers ? parsePeers(config.peers) : undefined;
  const raftDir = join(config.dataDir, 'raft');
  const { identity } = await loadIdentity(raftDir, { nodeId: config.nodeId, clusterId: () => config.clusterId ?? bootstrapClusterId(staticPeers) });
  if (config.clusterId !== undefined && config.clusterId !== identity.clusterId) {
    throw new Error(`data directory belongs to cluster ${identity.clusterId}, not ${config.clusterId}`);
  }
  // The Raft log is fsynced; the state machine behind it need not be (a restart replays the log).
  const meta = await openLevelMetaStore({ location: join(config.dataDir, 'meta'), syncWrites: false });
  const localChunks = await openDiskChunkStore({ dir: join(config.dataDir, 'chunks'), fsync: true });
  const log = await DurableLogStorage.open(raftDir, { fsync: true });
  if (log.truncatedBytes > 0) logger.warn({ bytes: log.truncatedBytes }, 'cut a torn tail off the raft log');
  const incarnations = await Incarnations.load(raftDir);
  const transport = new GrpcTransport({
    nodeId: config.nodeId,
    listenAddress: `${config.raftHost}:${config.raftPort}`,
    clusterId: identity.clusterId,
    clusterSecret: config.clusterSecret ?? identity.clusterSecret,
    incarnation: identity.incarnation,
    checkIncarnation: (id, incarnation) => incarnations.check(id, incarnation),
    logger,
  });
  // Addresses: the static list, then what committed membership changes taught this node.
  const peers = new Map<number, string>([...(staticPeers ?? []).map((p): [number, string] => [p.id, p.raftAddress]), ...(await loadPeers(raftDir))]);
  if (log.isNew && !config.join) {
    // First start: found the cluster from the static peer list (or alone).
    const voters = staticPeers ? staticPeers.map((p) => p.id) : [config.nodeId];
    await log.bootstrap({ voters: voters.sort((a, b) => a - b), learners: [] });
  }
  const publishPeers = () => transport.setPeers([...peers].map(([id, raftAddress]): PeerAddress => ({ id, raftAddress })));
  publishPeers();
  const consensus = await RaftConsensus.start(
    { ...DEFAULT_RAFT_TIMING, nodeId: config.nodeId, tickMs: config.raftTickMs, electionTimeoutTicks: config.raftElectionTicks, snapshotEveryEntries: config.raftSnapshotEntries, leaseReads: config.raftLeaseReads, seed: config.nodeId * 7919 + Date.now() },
    {
      log,
      meta,
      transport,
      logger,
      onPeerAddress: (peer) => {
        if (peers.get(peer.id) === peer.raftAddress) return;
        peers.set(peer.id, peer.raftAddress);
        publishPeers();
        void savePeers(raftDir, peers).catch((err: unknown) => logger.error({ err }, 'could not save peer addresses'));
      },
      // A removed node may come back later with a fresh disk as a new member.
      onPeerRemoved: (id) => incarnations.forget(id),
    },
  );
  const clusterSecret = config.clusterSecret ?? identity.clusterSecret;
  // Set once S3 listens (its URL is what peers fetch chunks from); until then chunks stay local.
  let view: ClusterView | undefined;
  const remoteChunks = new PeerChunks({ clusterId: identity.clusterId, clusterSecret, urlOf: (id) => view?.urlOf(id), chunkBytesMax: CHUNK_SIZE_BYTES_MAX });
  const chunks = new ClusterChunkStore({ selfId: config.nodeId, logger }, { local: localChunks, remote: remoteChunks, placement: () => view?.placement() });
  const maintenance = new ChunkMaintenance(
    {
      selfId: config.nodeId,
      gcGraceMs: config.gcGraceSeconds * 1000,
      intervalMs: config.maintenanceIntervalMs,
      chunksPerSecond: config.maintenanceChunksPerSecond,
      bytesPerSecond: config.maintenanceBytesPerSecond,
      scrubBytesPerSecond: config.scrubBytesPerSecond,
    },
    { local: localChunks, remote: remoteChunks, placement: () => view?.placement(), chunkRefs: () => meta.chunkRefs(), barrier: () => consensus.readBarrier(), logger },
  );
  const objects = new ObjectService(
    { chunkSizeBytes: config.chunkSizeBytes, inlineMaxBytes: config.inlineMaxBytes, objectSizeBytesMax: config.objectSizeBytesMax },
    { consensus, chunks, clock: systemClock },
  );
  // What peers get from this node, over the chunk wire and the HTTP chunk endpoint alike.
  const servedChunks: WireChunkStore = {
    authorize: (headers) => headers[INTERNAL_CLUSTER_HEADER] === identity.clusterId && secretEquals(headers[INTERNAL_SECRET_HEADER], clusterSecret),
    chunkBytesMax: CHUNK_SIZE_BYTES_MAX,
    putStream: (id, sizeBytes, body) => localChunks.putStream(id, sizeBytes, body),
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
    refusalCodes: new Set([CHUNK_ERR_HASH_MISMATCH, CHUNK_ERR_SIZE_MISMATCH, CHUNK_ERR_TOO_LARGE]),
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
      };
    },
    counters: () => ({ ...(maintenance.stats() as unknown as Record<string, number>), ...wireServer.stats(), ...remoteChunks.stats() }),
  });
  const app = buildS3App(
    {
      region: config.region,
      ...(config.domain ? { domain: config.domain } : {}),
      limits: { xmlBodyBytesMax: XML_BODY_BYTES_MAX, chunkBytesMax: 16 * 1024 * 1024, trailerBytesMax: 16 * 1024, userMetaBytesMax: 2048 },
    },
    {
      objects,
      clock: systemClock,
      lookupSecret: (id) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined),
      ownerOf: (id) => id,
      isReady: () => !closing && consensus.leader !== 0,
      metricsText: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
      observeRequest: (method, status, seconds) => metrics.observeRequest(method, status, seconds),
      internalChunks: {
        ...servedChunks,
        inventoryDigests: (ranges) => inventoryDigests(localChunks.list(), ranges),
        inventoryList: (range) => listRange((shard) => localChunks.listShard(shard), range),
      },
      admin: (req) =>
        handleAdmin(req, {
          consensus,
          nodeId: config.nodeId,
          clusterId: identity.clusterId,
          rootAccessKeyId: credentials.accessKeyId,
          peers: () => Object.fromEntries([...peers].map(([id, address]) => [String(id), address])),
          maintenance: () => maintenance.stats(),
        }),
    },
    logger,
  );
  // Peers' chunk wire connections start as upgrades of requests to the S3 port; every other
  // upgrade request (h2c, websocket) is served as the plain HTTP/1.1 request it also is.
  // (Node >= 24.9 reads this property per request; @types/node does not list it yet.)
  (app.server as { shouldUpgradeCallback?: typeof wantsChunkWire }).shouldUpgradeCallback = wantsChunkWire;
  app.server.on('upgrade', (req, socket, head) => wireServer.accept(req, socket, head));
  await app.listen({ host: config.s3Host, port: config.s3Port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const s3Url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  const self = staticPeers?.find((p) => p.id === config.nodeId);
  view = new ClusterView(
    {
      nodeId: config.nodeId,
      s3Url: config.advertiseUrl ?? s3Url,
      raftAddress: self?.raftAddress ?? `${config.raftHost}:${transport.port}`,
      weight: config.weight,
      ...(config.zone ? { zone: config.zone } : {}),
    },
    consensus,
    buildPlacement,
    logger,
  );
  view.start();
  maintenance.start();

  return {
    s3Url,
    credentials,
    generatedCredentials: generated,
    raftAddress: `${config.raftHost}:${transport.port}`,
    consensus,
    async close() {
      closing = true;
      // Stop taking requests and let in-flight ones finish, then stop what they used.
      view?.stop();
      await maintenance.stop();
      // Peers' chunk sessions first: they are not requests app.close() would wait for, and
      // those peers try other copies.
      wireServer.close();
      await app.close();
      await consensus.close();
      await remoteChunks.close();
      await chunks.close();
      await meta.flush();
      await meta.close();
    },
  };
}

/** Constant-time comparison of a presented secret header with the cluster secret. */
function secretEquals(presented: string | string[] | undefined, secret: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}
