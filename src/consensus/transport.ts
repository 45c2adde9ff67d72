/**
 * The Raft host's view of the network. The gRPC implementation lives in rpc/; the simulator has
 * its own. Delivery is best effort: Raft tolerates loss, duplication and reordering, so send()
 * never blocks and never throws for an unreachable peer (it reports it instead).
 */
import type { Message, NodeId } from '../raft/index.ts';

/** Where a peer listens for Raft traffic. */
export interface PeerAddress {
  id: NodeId;
  /** host:port of the peer's gRPC endpoint. */
  raftAddress: string;
}

/** Inbound traffic, implemented by the Raft host. */
export interface TransportHandler {
  /** Messages from a peer, in the order it sent them. */
  onMessages(messages: Message[]): void;
  /**
   * A snapshot from the leader: `message` is the MsgSnap (metadata only), `data` the state
   * machine's chunks. Resolves true once installed and stepped.
   */
  onSnapshot(message: Message, data: AsyncIterable<Uint8Array>): Promise<boolean>;
  /**
   * An encoded metadata command from an authenticated client: proposed through this node,
   * resolving with the encoded result once applied here. Rejects with the consensus error codes.
   */
  onPropose(command: Uint8Array): Promise<Uint8Array>;
}

/** Outbound traffic. */
export interface Transport {
  /** Starts serving inbound traffic for `handler`. */
  start(handler: TransportHandler): Promise<void>;
  /** Replaces the set of known peers (from static config and committed membership). */
  setPeers(peers: PeerAddress[]): void;
  /** Sends messages (not MsgSnap); calls onUnreachable(id) when a peer cannot be reached. */
  send(messages: Message[]): void;
  /** Streams a snapshot to `message.to`; resolves whether the peer installed it. */
  sendSnapshot(message: Message, data: () => AsyncIterable<Uint8Array>): Promise<boolean>;
  /** Called by the transport when messages to a peer were dropped. */
  onUnreachable?: (id: NodeId) => void;
  /**
   * Called when there is evidence that a peer's process is gone (its connection broke and a
   * reconnect was refused), as opposed to merely slow or partitioned. A hint: it may be wrong.
   */
  onPeerDown?: (id: NodeId) => void;
  close(): Promise<void>;
}
