/**
 * Gossip over UDP on the Raft port's number (gRPC holds the TCP side). Each datagram is
 *
 *   [32 bytes HMAC-SHA256(key, body)] [body: the message as UTF-8 JSON]
 *
 * with the key derived from the cluster secret, so only nodes that know it are heard: a node of
 * another cluster, or one started with the wrong secret, is dropped (and counted) before its
 * message is parsed. Gossip carries no secrets and nothing that decides membership, so a
 * replayed datagram can at worst delay a suspicion by one period; no nonce is kept.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import type { GossipMessage, GossipTransport } from './gossip.ts';

/** The largest datagram sent or accepted (a sync of GOSSIP_MEMBERS_MAX members fits). */
export const GOSSIP_DATAGRAM_BYTES_MAX = 60_000;

const MAC_BYTES = 32;

/** Counters of the UDP side, named like Prometheus series. */
export interface UdpGossipStats {
  ts3gw_gossip_sent_messages_total: number;
  ts3gw_gossip_received_messages_total: number;
  /** Datagrams dropped: bad MAC (wrong secret, another cluster), malformed, too large. */
  ts3gw_gossip_rejected_messages_total: number;
}

/** The logging the transport needs. */
export interface GossipLogger {
  warn(obj: object, msg: string): void;
}

/** A bound UDP gossip socket. */
export class UdpGossipTransport implements GossipTransport {
  readonly #socket: dgram.Socket;
  readonly #key: Buffer;
  readonly #logger: GossipLogger | undefined;
  #onMessage: (m: GossipMessage) => void = () => undefined;
  #lastRejectLogMs = 0;
  #closed = false;
  readonly #stats: UdpGossipStats = { ts3gw_gossip_sent_messages_total: 0, ts3gw_gossip_received_messages_total: 0, ts3gw_gossip_rejected_messages_total: 0 };

  private constructor(socket: dgram.Socket, secret: string, logger: GossipLogger | undefined) {
    this.#socket = socket;
    this.#key = createHash('sha256').update('ts3gw-gossip\0').update(secret).digest();
    this.#logger = logger;
    socket.on('message', (bytes, rinfo) => this.#receive(bytes, `${rinfo.address}:${rinfo.port}`));
    // A send to a closed port comes back as an ICMP error on some systems: nothing to do, the
    // probe's timeout handles a dead peer.
    socket.on('error', (err) => this.#logger?.warn({ err: String(err) }, 'gossip socket error'));
  }

  /** Binds host:port (port 0 picks one) and resolves once listening. */
  static async bind(host: string, port: number, secret: string, logger?: GossipLogger): Promise<UdpGossipTransport> {
    const type = host.includes(':') ? 'udp6' : 'udp4';
    const socket = dgram.createSocket({ type, reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new UdpGossipTransport(socket, secret, logger);
  }

  get port(): number {
    return this.#socket.address().port;
  }

  /** Where received, authenticated messages go. */
  onMessage(handler: (m: GossipMessage) => void): void {
    this.#onMessage = handler;
  }

  send(address: string, message: GossipMessage): void {
    // A timer of the protocol may fire after close (shutdown): dgram would throw, and the throw
    // from a timer callback would crash the process.
    if (this.#closed) return;
    const target = splitHostPort(address);
    if (!target) return;
    const body = Buffer.from(JSON.stringify(message), 'utf8');
    if (body.length + MAC_BYTES > GOSSIP_DATAGRAM_BYTES_MAX) {
      this.#logger?.warn({ bytes: body.length, type: message.type }, 'gossip message too large; not sent');
      return;
    }
    const mac = createHmac('sha256', this.#key).update(body).digest();
    this.#stats.ts3gw_gossip_sent_messages_total++;
    this.#socket.send(Buffer.concat([mac, body]), target.port, target.host, (err) => {
      // Unresolvable names and unreachable hosts: the probe's timeout handles them.
      if (err) this.#logger?.warn({ err: String(err), address }, 'gossip send failed');
    });
  }

  stats(): UdpGossipStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }

  #receive(bytes: Buffer, source: string): void {
    const message = bytes.length > MAC_BYTES && bytes.length <= GOSSIP_DATAGRAM_BYTES_MAX ? this.#authenticate(bytes) : undefined;
    if (!message) {
      this.#stats.ts3gw_gossip_rejected_messages_total++;
      const now = Date.now();
      // One line per 10 s at most: a misconfigured node sends every period.
      if (now - this.#lastRejectLogMs > 10_000) {
        this.#lastRejectLogMs = now;
        this.#logger?.warn({ source }, 'gossip message refused: wrong cluster secret or malformed');
      }
      return;
    }
    this.#stats.ts3gw_gossip_received_messages_total++;
    this.#onMessage(message);
  }

  #authenticate(bytes: Buffer): GossipMessage | undefined {
    const mac = bytes.subarray(0, MAC_BYTES);
    const body = bytes.subarray(MAC_BYTES);
    const expected = createHmac('sha256', this.#key).update(body).digest();
    if (!timingSafeEqual(mac, expected)) return undefined;
    try {
      const m = JSON.parse(body.toString('utf8')) as GossipMessage;
      return isMessage(m) ? m : undefined;
    } catch {
      // Authenticated but not JSON: a bug on the sender's side; dropped like any bad datagram.
      return undefined;
    }
  }
}

/** "host:port" or "[v6]:port" → parts; undefined when malformed. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

function isUpdate(u: unknown): boolean {
  if (typeof u !== 'object' || u === null) return false;
  const x = u as Record<string, unknown>;
  const meta = x['meta'] as Record<string, unknown> | undefined;
  return (
    typeof x['address'] === 'string' &&
    Number.isSafeInteger(x['incarnation']) &&
    (x['state'] === 'alive' || x['state'] === 'suspect' || x['state'] === 'dead') &&
    typeof meta === 'object' &&
    meta !== null &&
    Number.isSafeInteger(meta['nodeId']) &&
    typeof meta['raftAddress'] === 'string' &&
    typeof meta['s3Url'] === 'string'
  );
}

/** Shape check of an authenticated message (a sender of another version must not crash us). */
function isMessage(m: unknown): m is GossipMessage {
  if (typeof m !== 'object' || m === null) return false;
  const x = m as Record<string, unknown>;
  if (!isUpdate(x['from'])) return false;
  switch (x['type']) {
    case 'ping':
    case 'ack':
      return Number.isSafeInteger(x['seq']) && Array.isArray(x['updates']) && x['updates'].every(isUpdate);
    case 'ping-req':
      return Number.isSafeInteger(x['seq']) && typeof x['target'] === 'string' && Array.isArray(x['updates']) && x['updates'].every(isUpdate);
    case 'sync':
      return typeof x['reply'] === 'boolean' && Array.isArray(x['members']) && x['members'].every(isUpdate);
    default:
      return false;
  }
}
