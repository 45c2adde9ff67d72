/**
 * A deterministic world for the gossip protocol: one event queue for every node's timers and
 * every message, seeded message loss and delay, and per-node crash (drops everything) and pause
 * (SIGSTOP: its timers and incoming messages wait until it resumes; a real UDP socket buffer
 * keeps a few, which the pause delivers late, as here).
 */
import { DEFAULT_GOSSIP_TIMING, Gossip, type GossipMessage, type GossipOptions, type Member, type Timers } from '../../src/membership/gossip.ts';
import { SeededRandom } from '../../src/util/random.ts';

interface Event {
  atMs: number;
  seq: number;
  node: string | undefined;
  run: () => void;
  cancelled: boolean;
}

/** A change one node saw, with the simulated time it saw it. */
export interface Observation {
  atMs: number;
  observer: string;
  member: string;
  state: Member['state'];
  incarnation: number;
}

export class GossipWorld {
  nowMs = 0;
  readonly nodes = new Map<string, Gossip>();
  readonly observations: Observation[] = [];
  readonly #queue: Event[] = [];
  readonly #random: SeededRandom;
  readonly #crashed = new Set<string>();
  readonly #paused = new Set<string>();
  readonly #deferred = new Map<string, Event[]>();
  #seq = 0;
  /** Probability that a message is lost. */
  lossRate = 0;
  /** Message delay: uniform in [1, delayMsMax]. */
  delayMsMax = 5;
  /** Side of each node while partitioned (messages between sides are dropped); empty: healed. */
  readonly side = new Map<string, number>();

  constructor(seed: number) {
    this.#random = new SeededRandom(seed);
  }

  /** Adds a node named `address`; it syncs with `seeds` when started. */
  add(address: string, options: Partial<GossipOptions> = {}, seeds: string[] = []): Gossip {
    const timers: Timers = {
      nowMs: () => this.nowMs,
      setTimeout: (fn, ms) => this.#schedule(ms, address, fn),
      clearTimeout: (h) => {
        if (h) (h as Event).cancelled = true;
      },
    };
    const gossip = new Gossip(
      { ...DEFAULT_GOSSIP_TIMING, address, meta: { nodeId: this.nodes.size + 1, raftAddress: address, s3Url: `http://${address}` }, seed: this.#random.nextUint32(), ...options },
      { send: (to, message) => this.#send(address, to, message) },
      timers,
    );
    gossip.onChange((m) => this.observations.push({ atMs: this.nowMs, observer: address, member: m.address, state: m.state, incarnation: m.incarnation }));
    this.nodes.set(address, gossip);
    gossip.start(seeds);
    return gossip;
  }

  /** The process dies: nothing in or out, its timers never fire again. */
  crash(address: string): void {
    this.#crashed.add(address);
  }

  /** SIGSTOP: timers and incoming messages wait. */
  pause(address: string): void {
    this.#paused.add(address);
  }

  /** SIGCONT: what waited runs now, in order. */
  resume(address: string): void {
    this.#paused.delete(address);
    for (const e of this.#deferred.get(address) ?? []) {
      e.atMs = this.nowMs;
      this.#push(e);
    }
    this.#deferred.delete(address);
  }

  /** Runs events until `untilMs` (simulated). */
  runUntil(untilMs: number): void {
    for (let steps = 0; steps < 10_000_000; steps++) {
      const e = this.#pop();
      if (!e) break;
      if (e.atMs > untilMs) {
        this.#push(e);
        break;
      }
      this.nowMs = e.atMs;
      if (e.cancelled) continue;
      if (e.node && this.#crashed.has(e.node)) continue;
      if (e.node && this.#paused.has(e.node)) {
        const list = this.#deferred.get(e.node) ?? [];
        list.push(e);
        this.#deferred.set(e.node, list);
        continue;
      }
      e.run();
    }
    this.nowMs = untilMs;
  }

  /** How `observer` currently sees `member`. */
  stateOf(observer: string, member: string): Member['state'] | undefined {
    return this.nodes.get(observer)!.members().find((m) => m.address === member)?.state;
  }

  /** The first time `observer` saw `member` in `state` at or after `fromMs`. */
  firstSeen(observer: string, member: string, state: Member['state'], fromMs = 0): number | undefined {
    return this.observations.find((o) => o.observer === observer && o.member === member && o.state === state && o.atMs >= fromMs)?.atMs;
  }

  #send(from: string, to: string, message: GossipMessage): void {
    if (this.#crashed.has(from) || this.#paused.has(from)) return;
    if (this.#random.chance(this.lossRate)) return;
    if (this.side.size > 0 && this.side.get(from) !== this.side.get(to)) return;
    // Structured clone: receivers must never share objects with senders (real JSON over UDP).
    const copy = JSON.parse(JSON.stringify(message)) as GossipMessage;
    this.#schedule(1 + this.#random.intBelow(this.delayMsMax), to, () => this.nodes.get(to)?.receive(copy));
  }

  #schedule(ms: number, node: string | undefined, run: () => void): Event {
    const e: Event = { atMs: this.nowMs + Math.max(0, ms), seq: ++this.#seq, node, run, cancelled: false };
    this.#push(e);
    return e;
  }

  // A binary heap ordered by (atMs, seq): same seed, same order.
  #push(e: Event): void {
    const q = this.#queue;
    q.push(e);
    let i = q.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(q[i]!, q[p]!)) break;
      [q[i], q[p]] = [q[p]!, q[i]!];
      i = p;
    }
  }

  #pop(): Event | undefined {
    const q = this.#queue;
    if (q.length === 0) return undefined;
    const top = q[0]!;
    const last = q.pop()!;
    if (q.length > 0) {
      q[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < q.length && before(q[l]!, q[m]!)) m = l;
        if (r < q.length && before(q[r]!, q[m]!)) m = r;
        if (m === i) break;
        [q[i], q[m]] = [q[m]!, q[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}
