/**
 * A client of the Propose RPC: puts metadata commands into a cluster's replicated log through any
 * node, over one HTTP/2 connection. For tools and the Raft benchmark; the S3 layer proposes
 * in-process instead.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as pb from '../gen/ts3gw/raft/v1/raft.ts';
import { encodeCommand } from '../meta/codec.ts';
import type { ApplyResult, MetaOp } from '../meta/types.ts';
import { METADATA_CLUSTER, METADATA_SECRET } from './grpc-transport.ts';

export interface ProposeClientOptions {
  /** host:port of a node's Raft (gRPC) endpoint. */
  address: string;
  clusterId: string;
  clusterSecret: string;
}

/** Proposes metadata operations through one node. */
export class ProposeClient {
  readonly #client: pb.RaftServiceClient;
  readonly #metadata = new grpc.Metadata();

  constructor(options: ProposeClientOptions) {
    this.#client = new pb.RaftServiceClient(options.address, grpc.credentials.createInsecure());
    this.#metadata.set(METADATA_CLUSTER, options.clusterId);
    this.#metadata.set(METADATA_SECRET, options.clusterSecret);
  }

  /**
   * Proposes `op` and resolves with its apply result. Rejects with a grpc ServiceError:
   * UNAVAILABLE (not applied), DEADLINE_EXCEEDED (outcome unknown; retry with the same
   * `requestId`), INVALID_ARGUMENT, UNAUTHENTICATED.
   */
  propose(op: MetaOp, options: { requestId?: string; timeoutMs?: number } = {}): Promise<ApplyResult> {
    const command = encodeCommand({ v: 1, requestId: options.requestId ?? randomUUID(), stampMs: Date.now(), op });
    return this.proposeEncoded(command, options.timeoutMs);
  }

  /** Sends already-encoded command bytes (tests use it to send malformed ones). */
  proposeEncoded(command: Uint8Array, timeoutMs = 10_000): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      this.#client.propose({ command }, this.#metadata, { deadline: Date.now() + timeoutMs }, (err, response) => {
        if (err) reject(err);
        else resolve(JSON.parse(Buffer.from(response.result).toString('utf8')) as ApplyResult);
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}
