/**
 * Clients of the Propose RPCs: put metadata commands into a cluster's replicated log through any
 * node, over one HTTP/2 connection. For tools and the Raft benchmark; the S3 layer proposes
 * in-process instead. `propose` makes one unary call per command; `openStream` pipelines many
 * commands over one ProposeStream, those of one event-loop turn in one message (much less work
 * per command on both ends).
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as pb from '../gen/ts3gw/raft/v1/raft.ts';
import { encodeCommand } from '../meta/codec.ts';
import type { ApplyResult, MetaOp } from '../meta/types.ts';
import { peerAuthKey } from '../util/peer-auth.ts';
import { type PeerTls, peerAuthMetadata, peerChannelCredentials } from './grpc-transport.ts';

export interface ProposeClientOptions {
  /** host:port of a node's Raft (gRPC) endpoint. */
  address: string;
  clusterId: string;
  clusterSecret: string;
  /** Mutual TLS material when the cluster's Raft port requires it. */
  tls?: PeerTls;
}

/** A failed proposal: `code` is the gRPC status (UNAVAILABLE: not applied; DEADLINE_EXCEEDED: unknown). */
export class ProposeError extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.name = 'ProposeError';
    this.code = code;
  }
}

/** Commands pipelined over one ProposeStream. */
export interface ProposeStream {
  propose(op: MetaOp, options?: { requestId?: string; timeoutMs?: number }): Promise<ApplyResult>;
  proposeEncoded(command: Uint8Array, timeoutMs?: number): Promise<ApplyResult>;
  close(): void;
}

/** Proposes metadata operations through one node. */
export class ProposeClient {
  readonly #client: pb.RaftServiceClient;
  readonly #clusterId: string;
  readonly #authKey: Buffer;

  constructor(options: ProposeClientOptions) {
    this.#client = new pb.RaftServiceClient(options.address, peerChannelCredentials(options.tls));
    this.#clusterId = options.clusterId;
    this.#authKey = peerAuthKey(options.clusterSecret);
  }

  /** Fresh credentials for one call or stream (a token is good for one use). */
  get #metadata(): grpc.Metadata {
    return peerAuthMetadata(this.#authKey, this.#clusterId, 'propose');
  }

  /**
   * Proposes `op` and resolves with its apply result. Rejects with a grpc ServiceError:
   * UNAVAILABLE (not applied), DEADLINE_EXCEEDED (outcome unknown; retry with the same
   * `requestId`), INVALID_ARGUMENT, UNAUTHENTICATED.
   */
  propose(op: MetaOp, options: { requestId?: string; timeoutMs?: number } = {}): Promise<ApplyResult> {
    return this.proposeEncoded(encode(op, options.requestId), options.timeoutMs);
  }

  /** Sends already-encoded command bytes (tests use it to send malformed ones). */
  proposeEncoded(command: Uint8Array, timeoutMs = 10_000): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      this.#client.propose({ command, id: 0 }, this.#metadata, { deadline: Date.now() + timeoutMs }, (err, response) => {
        if (err) reject(err);
        else resolve(decodeResult(response.result));
      });
    });
  }

  /**
   * Opens a ProposeStream. Each command gets its own deadline; a broken stream fails every
   * command still waiting with UNAVAILABLE (outcome unknown for those already sent: retry with
   * the same request id) and the next command opens a new stream.
   */
  openStream(): ProposeStream {
    let call: grpc.ClientDuplexStream<pb.ProposeBatch, pb.ProposeResults> | undefined;
    // Commands proposed in one turn of the event loop leave as one message.
    let outgoing: pb.ProposeRequest[] = [];
    const flush = () => {
      const requests = outgoing;
      outgoing = [];
      if (requests.length === 0) return; // closed meanwhile
      call ??= open();
      call.write({ requests });
    };
    let nextId = 1;
    const waiting = new Map<number, { resolve: (r: ApplyResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
    const failAll = (err: Error) => {
      for (const w of waiting.values()) {
        clearTimeout(w.timer);
        w.reject(err);
      }
      waiting.clear();
    };
    const open = () => {
      const c = this.#client.proposeStream(this.#metadata);
      c.on('data', (results: pb.ProposeResults) => {
        for (const res of results.responses) {
          const w = waiting.get(res.id);
          if (!w) continue;
          waiting.delete(res.id);
          clearTimeout(w.timer);
          if (res.code === 0) w.resolve(decodeResult(res.result));
          else w.reject(new ProposeError(res.code, res.message));
        }
      });
      const broken = (err?: Error) => {
        if (call === c) call = undefined;
        failAll(new ProposeError(grpc.status.UNAVAILABLE, `propose stream ended: ${err?.message ?? 'closed'}`));
      };
      c.on('error', broken);
      c.on('end', () => broken());
      return c;
    };
    const proposeEncoded = (command: Uint8Array, timeoutMs = 10_000): Promise<ApplyResult> =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new ProposeError(grpc.status.DEADLINE_EXCEEDED, 'no answer in time; the outcome is unknown'));
        }, timeoutMs);
        waiting.set(id, { resolve, reject, timer });
        if (outgoing.push({ command, id }) === 1) setImmediate(flush);
      });
    return {
      propose: (op, options = {}) => proposeEncoded(encode(op, options.requestId), options.timeoutMs),
      proposeEncoded,
      close: () => {
        outgoing = [];
        call?.end();
        call = undefined;
        failAll(new ProposeError(grpc.status.CANCELLED, 'stream closed'));
      },
    };
  }

  close(): void {
    this.#client.close();
  }
}

function encode(op: MetaOp, requestId: string | undefined): Uint8Array {
  return encodeCommand({ v: 1, requestId: requestId ?? randomUUID(), stampMs: Date.now(), op });
}

function decodeResult(bytes: Uint8Array): ApplyResult {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as ApplyResult;
}
