/**
 * SWIM-style gossip (Das, Gupta, Motivala 2002, with the Lifeguard-style refinements memberlist
 * uses): discovery and failure detection only. What a node is in the cluster (voter, learner,
 * owner of placement ranges) comes from committed Raft state, never from here; gossip tells a
 * joining node whom to ask, and operators (and the leader's promoter) who is reachable now.
 *
 * Each protocol period this node probes one member, round-robin over a shuffled list:
 *
 *   ping(seq) ──────────────► target             direct probe
 *   ◄────────────── ack(seq)                      within pingTimeoutMs: alive
 *   ping-req(seq, target) ──► k other members     otherwise ask k others to probe it
 *                     they ping target, relay its ack back as ack(seq)
 *   no ack by the end of the period: target is *suspect* (at its known incarnation)
 *   suspect for suspicionTimeoutMs without a refutation: target is *dead*
 *
 * Every message carries a few membership updates (alive / suspect / dead, each with the
 * member's incarnation), each sent about retransmitMult·log2(n+1) times. A member that hears it
 * is suspected refutes by raising its incarnation and spreading `alive`; a node paused by
 * SIGSTOP does that when it wakes. Precedence follows SWIM: a higher incarnation wins; at equal
 * incarnations dead > suspect > alive.
 *
 * Time comes from an injected `Timers` and randomness from a seeded generator, so the
 * simulator (test/sim/gossip-sim.test.ts) runs many nodes deterministically in one process.
 */
import { assert } from '../util/assert.ts';
import { SeededRandom } from '../util/random.ts';

/** How a member is seen from here. */
export type MemberState = 'alive' | 'suspect' | 'dead';

/** What a member says about itself: where its Raft and S3 endpoints are and who it is. */
export interface MemberMeta {
  /** Raft node id; 0 while a joining node has none yet. */
  nodeId: number;
  raftAddress: string;
  s3Url: string;
  /** True once this node's cluster has committed entries (a wiped founder looks for such peers). */
  formed?: boolean;
}

/** One member as this node sees it. Keyed by its gossip address (host:port). */
export interface Member {
  address: string;
  incarnation: number;
  state: MemberState;
  meta: MemberMeta;
  /** When this node last changed the member's state (Timers.nowMs()). */
  sinceMs: number;
}

/** One piggy-backed membership update. */
export interface MemberUpdate {
  address: string;
  incarnation: number;
  state: MemberState;
  meta: MemberMeta;
}

/** A gossip message. `from` is the sender's own record (always fresh). */
export type GossipMessage =
  | { type: 'ping'; seq: number; from: MemberUpdate; updates: MemberUpdate[] }
  | { type: 'ack'; seq: number; from: MemberUpdate; updates: MemberUpdate[] }
  | { type: 'ping-req'; seq: number; target: string; from: MemberUpdate; updates: MemberUpdate[] }
  /** Push-pull: the sender's whole view; the receiver merges it and answers with its own (reply=false). */
  | { type: 'sync'; reply: boolean; from: MemberUpdate; members: MemberUpdate[] };

/** Where messages go; the real one is UDP (udp-transport.ts), the simulator's is in memory. */
export interface GossipTransport {
  send(address: string, message: GossipMessage): void;
}

/** Timer source (real timers, or the simulator's). */
export interface Timers {
  nowMs(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real timers, unref'd so gossip never keeps a process alive. */
export const realTimers: Timers = {
  nowMs: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Tunables; the defaults suit a LAN cluster of 3–15 nodes. */
export interface GossipOptions {
  /** This node's gossip address (host:port) as others reach it. */
  address: string;
  meta: MemberMeta;
  /** One probe per period. */
  protocolPeriodMs: number;
  /** How long a direct ping waits for its ack before asking others. */
  pingTimeoutMs: number;
  /** How many members relay an indirect probe. */
  indirectChecks: number;
  /** How long a suspect member has to refute before it is declared dead. */
  suspicionTimeoutMs: number;
  /** Each update is sent about retransmitMult·log2(n+1) times. */
  retransmitMult: number;
  /** Updates piggy-backed on one message at most. */
  updatesPerMessageMax: number;
  /** How often this node pushes its whole view to one random member (anti-entropy), 0 = never. */
  syncIntervalMs: number;
  seed: number;
  /**
   * Incarnation to start from (0 by default). A restarted process should start above what the
   * others remember of its previous life, or its news is ignored until it is suspected and
   * refutes; the node passes seconds since the epoch.
   */
  incarnation?: number;
}

/** Defaults for GossipOptions (address and meta have none). */
export const DEFAULT_GOSSIP_TIMING = {
  protocolPeriodMs: 1_000,
  pingTimeoutMs: 400,
  indirectChecks: 3,
  suspicionTimeoutMs: 5_000,
  retransmitMult: 4,
  updatesPerMessageMax: 16,
  syncIntervalMs: 15_000,
} as const;

/**
 * How long failure detection takes at most in a cluster of `members` when messages arrive:
 * every live member has seen a stopped one as suspect within `suspectMs` and as dead within
 * `deadMs`. A member probes each other one at least once per two rounds of the shuffled order
 * (2·(n−1) periods), plus the period whose probe failed; suspicion then has its timeout, and
 * news spreads within a few periods at these sizes (log2 n rounds of piggy-backing).
 */
export function failureDetectionBounds(members: number, o: Pick<GossipOptions, 'protocolPeriodMs' | 'suspicionTimeoutMs'>): { suspectMs: number; deadMs: number } {
  const suspectMs = (2 * Math.max(1, members - 1) + 1) * o.protocolPeriodMs;
  return { suspectMs, deadMs: suspectMs + o.suspicionTimeoutMs + 3 * o.protocolPeriodMs };
}

/** Members dead this long are forgotten (they come back through sync or a seed if they live). */
export const GOSSIP_DEAD_FORGET_MS = 10 * 60_000;

/** Members at most (a bound on memory and on one sync message's size). */
export const GOSSIP_MEMBERS_MAX = 256;

/** Called when a member appears or changes state (not on mere incarnation bumps while alive). */
export type MemberListener = (member: Member, previous: MemberState | undefined) => void;

interface Broadcast {
  update: MemberUpdate;
  sendsLeft: number;
}

interface PendingProbe {
  target: string;
  /** Where to relay the ack: the requester of a ping-req, with its seq. */
  relayTo?: { address: string; seq: number };
  /** Members asked to probe the target for us (their relayed acks count). */
  relays?: Set<string>;
  done: (acked: boolean) => void;
}

const STATE_RANK: Record<MemberState, number> = { alive: 0, suspect: 1, dead: 2 };

/** A gossip participant. */
export class Gossip {
  readonly #options: GossipOptions;
  readonly #transport: GossipTransport;
  readonly #timers: Timers;
  readonly #random: SeededRandom;
  readonly #members = new Map<string, Member>();
  readonly #broadcasts = new Map<string, Broadcast>();
  readonly #pending = new Map<number, PendingProbe>();
  readonly #suspicionTimers = new Map<string, { timer: unknown; incarnation: number }>();
  readonly #listeners: MemberListener[] = [];
  #incarnation = 0;
  #meta: MemberMeta;
  /** Starts at a random point: an ack from a previous life of this process cannot match. */
  #seq: number;
  #probeOrder: string[] = [];
  #probeTimer: unknown;
  #syncTimer: unknown;
  #running = false;

  constructor(options: GossipOptions, transport: GossipTransport, timers: Timers = realTimers) {
    assert(options.pingTimeoutMs < options.protocolPeriodMs, 'a ping must time out within its period');
    assert(options.indirectChecks >= 0 && options.retransmitMult >= 1);
    this.#options = options;
    this.#transport = transport;
    this.#timers = timers;
    this.#random = new SeededRandom(options.seed);
    this.#meta = options.meta;
    this.#incarnation = options.incarnation ?? 0;
    this.#seq = this.#random.intBelow(2 ** 30);
  }

  /** Starts probing. `seeds` are gossip addresses to sync with first (others come from them). */
  start(seeds: string[] = []): void {
    assert(!this.#running, 'gossip started twice');
    this.#running = true;
    for (const seed of seeds) if (seed !== this.#options.address) this.syncWith(seed);
    this.#scheduleProbe();
    if (this.#options.syncIntervalMs > 0) this.#scheduleSync();
  }

  stop(): void {
    this.#running = false;
    this.#timers.clearTimeout(this.#probeTimer);
    this.#timers.clearTimeout(this.#syncTimer);
    for (const t of this.#suspicionTimers.values()) this.#timers.clearTimeout(t.timer);
    this.#suspicionTimers.clear();
    for (const p of this.#pending.values()) p.done(false);
    this.#pending.clear();
  }

  /** Subscribes to member changes. */
  onChange(listener: MemberListener): void {
    this.#listeners.push(listener);
  }

  /** This node's own record. */
  self(): MemberUpdate {
    return { address: this.#options.address, incarnation: this.#incarnation, state: 'alive', meta: this.#meta };
  }

  /** Changes what this node says about itself (e.g. the node id a join assigned) and spreads it. */
  setMeta(meta: MemberMeta): void {
    this.#meta = meta;
    this.#incarnation++;
    this.#enqueue(this.self());
  }

  /** Every other member known, in address order. */
  members(): Member[] {
    return [...this.#members.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  }

  /** Members other than this node whose state is alive. */
  alive(): Member[] {
    return this.members().filter((m) => m.state === 'alive');
  }

  /** Sends this node's whole view to `address`, which answers with its own. */
  syncWith(address: string): void {
    this.#transport.send(address, { type: 'sync', reply: true, from: this.self(), members: this.#view() });
  }

  /** Feeds one received message in (the transport calls this; authentication happened there). */
  receive(message: GossipMessage): void {
    if (!this.#running) return;
    if (message.from.address === this.#options.address) return;
    // A member we hold suspect or dead at its current incarnation speaks: make sure our answer
    // tells it, so it refutes (a node resumed after SIGSTOP may have missed the news).
    const known = this.#members.get(message.from.address);
    if (known && known.state !== 'alive' && known.incarnation >= message.from.incarnation) {
      this.#enqueue({ address: known.address, incarnation: known.incarnation, state: known.state, meta: known.meta });
    }
    // Otherwise whoever speaks to us is alive at the incarnation it states.
    this.#apply(message.from);
    switch (message.type) {
      case 'ping':
        this.#applyAll(message.updates);
        this.#transport.send(message.from.address, { type: 'ack', seq: message.seq, from: this.self(), updates: this.#takeUpdates() });
        return;
      case 'ack': {
        this.#applyAll(message.updates);
        const pending = this.#pending.get(message.seq);
        // Only the target itself, or a member asked to probe it, may answer a probe.
        if (!pending || (message.from.address !== pending.target && !pending.relays?.has(message.from.address))) return;
        this.#pending.delete(message.seq);
        if (pending.relayTo) {
          this.#transport.send(pending.relayTo.address, { type: 'ack', seq: pending.relayTo.seq, from: this.self(), updates: this.#takeUpdates() });
        }
        pending.done(true);
        return;
      }
      case 'ping-req': {
        this.#applyAll(message.updates);
        const seq = ++this.#seq;
        const relayTo = { address: message.from.address, seq: message.seq };
        this.#pending.set(seq, { target: message.target, relayTo, done: () => undefined });
        // A relay that hears nothing just forgets; the requester's own deadline decides.
        this.#timers.setTimeout(() => this.#pending.delete(seq), this.#options.protocolPeriodMs);
        if (!this.#running) return;
        this.#transport.send(message.target, { type: 'ping', seq, from: this.self(), updates: this.#takeUpdates() });
        return;
      }
      case 'sync':
        this.#applyAll(message.members);
        if (message.reply) this.#transport.send(message.from.address, { type: 'sync', reply: false, from: this.self(), members: this.#view() });
        return;
      default: {
        const never: never = message;
        throw new TypeError(`unknown gossip message ${JSON.stringify(never)}`);
      }
    }
  }

  #view(): MemberUpdate[] {
    return this.members().map(({ address, incarnation, state, meta }) => ({ address, incarnation, state, meta }));
  }

  #applyAll(updates: MemberUpdate[]): void {
    for (const u of updates) this.#apply(u);
  }

  /** Merges one update by SWIM's precedence; spreads it further when it changed something. */
  #apply(u: MemberUpdate): void {
    if (u.address === this.#options.address) {
      // Someone thinks we are suspect or dead: refute with a higher incarnation.
      if (u.state !== 'alive' && u.incarnation >= this.#incarnation) {
        this.#incarnation = u.incarnation + 1;
        this.#enqueue(this.self());
      }
      return;
    }
    const known = this.#members.get(u.address);
    if (known) {
      const newer = u.incarnation > known.incarnation || (u.incarnation === known.incarnation && STATE_RANK[u.state] > STATE_RANK[known.state]);
      if (!newer) return;
    } else if (this.#members.size >= GOSSIP_MEMBERS_MAX) {
      return;
    }
    const previous = known?.state;
    const member: Member = { ...u, sinceMs: previous === u.state && known ? known.sinceMs : this.#timers.nowMs() };
    this.#members.set(u.address, member);
    this.#enqueue(u);
    if (u.state === 'suspect') this.#armSuspicion(u.address, u.incarnation);
    else this.#disarmSuspicion(u.address);
    if (previous !== u.state || JSON.stringify(known?.meta) !== JSON.stringify(u.meta)) for (const l of this.#listeners) l(member, previous);
  }

  #armSuspicion(address: string, incarnation: number): void {
    // One timer per suspicion: a suspicion at a newer incarnation starts its own.
    if (this.#suspicionTimers.get(address)?.incarnation === incarnation) return;
    this.#disarmSuspicion(address);
    const timer = this.#timers.setTimeout(() => {
      this.#suspicionTimers.delete(address);
      const m = this.#members.get(address);
      // Still suspect at the same incarnation: no refutation arrived in time.
      if (m && m.state === 'suspect' && m.incarnation === incarnation) this.#apply({ address, incarnation, state: 'dead', meta: m.meta });
    }, this.#options.suspicionTimeoutMs);
    this.#suspicionTimers.set(address, { timer, incarnation });
  }

  #disarmSuspicion(address: string): void {
    const t = this.#suspicionTimers.get(address);
    if (t === undefined) return;
    this.#timers.clearTimeout(t.timer);
    this.#suspicionTimers.delete(address);
  }

  #enqueue(update: MemberUpdate): void {
    const n = this.#members.size + 1;
    const sends = Math.max(1, Math.ceil(this.#options.retransmitMult * Math.log2(n + 1)));
    this.#broadcasts.set(update.address, { update, sendsLeft: sends });
  }

  /** Up to updatesPerMessageMax queued updates, those sent least so far first. */
  #takeUpdates(): MemberUpdate[] {
    if (this.#broadcasts.size === 0) return [];
    const queue = [...this.#broadcasts.values()].sort((a, b) => b.sendsLeft - a.sendsLeft).slice(0, this.#options.updatesPerMessageMax);
    for (const b of queue) {
      b.sendsLeft--;
      if (b.sendsLeft <= 0) this.#broadcasts.delete(b.update.address);
    }
    return queue.map((b) => b.update);
  }

  #scheduleProbe(): void {
    if (!this.#running) return;
    this.#probeTimer = this.#timers.setTimeout(() => {
      this.#probe();
      this.#scheduleProbe();
    }, this.#options.protocolPeriodMs);
  }

  #forgetLongDead(): void {
    const now = this.#timers.nowMs();
    for (const m of this.#members.values()) {
      if (m.state === 'dead' && now - m.sinceMs > GOSSIP_DEAD_FORGET_MS) {
        this.#members.delete(m.address);
        this.#broadcasts.delete(m.address);
      }
    }
  }

  #scheduleSync(): void {
    if (!this.#running) return;
    this.#syncTimer = this.#timers.setTimeout(() => {
      // Dead members too: after a partition longer than failure detection, neither side probes
      // the other, and only this sync lets them find each other again (memberlist's "gossip to
      // the dead"). Members dead for long are forgotten here as well.
      this.#forgetLongDead();
      const others = this.members();
      if (others.length > 0) this.syncWith(others[this.#random.intBelow(others.length)]!.address);
      this.#scheduleSync();
    }, this.#options.syncIntervalMs);
  }

  /** The next member to probe: round-robin over a list shuffled once per round (SWIM §4.3). */
  #nextTarget(): Member | undefined {
    for (let tries = 0; tries < 2; tries++) {
      while (this.#probeOrder.length > 0) {
        const m = this.#members.get(this.#probeOrder.shift()!);
        if (m && m.state !== 'dead') return m;
      }
      const order = this.members().filter((m) => m.state !== 'dead').map((m) => m.address);
      for (let i = order.length - 1; i > 0; i--) {
        const j = this.#random.intBelow(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      this.#probeOrder = order;
    }
    return undefined;
  }

  #probe(): void {
    const target = this.#nextTarget();
    if (!target) return;
    const seq = ++this.#seq;
    const periodEnd = this.#options.protocolPeriodMs - 1;
    let acked = false;
    let indirectTimer: unknown;
    let deadlineTimer: unknown;
    const done = (ok: boolean) => {
      if (!ok || acked) return;
      acked = true;
      this.#timers.clearTimeout(indirectTimer);
      this.#timers.clearTimeout(deadlineTimer);
    };
    const relays = new Set<string>();
    this.#pending.set(seq, { target: target.address, done, relays });
    this.#transport.send(target.address, { type: 'ping', seq, from: this.self(), updates: this.#takeUpdates() });
    indirectTimer = this.#timers.setTimeout(() => {
      if (acked || !this.#running) return;
      const helpers = this.members().filter((m) => m.state === 'alive' && m.address !== target.address);
      for (let i = 0; i < this.#options.indirectChecks && helpers.length > 0; i++) {
        const [helper] = helpers.splice(this.#random.intBelow(helpers.length), 1);
        relays.add(helper!.address);
        this.#transport.send(helper!.address, { type: 'ping-req', seq, target: target.address, from: this.self(), updates: this.#takeUpdates() });
      }
    }, this.#options.pingTimeoutMs);
    deadlineTimer = this.#timers.setTimeout(() => {
      this.#pending.delete(seq);
      if (acked || !this.#running) return;
      const m = this.#members.get(target.address);
      if (m && m.state === 'alive') this.#apply({ address: m.address, incarnation: m.incarnation, state: 'suspect', meta: m.meta });
    }, periodEnd);
  }
}
