/**
 * Deterministic simulation of a Raft cluster (TigerBeetle VOPR / FoundationDB style).
 *
 * N RawNodes run in one process. Everything random — message delays, drops, duplicates, partitions,
 * crashes, clock drift, the client workload and every node's election timeouts — is drawn from
 * PRNGs derived from one seed, so `runSimulation({seed})` replays exactly.
 *
 *   clients ──put/get──▶ node (propose / readIndex) ──Ready──▶ SimDisk (durable | unsynced)
 *                                                      │
 *                                                      ├─▶ SimNetwork (delay, drop, dup, reorder, partition)
 *                                                      └─▶ KV state machine (dedup by client request id)
 *
 * Time is an integer in abstract units. Each node ticks every ~TICK_UNITS units (with a per-node
 * drift); messages take 1..maxDelay units. A crash throws away the node's memory and its disk's
 * unsynced writes; a restart rebuilds the node from the durable part only.
 *
 * Checkers (throw SimulationError with the seed):
 *   - election safety: at most one leader per term;
 *   - log matching: two logs with the same (index, term) agree on every earlier entry;
 *   - leader completeness: a new leader's log holds every entry any node has applied;
 *   - state machine safety: nodes apply the same entry at each index, and KV digests are equal at
 *     equal applied indexes;
 *   - linearizability of the client history, per key (test/sim/raft-linearizability.ts);
 *   - liveness at the end: after healing everything, all nodes converge to one applied state.
 */
import {
  ConfChangeType,
  decodeConfChange,
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  MessageType,
  type NodeId,
  RawNode,
  ReadOnlyOption,
  type Ready,
  StateType,
} from '../../src/raft/index.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { checkHistory, type LinearizabilityResult, type RegisterOp } from './raft-linearizability.ts';

/** Abstract time units per node tick (nominal). */
const TICK_UNITS = 10;
/** A client gives up on an operation after this many units. */
const CLIENT_TIMEOUT_UNITS = 400;
/** Take a state machine snapshot every this many applied entries. */
const SNAPSHOT_EVERY_ENTRIES = 25;
/** Entries kept in the log behind a snapshot (so slow followers can often avoid a snapshot). */
const SNAPSHOT_KEEP_ENTRIES = 5;
/** Keys of the KV workload: few keys so operations contend. */
const KEYS = ['a', 'b', 'c'] as const;

/** Options of one simulation run. */
export interface SimOptions {
  seed: number;
  /** Number of time units to run with faults (the final quiet period is extra). */
  steps?: number;
  /** Override the node count (default: 3 or 5 chosen by the seed). */
  nodes?: number;
  /** Print a line per notable event. */
  verbose?: boolean;
}

/** Summary of a run. */
export interface SimResult {
  seed: number;
  nodes: number;
  steps: number;
  config: { preVote: boolean; checkQuorum: boolean; leaseReads: boolean; failureDetector: boolean; dropP: number; dupP: number; maxDelay: number };
  leadersElected: number;
  /** Times a follower forgot its leader on a (true or false) suspicion of the failure detector. */
  leadersForgotten: number;
  maxTerm: number;
  appliedIndex: number;
  opsInvoked: number;
  opsOk: number;
  opsIndeterminate: number;
  readsOk: number;
  crashes: number;
  partitions: number;
  /** Conf changes committed and applied (membership churn). */
  confChanges: number;
  /** Final configuration. */
  finalConfig: string;
  snapshotsSent: number;
  messagesSent: number;
  linearizability: LinearizabilityResult;
}

/** A checker failure; the message always names the seed. */
export class SimulationError extends Error {
  override name = 'SimulationError';
}

// ------------------------------------------------------------------ KV state machine

interface KvCommand {
  c: number; // client id
  r: number; // request id (per client, increasing)
  k: string;
  v: string;
}

/** The replicated state machine: a KV map plus the per-client dedup table. */
class KvStateMachine {
  data = new Map<string, string>();
  lastReq = new Map<number, number>();
  applied = 0;

  /** Applies a command; returns false when it is a duplicate (already applied). */
  apply(cmd: KvCommand): boolean {
    const last = this.lastReq.get(cmd.c) ?? 0;
    if (cmd.r <= last) return false;
    this.lastReq.set(cmd.c, cmd.r);
    this.data.set(cmd.k, cmd.v);
    return true;
  }

  digest(): string {
    const kv = [...this.data.entries()].sort(([a], [b]) => a.localeCompare(b));
    const dd = [...this.lastReq.entries()].sort(([a], [b]) => a - b);
    return JSON.stringify([kv, dd]);
  }

  encode(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ a: this.applied, kv: [...this.data], dd: [...this.lastReq] }));
  }

  static decode(b: Uint8Array): KvStateMachine {
    const sm = new KvStateMachine();
    if (b.byteLength === 0) return sm;
    const o = JSON.parse(new TextDecoder().decode(b)) as { a: number; kv: [string, string][]; dd: [number, number][] };
    sm.applied = o.a;
    sm.data = new Map(o.kv);
    sm.lastReq = new Map(o.dd);
    return sm;
  }
}

// ------------------------------------------------------------------ disk

/**
 * A node's disk: `current` is what the process sees (and what RawNode reads); `durable` is what
 * survives a crash. sync() makes current durable; crash() discards unsynced writes.
 */
class SimDisk {
  durable: MemoryStorage;
  current: MemoryStorage;

  constructor(initial: MemoryStorage) {
    this.durable = initial;
    this.current = initial.clone();
  }

  sync(): void {
    this.durable = this.current.clone();
  }

  crash(): void {
    this.current = this.durable.clone();
  }
}

// ------------------------------------------------------------------ network

interface InFlight {
  deliverAt: number;
  seq: number;
  m: Message;
}

/** The network: per-message delay (so reordering), drops, duplicates and partitions. */
class SimNetwork {
  #queue: InFlight[] = [];
  #seq = 0;
  /** Partition: node -> group number; messages only flow within a group. Empty = healed. */
  groups = new Map<NodeId, number>();
  sent = 0;

  readonly rng: SeededRandom;
  readonly dropP: number;
  readonly dupP: number;
  readonly maxDelay: number;

  constructor(rng: SeededRandom, dropP: number, dupP: number, maxDelay: number) {
    this.rng = rng;
    this.dropP = dropP;
    this.dupP = dupP;
    this.maxDelay = maxDelay;
  }

  connected(a: NodeId, b: NodeId): boolean {
    if (this.groups.size === 0) return true;
    return this.groups.get(a) === this.groups.get(b);
  }

  /** Queues `m` (maybe twice); returns false when the network dropped it at once. */
  send(now: number, m: Message): boolean {
    this.sent++;
    if (this.rng.chance(this.dropP)) return false;
    const copies = this.rng.chance(this.dupP) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.#queue.push({ deliverAt: now + 1 + this.rng.intBelow(this.maxDelay), seq: this.#seq++, m });
    }
    return true;
  }

  /**
   * Removes messages due at or before `now`, in (time, seq) order. Partitions are checked at
   * delivery time: a message in flight when the link is cut is lost (returned in `lost`).
   */
  due(now: number): { delivered: Message[]; lost: Message[] } {
    const ready = this.#queue.filter((f) => f.deliverAt <= now);
    if (ready.length === 0) return { delivered: [], lost: [] };
    this.#queue = this.#queue.filter((f) => f.deliverAt > now);
    ready.sort((a, b) => a.deliverAt - b.deliverAt || a.seq - b.seq);
    const delivered: Message[] = [];
    const lost: Message[] = [];
    for (const f of ready) (this.connected(f.m.from, f.m.to) ? delivered : lost).push(f.m);
    return { delivered, lost };
  }

  pending(): number {
    return this.#queue.length;
  }
}

// ------------------------------------------------------------------ nodes and clients

interface SimNode {
  id: NodeId;
  /** Removed from the configuration (by an applied RemoveNode): stopped for good, never reused. */
  retired: boolean;
  disk: SimDisk;
  raw: RawNode | undefined; // undefined while crashed
  sm: KvStateMachine;
  tickEvery: number;
  nextTickAt: number;
  restarts: number;
  restartAt: number;
  /** Client puts waiting for their entry to be applied here: "c:r" -> op. */
  waitingPuts: Map<string, ClientOp>;
  /** Client gets waiting for a ReadState: ctx -> op. */
  waitingReads: Map<string, ClientOp>;
  /** Gets with a read index, waiting for applied >= index. */
  readyReads: Array<{ op: ClientOp; index: number }>;
  /**
   * A leader's Ready whose messages went out before its write, the write still running (as in
   * the real host): the node keeps stepping messages meanwhile; a crash before `doneAt` loses it.
   */
  writing?: { rd: Ready; doneAt: number };
}

interface ClientOp {
  op: RegisterOp;
  client: number;
  node: NodeId;
  done: boolean;
}

interface Client {
  id: number;
  nextReq: number;
  current: ClientOp | undefined;
  idleUntil: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs one seeded simulation; throws SimulationError on a checker failure. */
export function runSimulation(opts: SimOptions): SimResult {
  const sim = new Simulation(opts);
  return sim.run();
}

class Simulation {
  readonly seed: number;
  readonly steps: number;
  readonly rng: SeededRandom;
  readonly n: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Lease-based ReadIndex (with check-quorum); drift allowance 3 ticks covers the 9..11 tick spread. */
  readonly leaseReads: boolean;
  /**
   * The host's crash detector (a refused reconnect): after a crash, the survivors hear of it a few
   * steps later, forget the dead leader and campaign, as RaftConsensus does; now and then a
   * running leader is wrongly suspected. Timing hints only: no checker may notice them.
   */
  readonly failureDetector: boolean;
  /** Suspicions on their way to nodes: at `at`, `node` hears that `suspect` is down. */
  readonly suspicions: { at: number; node: NodeId; suspect: NodeId; campaign: boolean }[] = [];
  readonly net: SimNetwork;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly clients: Client[] = [];
  readonly history: ClientOp[] = [];
  readonly verbose: boolean;
  now = 0;
  faultsOn = true;
  /** Membership churn (add learner, promote, remove) enabled for this seed. */
  readonly churn: boolean;
  nextNodeId: number;

  // checker state
  readonly leaderOfTerm = new Map<number, NodeId>();
  /** index -> "term:type:data" of the entry applied at that index by any node. */
  readonly appliedEntries = new Map<number, string>();
  /** index -> KV digest after applying that index. */
  readonly digests = new Map<number, string>();
  readonly lastLeaderTerm = new Map<NodeId, number>();
  stats = { crashes: 0, partitions: 0, snapshotsSent: 0, readsOk: 0, leadersElected: 0, confChanges: 0, leadersForgotten: 0 };

  constructor(opts: SimOptions) {
    this.seed = opts.seed;
    this.steps = opts.steps ?? 5000;
    this.verbose = opts.verbose ?? false;
    this.rng = new SeededRandom(opts.seed);
    this.n = opts.nodes ?? (this.rng.chance(0.5) ? 3 : 5);
    this.preVote = this.rng.chance(0.7);
    this.checkQuorum = this.rng.chance(0.7);
    this.leaseReads = this.checkQuorum && this.rng.chance(0.5);
    this.failureDetector = this.rng.chance(0.5);
    const dropP = this.rng.chance(0.3) ? 0 : this.rng.float() * 0.15;
    const dupP = this.rng.float() * 0.05;
    const maxDelay = 1 + this.rng.intBelow(30);
    this.net = new SimNetwork(this.rng.fork(), dropP, dupP, maxDelay);
    const voters = Array.from({ length: this.n }, (_, i) => i + 1);
    this.churn = this.rng.chance(0.5);
    this.nextNodeId = this.n + 1;
    for (const id of voters) this.#addNode(id, MemoryStorage.bootstrap({ voters, learners: [] }));
    const clientCount = 3 + this.rng.intBelow(6);
    for (let c = 1; c <= clientCount; c++) this.clients.push({ id: c, nextReq: 1, current: undefined, idleUntil: 0 });
  }

  #addNode(id: NodeId, storage: MemoryStorage): SimNode {
      const node: SimNode = {
        id,
        retired: false,
        disk: new SimDisk(storage),
        raw: undefined,
        sm: new KvStateMachine(),
        tickEvery: TICK_UNITS - 1 + this.rng.intBelow(3), // clock drift: 9..11 units per tick
        nextTickAt: this.rng.intBelow(TICK_UNITS),
        restarts: 0,
        restartAt: 0,
        waitingPuts: new Map(),
        waitingReads: new Map(),
        readyReads: [],
      };
      this.nodes.set(id, node);
      this.#start(node);
      return node;
  }

  fail(msg: string): never {
    throw new SimulationError(`seed ${this.seed} (t=${this.now}): ${msg}\n  replay: npm run sim -- --seed ${this.seed} --steps ${this.steps}`);
  }

  log(msg: string): void {
    if (this.verbose) console.log(`[t=${this.now}] ${msg}`);
  }

  #start(node: SimNode): void {
    const storage = node.disk.current;
    const snap = storage.snapshot();
    node.sm = KvStateMachine.decode(snap.data);
    node.sm.applied = snap.metadata.index;
    node.raw = new RawNode(
      {
        id: node.id,
        electionTimeoutTicks: 10,
        heartbeatTimeoutTicks: 1,
        maxSizePerMsgBytes: 4096,
        maxInflightMsgs: 8,
        maxUncommittedEntriesSizeBytes: 1024,
        checkQuorum: this.checkQuorum,
        preVote: this.preVote,
        ...(this.leaseReads ? { readOnlyOption: ReadOnlyOption.LeaseBased, leaseDriftTicks: 3 } : {}),
        appliedIndex: snap.metadata.index,
        random: new SeededRandom(this.seed * 1000 + node.id * 17 + node.restarts),
      },
      storage,
    );
    node.waitingPuts = new Map();
    node.waitingReads = new Map();
    node.readyReads = [];
  }

  run(): SimResult {
    const total = this.steps;
    for (this.now = 0; this.now < total; this.now++) {
      if (this.faultsOn) this.#injectFaults();
      this.#stepOnce();
    }
    // Quiet period: heal, restart everyone, no new faults, and require convergence.
    this.faultsOn = false;
    this.net.groups.clear();
    for (const node of this.nodes.values()) if (node.raw === undefined && !node.retired) this.#restart(node);
    const quietEnd = this.now + 3000;
    for (; this.now < quietEnd; this.now++) {
      this.#stepOnce();
      if (this.now % 100 === 0 && this.#converged()) break;
    }
    this.#checkLogMatching();
    if (!this.#converged()) {
      for (const n of this.nodes.values()) {
        if (n.raw?.status().softState.raftState === StateType.Leader) {
          console.error('leader progress', n.id, n.raw.status().progress, 'first', n.raw.raft.log.firstIndex(), 'pending net', this.net.pending());
        }
      }
      const states = [...this.nodes.values()].map((n) => `${n.id}:applied=${n.sm.applied},${JSON.stringify(n.raw?.status().softState)},last=${n.raw?.status().lastIndex},commit=${n.raw?.status().hardState.commit}`);
      this.fail(`cluster did not converge after healing: ${states.join(' ')}`);
    }
    // Close the history: ops still pending are indeterminate (puts) or dropped (gets).
    for (const c of this.clients) if (c.current !== undefined) this.#timeout(c.current);
    const ops = this.history.filter((h) => !(h.op.kind === 'get' && h.op.completeTime === Number.POSITIVE_INFINITY)).map((h) => h.op);
    const lin = checkHistory(ops);
    if (lin.ok === false) this.fail(`history not linearizable: ${lin.reason}`);
    let maxTerm = 0;
    for (const t of this.leaderOfTerm.keys()) maxTerm = Math.max(maxTerm, t);
    const appliedMax = Math.max(...[...this.nodes.values()].map((n) => n.sm.applied));
    return {
      seed: this.seed,
      nodes: this.n,
      steps: this.steps,
      config: {
        preVote: this.preVote,
        checkQuorum: this.checkQuorum,
        leaseReads: this.leaseReads,
        failureDetector: this.failureDetector,
        dropP: this.net.dropP,
        dupP: this.net.dupP,
        maxDelay: this.net.maxDelay,
      },
      leadersElected: this.stats.leadersElected,
      leadersForgotten: this.stats.leadersForgotten,
      maxTerm,
      appliedIndex: appliedMax,
      opsInvoked: this.history.length,
      opsOk: this.history.filter((h) => h.op.completeTime !== Number.POSITIVE_INFINITY).length,
      opsIndeterminate: this.history.filter((h) => h.op.kind === 'put' && h.op.completeTime === Number.POSITIVE_INFINITY).length,
      readsOk: this.stats.readsOk,
      crashes: this.stats.crashes,
      partitions: this.stats.partitions,
      confChanges: this.stats.confChanges,
      finalConfig: JSON.stringify(this.#leaderStatus()?.confState ?? null),
      snapshotsSent: this.stats.snapshotsSent,
      messagesSent: this.net.sent,
      linearizability: lin,
    };
  }

  #leaderStatus() {
    return [...this.nodes.values()].find((n) => n.raw?.status().softState.raftState === StateType.Leader)?.raw?.status();
  }

  #converged(): boolean {
    const running = [...this.nodes.values()].filter((n) => n.raw !== undefined);
    const leaders = running.filter((n) => n.raw?.status().softState.raftState === StateType.Leader);
    if (leaders.length !== 1) return false;
    const leader = leaders[0]?.raw?.status();
    if (leader === undefined) return false;
    // Members of the final configuration must all be up and identical; nodes outside it (retired,
    // or added by a conf change that was dropped) do not count.
    const members = new Set([...leader.confState.voters, ...leader.confState.learners]);
    const nodes = [...this.nodes.values()].filter((n) => members.has(n.id));
    if (nodes.length !== members.size || nodes.some((n) => n.raw === undefined)) return false;
    const lastIndex = leader.lastIndex;
    const applied = new Set(nodes.map((n) => n.sm.applied));
    const digests = new Set(nodes.map((n) => n.sm.digest()));
    return applied.size === 1 && digests.size === 1 && nodes[0]?.sm.applied === lastIndex && this.#noPendingClient();
  }

  #noPendingClient(): boolean {
    return this.clients.every((c) => c.current === undefined);
  }

  // ---------------------------------------------------------------- faults

  #injectFaults(): void {
    const r = this.rng;
    if (this.churn && r.chance(0.004)) this.#membershipChange();
    // Crash a running node now and then; restart crashed nodes after a while.
    if (r.chance(0.0015)) {
      const up = [...this.nodes.values()].filter((n) => n.raw !== undefined);
      const victim = up[r.intBelow(Math.max(up.length, 1))];
      if (victim !== undefined && up.length > 0) this.#crash(victim);
    }
    for (const node of this.nodes.values()) {
      if (node.raw === undefined && !node.retired && this.now >= node.restartAt) this.#restart(node);
    }
    // A live leader wrongly suspected by one of its followers (the detector is only a hint).
    if (this.failureDetector && r.chance(0.002)) {
      const leader = [...this.nodes.values()].find((n) => n.raw?.status().softState.raftState === StateType.Leader);
      const up = [...this.nodes.values()].filter((n) => n.raw !== undefined && n !== leader);
      const node = up[r.intBelow(Math.max(up.length, 1))];
      if (leader !== undefined && node !== undefined) this.suspicions.push({ at: this.now + r.intBelow(5), node: node.id, suspect: leader.id, campaign: r.chance(0.3) });
    }
    // Partitions: start one with small probability, heal with larger probability.
    if (this.net.groups.size === 0) {
      if (r.chance(0.002)) {
        this.stats.partitions++;
        for (const id of this.nodes.keys()) this.net.groups.set(id, r.intBelow(2));
        this.log(`partition ${JSON.stringify([...this.net.groups])}`);
      }
    } else if (r.chance(0.004)) {
      this.net.groups.clear();
      this.log('heal');
    }
  }

  /** An operator asks the current leader for one single-server change. */
  #membershipChange(): void {
    const leader = [...this.nodes.values()].find((n) => n.raw?.status().softState.raftState === StateType.Leader);
    const raw = leader?.raw;
    if (raw === undefined) return;
    const cs = raw.status().confState;
    const options: Array<() => void> = [];
    const propose = (type: ConfChangeType, nodeId: NodeId) => () => {
      try {
        raw.proposeConfChange({ type, nodeId, context: new Uint8Array(0) });
        this.log(`propose ${type} ${nodeId}`);
      } catch (err) {
        if ((err as { code?: string }).code !== 'RAFT_PROPOSAL_DROPPED') throw err;
      }
    };
    const [learner] = cs.learners;
    if (learner !== undefined) options.push(propose(ConfChangeType.AddNode, learner));
    if (cs.voters.length + cs.learners.length < 6) {
      options.push(() => {
        // A new node starts with an empty log and is caught up by a snapshot.
        const id = this.nextNodeId++;
        this.#addNode(id, new MemoryStorage());
        propose(ConfChangeType.AddLearnerNode, id)();
      });
    }
    if (cs.voters.length > 3) {
      const victim = cs.voters[this.rng.intBelow(cs.voters.length)];
      if (victim !== undefined) options.push(propose(ConfChangeType.RemoveNode, victim));
    }
    if (learner !== undefined && this.rng.chance(0.3)) options.push(propose(ConfChangeType.RemoveNode, learner));
    options[this.rng.intBelow(options.length)]?.();
  }

  /** Delivers due suspicions: forget the suspected leader, and campaign (or not) as the host may. */
  #suspect(): void {
    if (this.suspicions.length === 0) return;
    const due = this.suspicions.filter((h) => h.at <= this.now);
    if (due.length === 0) return;
    this.suspicions.splice(0, this.suspicions.length, ...this.suspicions.filter((h) => h.at > this.now));
    for (const h of due) {
      const raw = this.nodes.get(h.node)?.raw;
      if (raw === undefined || raw.lead !== h.suspect) continue;
      if (!raw.forgetLeader()) continue;
      this.stats.leadersForgotten++;
      this.log(`${h.node} forgets leader ${h.suspect}${h.campaign ? ' and campaigns' : ''}`);
      if (h.campaign) raw.campaign();
    }
  }

  #crash(node: SimNode): void {
    this.stats.crashes++;
    this.log(`crash ${node.id}`);
    node.raw = undefined;
    node.writing = undefined;
    node.disk.crash();
    node.restartAt = this.now + 50 + this.rng.intBelow(800);
    if (this.failureDetector) {
      for (const other of this.nodes.values()) {
        if (other === node || other.raw === undefined) continue;
        this.suspicions.push({ at: this.now + 1 + this.rng.intBelow(10), node: other.id, suspect: node.id, campaign: this.rng.chance(0.6) });
      }
    }
    node.waitingPuts.clear();
    node.waitingReads.clear();
    node.readyReads = [];
  }

  #restart(node: SimNode): void {
    node.restarts++;
    this.log(`restart ${node.id}`);
    this.#start(node);
  }

  // ---------------------------------------------------------------- main step

  #stepOnce(): void {
    // 1. Network delivery.
    const { delivered, lost } = this.net.due(this.now);
    for (const m of delivered) {
      const to = this.nodes.get(m.to);
      const ok = to?.raw !== undefined;
      // The host's snapshot streamer learns whether the transfer finished and reports it.
      if (m.type === MessageType.Snap) this.nodes.get(m.from)?.raw?.reportSnapshot(m.to, ok);
      if (to?.raw === undefined) continue;
      to.raw.step(m);
    }
    for (const m of lost) {
      if (m.type === MessageType.Snap) this.nodes.get(m.from)?.raw?.reportSnapshot(m.to, false);
    }
    // 2. Clocks.
    for (const node of this.nodes.values()) {
      if (node.raw === undefined) continue;
      if (this.now >= node.nextTickAt) {
        node.raw.tick();
        node.nextTickAt = this.now + node.tickEvery;
      }
    }
    // 2b. The failure detector's suspicions.
    this.#suspect();
    // 3. Clients.
    this.#clients();
    // 4. Ready handling per the contract.
    for (const node of this.nodes.values()) {
      if (node.writing !== undefined) {
        if (this.now < node.writing.doneAt) continue;
        const { rd } = node.writing;
        node.writing = undefined;
        // The write window is where a leader that counted unpersisted entries would lose commits.
        if (this.faultsOn && this.rng.chance(0.01)) {
          this.#crash(node);
          continue;
        }
        this.#handleReady(node, rd, true);
      }
      let guard = 0;
      while (node.raw?.hasReady() && node.writing === undefined) {
        const rd = node.raw.ready();
        if (rd.sendBeforePersist && rd.entries.length > 0 && this.rng.chance(0.5)) {
          this.#send(node.raw, rd);
          node.writing = { rd, doneAt: this.now + 1 + this.rng.intBelow(this.net.maxDelay * 2) };
          break;
        }
        this.#handleReady(node, rd, false);
        if (++guard > 100) this.fail(`node ${node.id} produced Ready forever`);
      }
    }
    // 5. Checkers that look at all nodes.
    this.#checkElectionSafety();
    if (this.now % 250 === 0) this.#checkLogMatching();
  }

  #handleReady(node: SimNode, rd: Ready, alreadySent: boolean): void {
    const raw = node.raw;
    if (raw === undefined) return;
    const disk = node.disk;
    // Crash in the middle of persisting, before anything was sent: the Ready is lost, unsynced
    // writes are lost. This is the window the ordering contract protects.
    const crashMidWrite = this.faultsOn && this.rng.chance(0.0005);
    // A leader may send first and persist while the followers do (thesis §10.2.1); a crash in
    // its write then loses entries that followers already hold.
    const sendFirst = rd.sendBeforePersist && !alreadySent;
    if (sendFirst) this.#send(raw, rd);
    // 1. Persist.
    if (rd.snapshot !== undefined) disk.current.applySnapshot(rd.snapshot);
    disk.current.append(rd.entries);
    if (rd.hardState !== undefined) disk.current.setHardState(rd.hardState);
    if (crashMidWrite) {
      this.#crash(node);
      return;
    }
    // A commit-only HardState change need not be synced; leave it unsynced sometimes so a crash
    // can lose it.
    if (rd.mustSync || this.rng.chance(0.5)) disk.sync();
    // 2. Send (unless already sent).
    if (!rd.sendBeforePersist) this.#send(raw, rd);
    // 3. Apply.
    if (rd.snapshot !== undefined) {
      const meta = rd.snapshot.metadata;
      node.sm = KvStateMachine.decode(rd.snapshot.data);
      node.sm.applied = meta.index;
      this.#recordDigest(node, meta.index);
      this.log(`node ${node.id} installed snapshot @${meta.index}`);
    }
    for (const e of rd.committedEntries) this.#apply(node, e);
    for (const rs of rd.readStates) {
      const ctx = dec.decode(rs.requestCtx);
      const op = node.waitingReads.get(ctx);
      if (op === undefined) continue;
      node.waitingReads.delete(ctx);
      node.readyReads.push({ op, index: rs.index });
    }
    this.#serveReads(node);
    const st = rd.softState;
    if (st !== undefined && st.raftState === StateType.Leader) this.#onNewLeader(node);
    // 4. Advance.
    raw.advance(rd);
    if (node.retired) {
      this.#crash(node);
      return;
    }
    this.#maybeSnapshot(node);
  }

  #send(raw: RawNode, rd: Ready): void {
    for (const m of rd.messages) {
      if (m.type === MessageType.Snap) this.stats.snapshotsSent++;
      const queued = this.net.send(this.now, m);
      if (!queued && m.type === MessageType.Snap) raw.reportSnapshot(m.to, false);
    }
  }

  #apply(node: SimNode, e: Entry): void {
    if (e.index <= node.sm.applied) this.fail(`node ${node.id} re-applies ${e.index} (applied ${node.sm.applied})`);
    if (e.index !== node.sm.applied + 1) this.fail(`node ${node.id} applies ${e.index} after ${node.sm.applied}: gap`);
    const fingerprint = `${e.term}:${e.type}:${dec.decode(e.data)}`;
    const prev = this.appliedEntries.get(e.index);
    if (prev !== undefined && prev !== fingerprint) {
      this.fail(`state machine safety: index ${e.index} applied as ${prev} and as ${fingerprint} (node ${node.id})`);
    }
    if (prev === undefined && e.type === EntryType.ConfChange) this.stats.confChanges++;
    this.appliedEntries.set(e.index, fingerprint);
    if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      node.raw?.applyConfChange(cc);
      if (cc.type === ConfChangeType.RemoveNode) {
        // Committed: the removed node is no longer needed by anyone. Stop it for good.
        const gone = this.nodes.get(cc.nodeId);
        if (gone !== undefined && !gone.retired) {
          gone.retired = true;
          if (gone.raw !== undefined && gone !== node) this.#crash(gone);
          this.log(`retired ${cc.nodeId}`);
        }
      }
    } else if (e.data.byteLength > 0) {
      const cmd = JSON.parse(dec.decode(e.data)) as KvCommand;
      node.sm.apply(cmd);
      const waiting = node.waitingPuts.get(`${cmd.c}:${cmd.r}`);
      if (waiting !== undefined) {
        node.waitingPuts.delete(`${cmd.c}:${cmd.r}`);
        this.#complete(waiting, cmd.v);
      }
    }
    node.sm.applied = e.index;
    this.#recordDigest(node, e.index);
  }

  #recordDigest(node: SimNode, index: number): void {
    const d = node.sm.digest();
    const prev = this.digests.get(index);
    if (prev !== undefined && prev !== d) {
      this.fail(`state machine safety: digest at ${index} differs on node ${node.id}: ${d} vs ${prev}`);
    }
    this.digests.set(index, d);
  }

  #serveReads(node: SimNode): void {
    if (node.readyReads.length === 0) return;
    const still: Array<{ op: ClientOp; index: number }> = [];
    for (const rr of node.readyReads) {
      if (node.sm.applied >= rr.index) {
        const v = node.sm.data.get(rr.op.op.key) ?? null;
        this.stats.readsOk++;
        this.#complete(rr.op, v);
      } else {
        still.push(rr);
      }
    }
    node.readyReads = still;
  }

  #maybeSnapshot(node: SimNode): void {
    const storage = node.disk.current;
    const snapIndex = storage.snapshot().metadata.index;
    const applied = node.sm.applied;
    if (applied - snapIndex < SNAPSHOT_EVERY_ENTRIES) return;
    if (applied > storage.lastIndex()) return;
    const raw = node.raw;
    if (raw === undefined) return;
    // The membership is static in this simulation; a host with conf changes tracks it per index.
    storage.createSnapshot(applied, raw.status().confState, node.sm.encode());
    const compactTo = applied - SNAPSHOT_KEEP_ENTRIES;
    if (compactTo > storage.firstIndex()) storage.compact(compactTo);
    node.disk.sync();
  }

  // ---------------------------------------------------------------- clients

  #clients(): void {
    for (const c of this.clients) {
      const cur = c.current;
      if (cur !== undefined) {
        if (cur.done) {
          c.current = undefined;
          c.idleUntil = this.now + this.rng.intBelow(10);
        } else if (this.now - cur.op.invokeTime > CLIENT_TIMEOUT_UNITS) {
          this.#timeout(cur);
          c.current = undefined;
        }
        continue;
      }
      if (this.now < c.idleUntil || !this.faultsOn) continue;
      this.#invoke(c);
    }
  }

  #invoke(c: Client): void {
    const ids = [...this.nodes.keys()];
    const nodeId = ids[this.rng.intBelow(ids.length)] ?? 1;
    const node = this.nodes.get(nodeId);
    if (node?.raw === undefined) return; // connection refused: the op never happened
    const key = KEYS[this.rng.intBelow(KEYS.length)] ?? 'a';
    const r = c.nextReq++;
    const isPut = this.rng.chance(0.5);
    const op: ClientOp = {
      op: {
        id: `c${c.id}#${r}`,
        kind: isPut ? 'put' : 'get',
        key,
        value: isPut ? `v${c.id}.${r}` : null,
        invokeTime: this.now,
        completeTime: Number.POSITIVE_INFINITY,
      },
      client: c.id,
      node: nodeId,
      done: false,
    };
    try {
      if (isPut) {
        const cmd: KvCommand = { c: c.id, r, k: key, v: op.op.value ?? '' };
        node.raw.propose(enc.encode(JSON.stringify(cmd)));
        node.waitingPuts.set(`${c.id}:${r}`, op);
      } else {
        node.raw.readIndex(enc.encode(`g:${c.id}:${r}`));
        node.waitingReads.set(`g:${c.id}:${r}`, op);
      }
    } catch (err) {
      // A dropped proposal was definitely not appended: the op failed and has no effect.
      if ((err as { code?: string }).code === 'RAFT_PROPOSAL_DROPPED') return;
      throw err;
    }
    c.current = op;
    this.history.push(op);
  }

  #complete(op: ClientOp, value: string | null): void {
    if (op.done) return;
    op.done = true;
    op.op.completeTime = this.now;
    if (op.op.kind === 'get') op.op.value = value;
  }

  #timeout(op: ClientOp): void {
    // The client stops waiting: a put's fate is unknown (it may still be applied later); a get
    // without an answer is simply not part of the history.
    op.done = true;
    op.op.completeTime = Number.POSITIVE_INFINITY;
  }

  // ---------------------------------------------------------------- checkers

  #checkElectionSafety(): void {
    for (const node of this.nodes.values()) {
      const st = node.raw?.status();
      if (st === undefined || st.softState.raftState !== StateType.Leader) continue;
      const term = st.hardState.term;
      const prev = this.leaderOfTerm.get(term);
      if (prev === undefined) {
        this.leaderOfTerm.set(term, node.id);
        this.stats.leadersElected++;
        this.log(`leader ${node.id} term ${term}`);
      } else if (prev !== node.id) {
        this.fail(`election safety: nodes ${prev} and ${node.id} are both leader of term ${term}`);
      }
    }
  }

  /** Leader completeness: a new leader must hold every entry that any node has applied. */
  #onNewLeader(node: SimNode): void {
    const raw = node.raw;
    if (raw === undefined) return;
    const log = raw.raft.log;
    const first = log.firstIndex();
    for (const [index, fingerprint] of this.appliedEntries) {
      if (index < first) continue; // covered by the leader's snapshot
      const t = log.term(index);
      const term = Number(fingerprint.slice(0, fingerprint.indexOf(':')));
      if (t !== term) {
        this.fail(`leader completeness: new leader ${node.id} (term ${raw.status().hardState.term}) has term ${t} at ${index}, applied entry has term ${term}`);
      }
    }
  }

  /** Log matching: if two logs agree on (index, term), they agree on every earlier entry. */
  #checkLogMatching(): void {
    const logs: Array<{ id: NodeId; first: number; ents: Entry[] }> = [];
    for (const node of this.nodes.values()) {
      if (node.raw === undefined) continue;
      const log = node.raw.raft.log;
      const first = log.firstIndex();
      const last = log.lastIndex();
      const ents = last >= first ? log.slice(first, last + 1, Number.POSITIVE_INFINITY) : [];
      logs.push({ id: node.id, first, ents });
    }
    for (let i = 0; i < logs.length; i++) {
      for (let j = i + 1; j < logs.length; j++) {
        const a = logs[i];
        const b = logs[j];
        if (a === undefined || b === undefined) continue;
        const lo = Math.max(a.first, b.first);
        const hi = Math.min(a.first + a.ents.length - 1, b.first + b.ents.length - 1);
        let matched = false;
        for (let idx = hi; idx >= lo; idx--) {
          const ea = a.ents[idx - a.first];
          const eb = b.ents[idx - b.first];
          if (ea === undefined || eb === undefined) continue;
          if (!matched && ea.term === eb.term) matched = true;
          if (matched && (ea.term !== eb.term || ea.type !== eb.type || dec.decode(ea.data) !== dec.decode(eb.data))) {
            this.fail(`log matching: nodes ${a.id} and ${b.id} share a later (index, term) but differ at ${idx}`);
          }
        }
      }
    }
  }
}
