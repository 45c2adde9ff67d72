/**
 * A tiny in-process cluster of RawNodes over MemoryStorage, used by the unit tests and the
 * datadriven interaction tests. It follows the Ready contract exactly: persist, then queue
 * messages, then apply, then advance. Messages sit in a FIFO queue until delivered, so tests can
 * inspect, drop or reorder them.
 */
import {
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  type NodeId,
  type RaftConfig,
  RawNode,
  type Ready,
  type ReadState,
} from '../../src/raft/index.ts';
import { assert } from '../../src/util/assert.ts';
import { SeededRandom } from '../../src/util/random.ts';

/** One node of the test cluster. */
export interface TestNode {
  id: NodeId;
  storage: MemoryStorage;
  node: RawNode;
  /** Normal entries applied, in order (the state machine of the tests). */
  applied: Entry[];
  /** ReadStates received. */
  readStates: ReadState[];
  /** Latest ConfState (from snapshots and applied conf changes). */
  confState: ConfState;
}

/** Default config used by tests; override per node. */
export function testConfig(id: NodeId, overrides: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id,
    electionTimeoutTicks: 10,
    heartbeatTimeoutTicks: 1,
    maxSizePerMsgBytes: 1024 * 1024,
    maxInflightMsgs: 256,
    random: new SeededRandom(id),
    ...overrides,
  };
}

/** A cluster of RawNodes with a message queue. */
export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages produced and not yet delivered. */
  queue: Message[] = [];
  /** Blocked directed links "from->to" (partitions). */
  readonly blocked = new Set<string>();
  /** Optional hook called for each Ready (for transcripts). */
  onReady: ((id: NodeId, rd: Ready) => void) | undefined = undefined;
  /** Optional hook called for each delivered message. */
  onDeliver: ((m: Message) => void) | undefined = undefined;

  /** Adds a node with the given storage (bootstrap or empty) and config overrides. */
  add(id: NodeId, storage: MemoryStorage, overrides: Partial<RaftConfig> = {}): TestNode {
    assert(!this.nodes.has(id), `node ${id} exists`);
    const node = new RawNode(testConfig(id, overrides), storage);
    const tn: TestNode = {
      id,
      storage,
      node,
      applied: [],
      readStates: [],
      confState: storage.initialState().confState,
    };
    this.nodes.set(id, tn);
    return tn;
  }

  /** Creates founding voters (and learners) sharing one bootstrap membership. */
  static of(voters: NodeId[], learners: NodeId[] = [], overrides: Partial<RaftConfig> = {}): TestCluster {
    const c = new TestCluster();
    for (const id of [...voters, ...learners]) c.add(id, MemoryStorage.bootstrap({ voters, learners }), overrides);
    return c;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    assert(n !== undefined, `no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    return this.get(id).node;
  }

  /** Handles one Ready of node `id` per the contract; returns it, or undefined if none. */
  processReady(id: NodeId): Ready | undefined {
    const tn = this.get(id);
    if (!tn.node.hasReady()) return undefined;
    const rd = tn.node.ready();
    this.onReady?.(id, rd);
    // 1. persist
    if (rd.snapshot !== undefined) tn.storage.applySnapshot(rd.snapshot);
    tn.storage.append(rd.entries);
    if (rd.hardState !== undefined) tn.storage.setHardState(rd.hardState);
    // 2. send
    this.queue.push(...rd.messages);
    // 3. apply
    if (rd.snapshot !== undefined) tn.confState = rd.snapshot.metadata.confState;
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        tn.confState = tn.node.applyConfChange(decodeConfChange(e.data));
      } else if (e.data.byteLength > 0) {
        tn.applied.push(e);
      }
    }
    tn.readStates.push(...rd.readStates);
    // 4. advance
    tn.node.advance(rd);
    return rd;
  }

  /** Delivers queued messages (optionally only those matching `filter`); returns how many. */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const now = this.queue;
    this.queue = [];
    let n = 0;
    for (const m of now) {
      if (!filter(m)) {
        this.queue.push(m);
        continue;
      }
      if (this.blocked.has(`${m.from}->${m.to}`)) continue;
      const to = this.nodes.get(m.to);
      if (to === undefined) continue;
      this.onDeliver?.(m);
      to.node.step(m);
      n++;
    }
    return n;
  }

  /** Runs ready/deliver until quiescent. */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let busy = false;
      for (const id of [...this.nodes.keys()].sort((a, b) => a - b)) {
        if (this.processReady(id) !== undefined) busy = true;
      }
      if (this.queue.length > 0) {
        this.deliver();
        busy = true;
      }
      if (!busy) return;
    }
    assert(false, 'cluster did not stabilize');
  }

  /** Ticks node `id` n times (no processing). */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.raw(id).tick();
  }

  /** Blocks all traffic between `id` and every other node. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}->${other}`);
      this.blocked.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Elects `id` (campaign + stabilize) and returns it. */
  elect(id: NodeId): TestNode {
    this.raw(id).campaign();
    this.stabilize();
    return this.get(id);
  }

  /** Proposes a UTF-8 string on node `id`. */
  propose(id: NodeId, s: string): void {
    this.raw(id).propose(new TextEncoder().encode(s));
  }

  /** Applied normal entries of node `id` as strings. */
  appliedStrings(id: NodeId): string[] {
    return this.get(id).applied.map((e) => new TextDecoder().decode(e.data));
  }
}
