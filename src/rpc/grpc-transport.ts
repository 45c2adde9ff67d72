/**
 * GrpcTransport: the Raft Transport over @grpc/grpc-js. One long-lived client stream per peer
 * carries message batches in order; snapshots go through InstallSnapshot in bounded chunks.
 *
 * Every call carries the cluster id and a peer auth token (util/peer-auth.ts: an HMAC keyed by
 * the cluster secret over a timestamp and a nonce; the secret itself never travels) and the server
 * refuses calls whose token does not verify (UNAUTHENTICATED, logged with the reason), so nodes of
 * another cluster, nodes started with a wrong secret, or anything else on the network cannot
 * inject Raft messages. The callee of a Raft stream proves in its first metadata that it holds
 * the key too, so a node never streams its log to an impostor.
 *
 * With `tls` (TS3GW_TLS_CA/CERT/KEY) the port speaks mutual TLS: both ends present a
 * certificate signed by the cluster's CA, and a handshake without one fails before any call (the
 * token is still checked inside). Failed handshakes are logged by both ends.
 *
 * Sending never blocks the Raft loop: when a peer's stream is broken or backed up beyond
 * PEER_QUEUE_BYTES_MAX, messages to it are dropped and the host is told the peer is unreachable
 * (Raft retransmits what matters).
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { PeerAddress, Transport, TransportHandler } from '../consensus/transport.ts';
import { CONSENSUS_ERR_BAD_COMMAND, CONSENSUS_ERR_CLOSED, CONSENSUS_ERR_NO_LEADER, CONSENSUS_ERR_TIMEOUT } from '../consensus/types.ts';
import * as pb from '../gen/ts3gw/raft/v1/raft.ts';
import { type Message, MessageType, type NodeId } from '../raft/index.ts';
import { assert } from '../util/assert.ts';
import { errorCode } from '../util/errors.ts';
import { checkReplyProof, PEER_AUTH_HEADER, PEER_AUTH_REPLY_HEADER, type PeerAuthPurpose, PeerAuthVerifier, peerAuthKey, peerAuthToken, replyProof } from '../util/peer-auth.ts';
import { messageFromWire, messageToWire } from './raft-codec.ts';

/** Bytes buffered on one peer stream before messages to that peer are dropped. */
export const PEER_QUEUE_BYTES_MAX = 64 * 1024 * 1024;
/** Commands one ProposeStream may have in flight before the node stops reading it. */
export const PROPOSE_STREAM_IN_FLIGHT_MAX = 1024;
/** Bytes of state per InstallSnapshot chunk. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Largest gRPC message accepted (a MsgApp batch is bounded by maxSizePerMsgBytes). */
export const GRPC_MESSAGE_BYTES_MAX = 64 * 1024 * 1024;
/** An InstallSnapshot that makes no progress for this long is abandoned. */
export const SNAPSHOT_TIMEOUT_MS = 5 * 60 * 1000;

export const METADATA_CLUSTER = 'x-ts3gw-cluster-id';
/** Metadata key of the peer auth token (util/peer-auth.ts). */
export const METADATA_AUTH = PEER_AUTH_HEADER;
const METADATA_NODE = 'x-ts3gw-node-id';
const METADATA_INCARNATION = 'x-ts3gw-incarnation';

/** Options of the gRPC transport. */
export interface GrpcTransportOptions {
  nodeId: NodeId;
  /** host:port to listen on for Raft traffic. */
  listenAddress: string;
  clusterId: string;
  clusterSecret: string;
  /** This node's incarnation: a random id chosen when its data directory was created. */
  incarnation: string;
  /** Accepts or refuses a peer's incarnation (a wiped peer comes back with a new one). */
  checkIncarnation(nodeId: NodeId, incarnation: string): boolean;
  logger: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Mutual TLS: the CA that signs every node's certificate, and this node's certificate and key (PEM). */
  tls?: PeerTls;
}

/** TLS material of mutual TLS between nodes. */
export interface PeerTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** Client credentials for calls to a peer: mutual TLS when configured, else plain HTTP/2. */
export function peerChannelCredentials(tls: PeerTls | undefined): grpc.ChannelCredentials {
  return tls ? grpc.credentials.createSsl(tls.ca, tls.key, tls.cert) : grpc.credentials.createInsecure();
}

/** Calls that failed because the TLS handshake did (a certificate the other end refuses, or TLS against plain). */
function isHandshakeFailure(err: { code?: number; details?: string }): boolean {
  return err.code === grpc.status.UNAVAILABLE && /certificate|handshake|ssl|tls|secure/i.test(err.details ?? '');
}

interface Peer {
  address: string;
  client: pb.RaftServiceClient;
  stream: grpc.ClientWritableStream<pb.MessageBatch> | undefined;
  queuedBytes: number;
  /** While set (epoch ms), the peer answered with an incarnation we refuse: send nothing. */
  refusedUntilMs: number;
  /** Reopens a broken stream after a pause, so the connection is up before it is needed. */
  redial: NodeJS.Timeout | undefined;
  /** A connect probe (see #probe) is in flight. */
  probing: boolean;
  /** When the last probe started (performance.now() ms). */
  probedAtMs: number;
}

/** Pause before a broken peer stream is reopened without traffic waiting for it. */
const REDIAL_MS = 500;

/** A liveness probe's connect that takes longer than this proves nothing. */
const PROBE_TIMEOUT_MS = 1_000;
/** A probe connection closed by the peer within this long says its process is going away. */
const PROBE_HOLD_MS = 150;
/** Least time between two liveness probes of one peer. */
const PROBE_INTERVAL_MS = 250;

/** How long a peer with a refused incarnation is left alone before it is checked again. */
const REFUSED_PEER_RECHECK_MS = 5_000;

/** Least time between two log lines about refused credentials from one address. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** The metadata a caller sends: the cluster id and a fresh peer auth token for `purpose`. */
export function peerAuthMetadata(key: Buffer, clusterId: string, purpose: PeerAuthPurpose, sender = ''): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(METADATA_CLUSTER, clusterId);
  md.set(METADATA_AUTH, peerAuthToken(key, purpose, clusterId, sender));
  return md;
}

/** Raft traffic over gRPC. */
export class GrpcTransport implements Transport {
  readonly #options: GrpcTransportOptions;
  readonly #authKey: Buffer;
  readonly #verifier: PeerAuthVerifier;
  /** Address → when its refusal was last logged (performance.now ms), so a retrying intruder does not flood the log. */
  readonly #refusalsLogged = new Map<string, number>();
  readonly #server = new grpc.Server({ 'grpc.max_receive_message_length': GRPC_MESSAGE_BYTES_MAX });
  readonly #peers = new Map<NodeId, Peer>();
  #handler: TransportHandler | undefined;
  #boundPort = 0;
  #closed = false;
  onUnreachable?: (id: NodeId) => void;
  onPeerDown?: (id: NodeId) => void;

  constructor(options: GrpcTransportOptions) {
    this.#options = options;
    this.#authKey = peerAuthKey(options.clusterSecret);
    this.#verifier = new PeerAuthVerifier(this.#authKey);
  }

  /** The port actually bound (useful when listening on port 0). */
  get port(): number {
    return this.#boundPort;
  }

  async start(handler: TransportHandler): Promise<void> {
    this.#handler = handler;
    this.#server.addService(pb.RaftServiceService, {
      messages: (call: grpc.ServerReadableStream<pb.MessageBatch, pb.StreamAck>, callback: grpc.sendUnaryData<pb.StreamAck>) =>
        this.#onMessagesCall(call, callback),
      installSnapshot: (call: grpc.ServerReadableStream<pb.SnapshotChunk, pb.SnapshotResponse>, callback: grpc.sendUnaryData<pb.SnapshotResponse>) =>
        void this.#onSnapshotCall(call, callback),
      propose: (call: grpc.ServerUnaryCall<pb.ProposeRequest, pb.ProposeResponse>, callback: grpc.sendUnaryData<pb.ProposeResponse>) =>
        void this.#onProposeCall(call, callback),
      proposeStream: (call: grpc.ServerDuplexStream<pb.ProposeBatch, pb.ProposeResults>) => this.#onProposeStream(call),
    });
    this.#boundPort = await new Promise<number>((resolve, reject) => {
      const tls = this.#options.tls;
      const credentials = tls ? grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true) : grpc.ServerCredentials.createInsecure();
      this.#server.bindAsync(this.#options.listenAddress, credentials, (err, port) => (err ? reject(err) : resolve(port)));
    });
    if (this.#options.tls) this.#logHandshakeRefusals();
  }

  setPeers(peers: PeerAddress[]): void {
    const wanted = new Map(peers.filter((p) => p.id !== this.#options.nodeId).map((p) => [p.id, p.raftAddress]));
    for (const [id, peer] of this.#peers) {
      if (wanted.get(id) !== peer.address) {
        clearTimeout(peer.redial);
        peer.stream?.end();
        peer.client.close();
        this.#peers.delete(id);
      }
    }
    for (const [id, address] of wanted) {
      if (this.#peers.has(id)) continue;
      const client = new pb.RaftServiceClient(address, peerChannelCredentials(this.#options.tls), {
        'grpc.max_send_message_length': GRPC_MESSAGE_BYTES_MAX,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      });
      const peer: Peer = { address, client, stream: undefined, queuedBytes: 0, refusedUntilMs: 0, redial: undefined, probing: false, probedAtMs: Number.NEGATIVE_INFINITY };
      this.#peers.set(id, peer);
      // Connect now, not at the first message: two followers exchange nothing until an election,
      // and a connection set up then (TCP + HTTP/2 + channel start) delays the vote by tens of ms.
      peer.stream = this.#openStream(id, peer);
    }
  }

  send(messages: Message[]): void {
    const byPeer = new Map<NodeId, pb.Message[]>();
    for (const m of messages) {
      assert(m.type !== MessageType.Snap, 'snapshots go through sendSnapshot');
      const list = byPeer.get(m.to) ?? [];
      list.push(messageToWire(m));
      byPeer.set(m.to, list);
    }
    for (const [id, wire] of byPeer) this.#sendTo(id, { messages: wire });
  }

  async sendSnapshot(message: Message, data: () => AsyncIterable<Uint8Array>): Promise<boolean> {
    const peer = this.#peers.get(message.to);
    if (!peer) return false;
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (ok: boolean) => {
        if (settled) return;
        settled = true;
        resolve(ok);
      };
      const call = peer.client.installSnapshot(this.#metadata(), { deadline: Date.now() + SNAPSHOT_TIMEOUT_MS }, (err, response) => {
        if (err) this.#options.logger.warn({ to: message.to, err: err.message }, 'snapshot rejected');
        finish(!err && response?.accepted === true);
      });
      void (async () => {
        try {
          call.write({ message: messageToWire(message), offset: 0, data: new Uint8Array(0), last: false });
          let offset = 0;
          for await (const piece of data()) {
            for (let at = 0; at < piece.byteLength; at += SNAPSHOT_CHUNK_BYTES) {
              const part = piece.subarray(at, at + SNAPSHOT_CHUNK_BYTES);
              if (!call.write({ offset, data: part, last: false })) await new Promise((r) => call.once('drain', r));
              offset += part.byteLength;
            }
          }
          call.write({ offset, data: new Uint8Array(0), last: true });
          call.end();
        } catch (err) {
          this.#options.logger.warn({ to: message.to, err }, 'snapshot stream failed');
          call.cancel();
          finish(false);
        }
      })();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const peer of this.#peers.values()) {
      clearTimeout(peer.redial);
      peer.stream?.end();
      peer.client.close();
    }
    this.#peers.clear();
    await new Promise<void>((resolve) => {
      this.#server.tryShutdown(() => resolve());
      // In-flight streams from peers would hold a graceful shutdown open forever.
      setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, 1_000).unref();
    });
  }

  #sendTo(id: NodeId, batch: pb.MessageBatch): void {
    const peer = this.#peers.get(id);
    if (!peer) {
      this.onUnreachable?.(id);
      return;
    }
    if (peer.refusedUntilMs > Date.now()) {
      this.onUnreachable?.(id);
      return;
    }
    if (!peer.stream) peer.stream = this.#openStream(id, peer);
    if (peer.queuedBytes > PEER_QUEUE_BYTES_MAX) {
      this.onUnreachable?.(id);
      return;
    }
    const size = batch.messages.reduce((n, m) => n + 64 + m.entries.reduce((s, e) => s + e.data.byteLength + 24, 0), 0);
    peer.queuedBytes += size;
    peer.stream.write(batch, () => {
      peer.queuedBytes -= size;
    });
  }

  #openStream(id: NodeId, peer: Peer): grpc.ClientWritableStream<pb.MessageBatch> {
    const md = this.#metadata();
    const token = String(md.get(METADATA_AUTH)[0]);
    const stream = peer.client.messages(md, (err) => {
      // The stream ended: by us (close/setPeers) or by failure. The next send reopens it, and so
      // does a redial after a pause while the peer is still ours.
      if (peer.stream === stream) peer.stream = undefined;
      peer.queuedBytes = 0;
      if (err && isHandshakeFailure(err)) this.#logRefusal(peer.address, { node: id, reason: err.details }, 'TLS handshake with a peer failed: is our certificate signed by the cluster CA, and theirs?');
      if (err?.code === grpc.status.UNAUTHENTICATED) this.#logRefusal(peer.address, { node: id, reason: err.details }, 'peer refused our credentials: is our cluster secret the cluster\'s?');
      if (err && err.code !== grpc.status.CANCELLED) {
        this.onUnreachable?.(id);
        this.#probe(id, peer);
      }
      if (err && !this.#closed && this.#peers.get(id) === peer && peer.redial === undefined) {
        peer.redial = setTimeout(() => {
          peer.redial = undefined;
          if (!this.#closed && this.#peers.get(id) === peer && !peer.stream && peer.refusedUntilMs <= Date.now()) peer.stream = this.#openStream(id, peer);
        }, REDIAL_MS);
        peer.redial.unref();
      }
    });
    stream.on('error', () => {
      // Reported through the callback above; this listener keeps the error from being unhandled.
    });
    // The callee says who it is in its initial metadata: a peer whose data directory was reset
    // must not receive our log (it would accept a commit index its empty log cannot back).
    stream.on('metadata', (md: grpc.Metadata) => {
      if (!checkReplyProof(this.#authKey, token, md.get(PEER_AUTH_REPLY_HEADER)[0])) {
        this.#logRefusal(peer.address, { node: id }, 'refusing a peer that cannot prove it holds the cluster secret');
        peer.refusedUntilMs = Date.now() + REFUSED_PEER_RECHECK_MS;
        stream.cancel();
        return;
      }
      const incarnation = md.get(METADATA_INCARNATION)[0];
      if (typeof incarnation === 'string' && !this.#options.checkIncarnation(id, incarnation)) {
        this.#options.logger.warn({ node: id, incarnation }, 'refusing a node whose data directory was reset; remove it and add it back as a new node');
        peer.refusedUntilMs = Date.now() + REFUSED_PEER_RECHECK_MS;
        stream.cancel();
      }
    });
    return stream;
  }

  /**
   * After a peer's stream broke: is its process gone? A TCP connect to its Raft port that is
   * refused says nobody listens there any more (kill -9, crash, OOM kill: the kernel closed the
   * dead process's connections, which is what broke the stream), and the host may elect a new
   * leader at once instead of after an election timeout. A connect that succeeds or times out
   * (slow peer, partition, dead machine) says nothing, and the election timeout stays in charge.
   */
  #probe(id: NodeId, peer: Peer): void {
    if (this.#closed || this.onPeerDown === undefined || peer.probing) return;
    // A dead peer's stream breaks again at every send to it: probe at most every so often.
    const now = performance.now();
    if (now - peer.probedAtMs < PROBE_INTERVAL_MS) return;
    peer.probedAtMs = now;
    const target = splitHostPort(peer.address);
    if (target === undefined) return;
    peer.probing = true;
    const socket = net.connect({ host: target.host, port: target.port });
    let settled = false;
    const done = (down: boolean) => {
      if (settled) return;
      settled = true;
      peer.probing = false;
      clearTimeout(timer);
      socket.destroy();
      if (down && !this.#closed && this.#peers.get(id) === peer) this.onPeerDown?.(id);
    };
    let timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    timer.unref();
    // A dying process's listening socket can outlive its connections by a few ms and accept
    // the probe, then reset it: a connection dropped within PROBE_HOLD_MS counts as refused.
    // A live server keeps a fresh connection open (it waits for the HTTP/2 preface).
    socket.once('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(false), PROBE_HOLD_MS);
      timer.unref();
    });
    socket.once('close', () => done(true));
    socket.once('error', (err) => done(errorCode(err) === 'ECONNREFUSED' || errorCode(err) === 'ECONNRESET'));
  }

  #metadata(): grpc.Metadata {
    const md = peerAuthMetadata(this.#authKey, this.#options.clusterId, 'raft', String(this.#options.nodeId));
    md.set(METADATA_NODE, String(this.#options.nodeId));
    md.set(METADATA_INCARNATION, this.#options.incarnation);
    return md;
  }

  /** Refuses (and logs) a caller without a valid token for this cluster and `purpose`. */
  #secretRefusal(call: { metadata: grpc.Metadata; getPeer(): string }, purpose: PeerAuthPurpose): grpc.ServiceError | undefined {
    const metadata = call.metadata;
    const cluster = metadata.get(METADATA_CLUSTER)[0];
    if (cluster !== this.#options.clusterId) {
      this.#logRefusal(call.getPeer(), { purpose, reason: 'another cluster id' }, 'refused a gRPC call: wrong cluster credentials');
      return serviceError(grpc.status.UNAUTHENTICATED, 'wrong cluster id');
    }
    const verdict = this.#verifier.verify(metadata.get(METADATA_AUTH)[0], purpose, this.#options.clusterId);
    if (!verdict.ok) {
      this.#logRefusal(call.getPeer(), { purpose, reason: verdict.reason }, 'refused a gRPC call: wrong cluster credentials');
      return serviceError(grpc.status.UNAUTHENTICATED, verdict.reason);
    }
    if (purpose === 'raft' && verdict.sender !== String(metadata.get(METADATA_NODE)[0])) {
      return serviceError(grpc.status.UNAUTHENTICATED, 'the token names another node');
    }
    return undefined;
  }

  /**
   * Logs the handshakes the TLS layer refused (a client without a certificate of the cluster's
   * CA, or speaking plain HTTP/2): grpc-js drops them without telling its user, so this listens
   * on its HTTP/2 servers directly. `http2Servers` is grpc-js's own field (1.x); without it the
   * refusals go unlogged here, and the refused node still logs its side.
   */
  #logHandshakeRefusals(): void {
    const servers = (this.#server as unknown as { http2Servers?: Map<{ on(event: string, fn: (err: Error, socket: { remoteAddress?: string }) => void): void }, unknown> }).http2Servers;
    for (const http2Server of servers?.keys() ?? []) {
      http2Server.on('tlsClientError', (err, socket) => {
        // Keyed by the kind of failure too: a rogue certificate and plain HTTP/2 are two stories.
        const kind = (err as { code?: string }).code ?? err.message;
        this.#logRefusal(`tls:${socket.remoteAddress ?? '?'}:${kind}`, { peer: socket.remoteAddress, reason: err.message }, 'refused a TLS handshake on the Raft port: no certificate of the cluster CA');
      });
    }
  }

  /** Logs a refusal (reasons and addresses only, never tokens), at most every REFUSAL_LOG_INTERVAL_MS per address. */
  #logRefusal(address: string, fields: object, msg: string): void {
    const now = performance.now();
    const last = this.#refusalsLogged.get(address);
    if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) return;
    if (this.#refusalsLogged.size > 1024) this.#refusalsLogged.clear();
    this.#refusalsLogged.set(address, now);
    this.#options.logger.warn({ peer: address, ...fields }, msg);
  }

  /** Why a call from a peer must be refused, or undefined when it may proceed. */
  #refusal(call: { metadata: grpc.Metadata; getPeer(): string }): grpc.ServiceError | undefined {
    const secretRefusal = this.#secretRefusal(call, 'raft');
    if (secretRefusal) return secretRefusal;
    const metadata = call.metadata;
    const node = Number(metadata.get(METADATA_NODE)[0]);
    const incarnation = metadata.get(METADATA_INCARNATION)[0];
    if (!(node >= 1) || typeof incarnation !== 'string') return serviceError(grpc.status.UNAUTHENTICATED, 'caller did not say who it is');
    if (!this.#options.checkIncarnation(node, incarnation)) {
      this.#options.logger.warn({ node, incarnation }, 'refusing a node whose data directory was reset; remove it and add it back as a new node');
      return serviceError(grpc.status.FAILED_PRECONDITION, `node ${node} was reset (new incarnation); remove it and add it back as a new member`);
    }
    return undefined;
  }

  #onMessagesCall(call: grpc.ServerReadableStream<pb.MessageBatch, pb.StreamAck>, callback: grpc.sendUnaryData<pb.StreamAck>): void {
    const refusal = this.#refusal(call);
    if (refusal) {
      callback(refusal);
      return;
    }
    const md = new grpc.Metadata();
    md.set(PEER_AUTH_REPLY_HEADER, replyProof(this.#authKey, String(call.metadata.get(METADATA_AUTH)[0])));
    md.set(METADATA_NODE, String(this.#options.nodeId));
    md.set(METADATA_INCARNATION, this.#options.incarnation);
    call.sendMetadata(md);
    call.on('data', (batch: pb.MessageBatch) => {
      const messages: Message[] = [];
      for (const w of batch.messages) {
        try {
          const m = messageFromWire(w);
          if (m.to === this.#options.nodeId) messages.push(m);
        } catch (err) {
          this.#options.logger.warn({ err }, 'undecodable raft message dropped');
        }
      }
      if (messages.length > 0) this.#handler?.onMessages(messages);
    });
    call.on('end', () => callback(null, {}));
    // The peer went away; it reconnects with a new stream, unless its process is gone: this is
    // often the first sign of that (a follower hears from its leader on this stream).
    const from = Number(call.metadata.get(METADATA_NODE)[0]);
    const lost = () => {
      const peer = this.#peers.get(from);
      if (peer !== undefined) this.#probe(from, peer);
    };
    call.on('error', lost);
    call.on('cancelled', lost);
  }

  async #onProposeCall(call: grpc.ServerUnaryCall<pb.ProposeRequest, pb.ProposeResponse>, callback: grpc.sendUnaryData<pb.ProposeResponse>): Promise<void> {
    // A client, not a peer: the cluster secret is what it must hold (a peer holding it can put
    // anything in the log through MsgProp already, so this widens nothing).
    const refusal = this.#secretRefusal(call, 'propose');
    if (refusal) {
      callback(refusal);
      return;
    }
    if (!this.#handler) {
      callback(serviceError(grpc.status.UNAVAILABLE, 'not started'));
      return;
    }
    try {
      callback(null, { result: await this.#handler.onPropose(call.request.command), id: 0, code: 0, message: '' });
    } catch (err) {
      callback(serviceError(proposeStatus(err), (err as Error).message));
    }
  }

  #onProposeStream(call: grpc.ServerDuplexStream<pb.ProposeBatch, pb.ProposeResults>): void {
    const refusal = this.#secretRefusal(call, 'propose');
    if (refusal || !this.#handler) {
      call.destroy(refusal ?? serviceError(grpc.status.UNAVAILABLE, 'not started'));
      return;
    }
    const handler = this.#handler;
    let pending = 0;
    let ended = false;
    // Answers ready in one turn of the event loop leave as one message.
    let outgoing: pb.ProposeResponse[] = [];
    const flush = () => {
      const responses = outgoing;
      outgoing = [];
      if (!call.destroyed && responses.length > 0) call.write({ responses });
      if (pending < PROPOSE_STREAM_IN_FLIGHT_MAX && call.isPaused()) call.resume();
      if (ended && pending === 0) call.end();
    };
    const answer = (res: pb.ProposeResponse) => {
      pending--;
      if (outgoing.push(res) === 1) setImmediate(flush);
    };
    call.on('data', (batch: pb.ProposeBatch) => {
      for (const req of batch.requests) {
        pending++;
        handler.onPropose(req.command).then(
          (result) => answer({ result, id: req.id, code: 0, message: '' }),
          (err: unknown) => answer({ result: new Uint8Array(0), id: req.id, code: proposeStatus(err), message: (err as Error).message }),
        );
      }
      // Backpressure: a client that keeps more commands in flight than this waits (flow control
      // holds its writes) instead of growing this node's memory.
      if (pending >= PROPOSE_STREAM_IN_FLIGHT_MAX) call.pause();
    });
    call.on('end', () => {
      ended = true;
      if (pending === 0) call.end();
    });
    call.on('error', () => {
      // The client went away; its pending commands still complete (or time out) in the log.
    });
  }

  async #onSnapshotCall(call: grpc.ServerReadableStream<pb.SnapshotChunk, pb.SnapshotResponse>, callback: grpc.sendUnaryData<pb.SnapshotResponse>): Promise<void> {
    const refusal = this.#refusal(call);
    if (refusal) {
      callback(refusal);
      return;
    }
    const chunks = call[Symbol.asyncIterator]() as AsyncIterator<pb.SnapshotChunk>;
    try {
      const first = await chunks.next();
      if (first.done || !first.value.message) throw new Error('snapshot stream without its message');
      const message = messageFromWire(first.value.message);
      assert(message.type === MessageType.Snap, 'first chunk carries MsgSnap');
      let expected = 0;
      let complete = false;
      const data = async function* (): AsyncGenerator<Uint8Array> {
        for (;;) {
          const next = await chunks.next();
          if (next.done) break;
          const chunk = next.value;
          if (chunk.offset !== expected) throw new Error(`snapshot chunk at ${chunk.offset}, expected ${expected}`);
          expected += chunk.data.byteLength;
          if (chunk.data.byteLength > 0) yield chunk.data;
          if (chunk.last) {
            complete = true;
            break;
          }
        }
        if (!complete) throw new Error('snapshot stream ended early');
      };
      const ok = (await this.#handler?.onSnapshot(message, data())) ?? false;
      callback(null, { accepted: ok });
    } catch (err) {
      this.#options.logger.warn({ err }, 'snapshot install failed');
      callback({ code: grpc.status.ABORTED, details: (err as Error).message });
    }
  }
}

/** How consensus errors surface to a Propose caller. */
const PROPOSE_STATUS: Record<string, grpc.status> = {
  [CONSENSUS_ERR_NO_LEADER]: grpc.status.UNAVAILABLE,
  [CONSENSUS_ERR_CLOSED]: grpc.status.UNAVAILABLE,
  [CONSENSUS_ERR_TIMEOUT]: grpc.status.DEADLINE_EXCEEDED,
  [CONSENSUS_ERR_BAD_COMMAND]: grpc.status.INVALID_ARGUMENT,
};

function proposeStatus(err: unknown): grpc.status {
  const code = errorCode(err);
  return (code === undefined ? undefined : PROPOSE_STATUS[code]) ?? grpc.status.INTERNAL;
}

function serviceError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** "host:port" or "[v6]:port" → parts; undefined when it does not parse. */
function splitHostPort(address: string): { host: string; port: number } | undefined {
  const at = address.lastIndexOf(':');
  if (at <= 0) return undefined;
  const port = Number(address.slice(at + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) return undefined;
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}
