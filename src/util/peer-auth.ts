/**
 * Peer authentication by the cluster secret without ever sending it: each inter-node call (a
 * gRPC call or stream, a chunk wire connection, an HTTP chunk request, a join request) carries a
 * token that proves knowledge of a key derived from the secret, bound to what it is for:
 *
 *   token = "v1." tsMs "." nonce "." sender "." mac
 *   mac   = HMAC-SHA256(K, "ts3gw-peer-auth v1\n" purpose "\n" clusterId "\n" tsMs "\n" nonce "\n" sender)
 *   K     = HKDF-SHA256(cluster secret, salt "ts3gw", info "peer-auth v1")
 *
 * The verifier refuses a token whose MAC does not match (wrong secret, another cluster, another
 * purpose), whose timestamp is more than PEER_AUTH_SKEW_MS from its own clock, or whose nonce it
 * saw before (a replay of a captured token). Nonces are remembered for as long as a token could
 * still be within the window (twice the skew after first sight), at most PEER_AUTH_NONCES_MAX of
 * them; when that many arrive within the window the oldest are forgotten and every token not
 * newer than the newest forgotten one is refused, so nothing is ever accepted twice.
 *
 * A token authenticates the start of a call, not its body: on a network whose traffic an
 * attacker can change, configure mutual TLS (which also encrypts). The server proves itself back
 * with `replyProof(token)` where the protocol has a place for it (the Raft stream's metadata).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Header (HTTP) and metadata key (gRPC) that carries the token. */
export const PEER_AUTH_HEADER = 'x-ts3gw-peer-auth';
/** Metadata key of the server's proof that it holds the key too. */
export const PEER_AUTH_REPLY_HEADER = 'x-ts3gw-peer-auth-reply';
/**
 * Largest clock difference between two nodes a token tolerates (SigV4 allows 15 minutes; nodes of
 * one cluster run NTP, and the chaos suite skews clocks by seconds).
 */
export const PEER_AUTH_SKEW_MS = 5 * 60 * 1000;
/** Nonces remembered against replays. */
export const PEER_AUTH_NONCES_MAX = 200_000;
/** Longest token accepted (a few short fields). */
const TOKEN_CHARS_MAX = 200;

/** What a token is for: a token made for one is refused by the others. */
export type PeerAuthPurpose = 'raft' | 'propose' | 'chunks' | 'join';

/** The MAC key derived from the cluster secret. */
export function peerAuthKey(clusterSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clusterSecret, 'ts3gw', 'peer-auth v1', 32));
}

function mac(key: Buffer, purpose: string, clusterId: string, tsMs: string, nonce: string, sender: string): Buffer {
  return createHmac('sha256', key).update(`ts3gw-peer-auth v1\n${purpose}\n${clusterId}\n${tsMs}\n${nonce}\n${sender}`).digest();
}

/**
 * A fresh token for one call. `clusterId` is '' where the caller may not know it yet (a join);
 * `sender` names the caller (its node id) or is ''.
 */
export function peerAuthToken(key: Buffer, purpose: PeerAuthPurpose, clusterId: string, sender = '', nowMs = Date.now()): string {
  if (!/^[0-9A-Za-z_-]{0,32}$/.test(sender)) throw new TypeError(`peer auth sender must be a short word, not ${JSON.stringify(sender)}`);
  const tsMs = String(Math.floor(nowMs));
  const nonce = randomBytes(16).toString('base64url');
  return `v1.${tsMs}.${nonce}.${sender}.${mac(key, purpose, clusterId, tsMs, nonce, sender).toString('base64url')}`;
}

/** The server's answer to a token: proves it derived the same key. */
export function replyProof(key: Buffer, token: string): string {
  return createHmac('sha256', key).update(`ts3gw-peer-auth reply v1\n${token}`).digest('base64url');
}

/** True when `proof` is replyProof(key, token). */
export function checkReplyProof(key: Buffer, token: string, proof: unknown): boolean {
  if (typeof proof !== 'string') return false;
  const want = Buffer.from(replyProof(key, token));
  const got = Buffer.from(proof);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A verdict on a token: the sender it names, or why it was refused (safe to log: no secrets). */
export type PeerAuthVerdict = { ok: true; sender: string } | { ok: false; reason: string };

/** Checks tokens for one cluster, remembering nonces against replays. One per node, shared by all endpoints. */
export class PeerAuthVerifier {
  readonly #key: Buffer;
  readonly #nowMs: () => number;
  readonly #noncesMax: number;
  /** Nonce → when first seen (monotonic ms), in insertion order (Map keeps it). */
  readonly #seen = new Map<string, number>();
  /** Tokens stamped at or before this (epoch ms) are refused: their nonces may have been forgotten early. */
  #floorMs = Number.NEGATIVE_INFINITY;
  /** Stamps of the seen nonces, to raise the floor when one is forgotten early. */
  readonly #stampOf = new Map<string, number>();

  constructor(key: Buffer, options: { nowMs?: () => number; noncesMax?: number } = {}) {
    this.#key = key;
    this.#nowMs = options.nowMs ?? Date.now;
    this.#noncesMax = options.noncesMax ?? PEER_AUTH_NONCES_MAX;
  }

  /** The key this verifier checks against (for replyProof). */
  get key(): Buffer {
    return this.#key;
  }

  /** Checks `token` (a header value) for `purpose` in cluster `clusterId` ('' for a join). */
  verify(token: unknown, purpose: PeerAuthPurpose, clusterId: string): PeerAuthVerdict {
    if (Array.isArray(token)) token = token.length === 1 ? token[0] : undefined;
    if (typeof token !== 'string' || token.length === 0) return { ok: false, reason: 'no peer auth token' };
    if (token.length > TOKEN_CHARS_MAX) return { ok: false, reason: 'peer auth token too long' };
    const parts = token.split('.');
    if (parts.length !== 5 || parts[0] !== 'v1') return { ok: false, reason: 'malformed peer auth token' };
    const [, tsMs = '', nonce = '', sender = '', presented = ''] = parts;
    if (!/^\d{1,16}$/.test(tsMs) || !/^[0-9A-Za-z_-]{22}$/.test(nonce)) return { ok: false, reason: 'malformed peer auth token' };
    const want = mac(this.#key, purpose, clusterId, tsMs, nonce, sender);
    const got = Buffer.from(presented, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, reason: 'bad peer auth MAC (wrong cluster secret or cluster id)' };
    const stamp = Number(tsMs);
    const now = this.#nowMs();
    if (Math.abs(now - stamp) > PEER_AUTH_SKEW_MS) return { ok: false, reason: `peer auth token stamped ${Math.round((stamp - now) / 1000)} s from this node's clock` };
    if (stamp <= this.#floorMs) return { ok: false, reason: 'peer auth token too old to be checked for replay' };
    this.#forgetExpired();
    if (this.#seen.has(nonce)) return { ok: false, reason: 'peer auth token replayed' };
    this.#seen.set(nonce, performance.now());
    this.#stampOf.set(nonce, stamp);
    while (this.#seen.size > this.#noncesMax) {
      const oldest = this.#seen.keys().next().value as string;
      this.#floorMs = Math.max(this.#floorMs, this.#stampOf.get(oldest) ?? this.#floorMs);
      this.#seen.delete(oldest);
      this.#stampOf.delete(oldest);
    }
    return { ok: true, sender };
  }

  /** Drops nonces no token within the window could carry any more. */
  #forgetExpired(): void {
    const cutoff = performance.now() - 2 * PEER_AUTH_SKEW_MS;
    for (const [nonce, seenAt] of this.#seen) {
      if (seenAt > cutoff) break;
      this.#seen.delete(nonce);
      this.#stampOf.delete(nonce);
    }
  }
}
