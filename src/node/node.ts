/**
 * The composition root: builds every module from the configuration, starts them in dependency
 * order and stops them in reverse. A node with no peers is a cluster of one (LocalConsensus).
 */
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { openDiskChunkStore } from '../chunks/disk-chunk-store.ts';
import type { Config } from '../config/config.ts';
import { LocalConsensus } from '../consensus/local-consensus.ts';
import { openLevelMetaStore } from '../meta/level-meta-store.ts';
import { ObjectService } from '../objects/object-service.ts';
import { buildS3App } from '../s3/server.ts';
import { systemClock } from '../util/clock.ts';
import { type Credentials, loadRootCredentials } from './credentials.ts';

/** XML request bodies: DeleteObjects with 1000 maximal keys, escaped, fits in 2 MiB. */
export const XML_BODY_BYTES_MAX = 2 * 1024 * 1024;

/** A running node. */
export interface RunningNode {
  /** Base URL of the S3 endpoint, e.g. http://127.0.0.1:9000 */
  s3Url: string;
  credentials: Credentials;
  /** True when this start generated the root credentials (print them once). */
  generatedCredentials: boolean;
  close(): Promise<void>;
}

/** Starts a node and resolves once it serves S3. */
export async function startNode(config: Config, logger: FastifyBaseLogger): Promise<RunningNode> {
  await mkdir(config.dataDir, { recursive: true });
  const { credentials, generated } = await loadRootCredentials(config.dataDir, {
    accessKey: config.rootAccessKey,
    secretKey: config.rootSecretKey,
  });
  const meta = await openLevelMetaStore({ location: join(config.dataDir, 'meta'), syncWrites: true });
  const chunks = await openDiskChunkStore({ dir: join(config.dataDir, 'chunks'), fsync: true });
  const consensus = new LocalConsensus(meta);
  const objects = new ObjectService(
    { chunkSizeBytes: config.chunkSizeBytes, inlineMaxBytes: config.inlineMaxBytes, objectSizeBytesMax: config.objectSizeBytesMax },
    { consensus, chunks, clock: systemClock },
  );
  let closing = false;
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
      isReady: () => !closing,
    },
    logger,
  );
  await app.listen({ host: config.s3Host, port: config.s3Port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const s3Url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;

  return {
    s3Url,
    credentials,
    generatedCredentials: generated,
    async close() {
      closing = true;
      // Stop taking requests and let in-flight ones finish, then stop what they used.
      await app.close();
      await consensus.close();
      await chunks.close();
      await meta.close();
    },
  };
}
