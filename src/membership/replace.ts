/**
 * Replace: a new process takes the place of a dead node (its disk lost) under the same id. The
 * state lives in the log (meta SetReplacement, see ReplacementRecord), so the workflow survives
 * any restart and any leader change, and the admin API shows it:
 *
 *   operator ── POST /_ts3gw/admin/replace?id=N (ts3ctl replace N): refused with the reasons
 *   │           while N still answers or too few other voters answer (replacementProblems);
 *   │           else records `waiting`. The old member stays in Raft: nothing changes until a
 *   │           replacement shows up, so asking costs no quorum margin.
 *   new node ── starts on an empty disk with TS3GW_NODE_ID=N and seeds (TS3GW_JOIN); the leader's
 *   │           JoinAdmitter finds the waiting record, checks again, removes the old member from
 *   │           Raft, adds the new one as a learner under id N and records `joined`
 *   new node ── catches up (the promoter makes it a voter if voters are wanted) and registers
 *               for placement; repair refills the chunks the ring gives it. After a maintenance
 *               pass that began with it in the ring has completed, it records `done` with what
 *               that pass fetched (ReplaceWorker).
 *
 * A start with TS3GW_REPLACE=true (the StatefulSet path) takes the same steps without the
 * operator's request and records `joined` as well, so every replacement is visible.
 */
import type { ApplyResult, DecommissionRecord, MetaOp, NodeRecord, ReplacementRecord } from '../meta/types.ts';
import type { ConfState } from '../raft/types.ts';
import { PeriodicTask } from '../util/periodic-task.ts';

/** What replacementProblems looks at. */
export interface ReplacementInput {
  nodeId: number;
  confState: ConfState;
  registered: NodeRecord[];
  decommissions: DecommissionRecord[];
  /** Whether a node answers now (gossip's view, and the leader's if this node leads). */
  isAlive(nodeId: number): boolean;
}

/** Reasons why `nodeId`'s place cannot be given to a new node now; empty when it can. */
export function replacementProblems(input: ReplacementInput): string[] {
  const { nodeId, confState } = input;
  const isMember = confState.voters.includes(nodeId) || confState.learners.includes(nodeId) || input.registered.some((n) => n.nodeId === nodeId);
  if (!isMember) return [`node ${nodeId} is not a member of this cluster (a new node joins without a node id)`];
  if (input.decommissions.some((d) => d.nodeId === nodeId)) return [`node ${nodeId} is decommissioned (or being decommissioned): its place is not kept`];
  const problems: string[] = [];
  if (input.isAlive(nodeId)) {
    problems.push(`node ${nodeId} still answers: a replacement takes the place of a dead node (stop it first, or decommission it to take it out with its data)`);
  }
  if (confState.voters.includes(nodeId)) {
    // Between the removal of the old member and the promotion of the new one, the other voters
    // alone must make a quorum.
    const others = confState.voters.filter((id) => id !== nodeId);
    const answering = others.filter((id) => input.isAlive(id)).length;
    const quorum = Math.floor(others.length / 2) + 1;
    if (others.length === 0) problems.push(`node ${nodeId} is the only voter: there is no cluster left to rebuild it from`);
    else if (answering < quorum) problems.push(`only ${answering} of the other ${others.length} voters answer; replacing node ${nodeId} needs ${quorum} (a quorum without it)`);
  }
  return problems;
}

/** What the worker reads and does. */
export interface ReplaceDeps {
  selfId: number;
  /** This node's data-directory incarnation. */
  incarnation: string;
  /** True when this process was admitted in the place of an old member (a replace join). */
  admittedAsReplacement: boolean;
  listReplacements(): Promise<ReplacementRecord[]>;
  propose(op: MetaOp, stampMs: number): Promise<ApplyResult>;
  /** This node's maintenance counters (the last completed pass, and totals). */
  maintenance(): {
    lastPassStartMs: number;
    ts3gw_repair_fetched_chunks_total: number;
    ts3gw_repair_fetched_bytes_total: number;
    ts3gw_repair_unavailable_chunks_total: number;
  };
  /** True when this node's current placement ring includes it. */
  ringHasSelf(): boolean;
  nowMs(): number;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** The replacement's own worker: records that it joined (if the admitter could not) and that it refilled. */
export class ReplaceWorker {
  readonly #deps: ReplaceDeps;
  readonly #task: PeriodicTask;
  /** When this node first saw itself in its ring while joined (its own clock). */
  #inRingAtMs: number | undefined;
  /** Maintenance totals then: what the refill fetched is counted from here. */
  #base: ReturnType<ReplaceDeps['maintenance']> | undefined;

  constructor(deps: ReplaceDeps, intervalMs: number) {
    this.#deps = deps;
    this.#task = new PeriodicTask(() => this.#due(), intervalMs, (err) => deps.logger.warn({ err: String(err) }, 'replacement step failed; will retry'));
  }

  start(): void {
    this.#task.start();
  }

  stop(): void {
    this.#task.stop();
  }

  /** One step of whatever is due; errors are logged and the next pass tries again. */
  pass(): Promise<void> {
    return this.#task.runOnce();
  }

  async #due(): Promise<void> {
    const mine = (await this.#deps.listReplacements()).find((r) => r.nodeId === this.#deps.selfId);
    await this.#step(mine);
  }

  async #step(mine: ReplacementRecord | undefined): Promise<void> {
    const deps = this.#deps;
    if (mine === undefined || mine.state === 'done') return;
    if (mine.state === 'waiting') {
      // The leader admitted this node but died before it recorded so: this node knows.
      if (!deps.admittedAsReplacement) return;
      const record: ReplacementRecord = { ...mine, state: 'joined', updatedMs: deps.nowMs(), incarnation: deps.incarnation };
      const result = await deps.propose({ type: 'SetReplacement', nodeId: mine.nodeId, record, expected: 'waiting' }, deps.nowMs());
      if (result.ok) deps.logger.info({ nodeId: mine.nodeId }, 'replacement: joined in the place of the old member');
      return;
    }
    // joined: only the process that took the place reports its refill.
    if (mine.incarnation !== undefined && mine.incarnation !== deps.incarnation) return;
    if (!deps.ringHasSelf()) return;
    if (this.#inRingAtMs === undefined) {
      this.#inRingAtMs = deps.nowMs();
      this.#base = deps.maintenance();
      return;
    }
    const m = deps.maintenance();
    // A pass that began before the ring held this node owned nothing here yet.
    if (m.lastPassStartMs <= this.#inRingAtMs) return;
    const base = this.#base ?? m;
    const record: ReplacementRecord = {
      ...mine,
      state: 'done',
      updatedMs: deps.nowMs(),
      incarnation: deps.incarnation,
      refilledChunks: m.ts3gw_repair_fetched_chunks_total - base.ts3gw_repair_fetched_chunks_total,
      refilledBytes: m.ts3gw_repair_fetched_bytes_total - base.ts3gw_repair_fetched_bytes_total,
      unavailableChunks: m.ts3gw_repair_unavailable_chunks_total - base.ts3gw_repair_unavailable_chunks_total,
    };
    const result = await deps.propose({ type: 'SetReplacement', nodeId: mine.nodeId, record, expected: 'joined' }, deps.nowMs());
    if (!result.ok) return;
    const fields = { nodeId: mine.nodeId, refilledChunks: record.refilledChunks, refilledBytes: record.refilledBytes, unavailableChunks: record.unavailableChunks };
    if ((record.unavailableChunks ?? 0) > 0) deps.logger.warn(fields, 'replacement: done, but some chunks had no readable copy anywhere');
    else deps.logger.info(fields, 'replacement: done, this node holds its share again');
  }
}
