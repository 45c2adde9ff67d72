/**
 * Decommission: taking a node out without losing a copy or the quorum. The state lives in the
 * log (meta SetDecommission, see DecommissionRecord), so the workflow survives any restart and
 * any leader change; every node runs the same worker, and each step is done by whoever may:
 *
 *   operator ─ POST /_ts3gw/admin/decommission?id=N ─ checks removalProblems(), proposes draining
 *   every node ─ its placement ring leaves N out, so new writes avoid N and the copies N holds
 *              belong elsewhere; N's maintenance pushes each to its new owners and drops it only
 *              once they all hold a verified copy (chunks/repair.ts rebalanceHeld)
 *   node N ──── after each maintenance pass that began after its ring left it out, reports what
 *              it still holds; nothing left ⇒ drained
 *   leader ──── drained: hands leadership away if it is N, removes N from Raft, deregisters it
 *              from placement, marks it removed
 *
 * A node's last good copy is never dropped (rebalancing confirms every new owner first), and a
 * decommission that would leave fewer ring nodes than the replication factor, or fewer reachable
 * voters than a quorum, is refused before it starts.
 */
import type { ApplyResult, DecommissionRecord, MetaOp, NodeRecord } from '../meta/types.ts';
import type { ConfState, ProgressStatus } from '../raft/types.ts';
import { PeriodicTask } from '../util/periodic-task.ts';

/**
 * How long after its ring left it out a draining node waits before a pass may count what it
 * still holds: writes that picked owners from the old ring just before finish within this.
 */
export const DRAIN_SETTLE_MS = 5_000;

/** What removalProblems looks at. */
export interface RemovalInput {
  nodeId: number;
  confState: ConfState;
  registered: NodeRecord[];
  decommissions: DecommissionRecord[];
  /** The configured replication factor (before capping at the node count). */
  replicationFactor: number;
  /** Gossip's (or the caller's own) view; the asking node counts itself alive. */
  isAlive(nodeId: number): boolean;
}

/** Reasons why removing `nodeId` now would break the cluster's promises; empty when safe to start. */
export function removalProblems(input: RemovalInput): string[] {
  const { nodeId, confState } = input;
  const problems: string[] = [];
  const isMember = confState.voters.includes(nodeId) || confState.learners.includes(nodeId) || input.registered.some((n) => n.nodeId === nodeId);
  if (!isMember) return [`node ${nodeId} is not a member of this cluster`];
  const leaving = new Set(input.decommissions.filter((d) => d.state !== 'removed').map((d) => d.nodeId));
  leaving.add(nodeId);
  const ringAfter = input.registered.filter((n) => !leaving.has(n.nodeId));
  if (ringAfter.length < input.replicationFactor) {
    problems.push(
      `removing node ${nodeId} leaves ${ringAfter.length} node(s) to hold ${input.replicationFactor} copies of each chunk: add a node first, or lower the replication factor (PUT /_ts3gw/admin/replication)`,
    );
  }
  if (confState.voters.includes(nodeId)) {
    const votersAfter = confState.voters.filter((id) => id !== nodeId && !leaving.has(id));
    const quorum = Math.floor(votersAfter.length / 2) + 1;
    const reachable = votersAfter.filter((id) => input.isAlive(id)).length;
    if (votersAfter.length === 0) problems.push(`node ${nodeId} is the last voter`);
    else if (reachable < quorum) problems.push(`only ${reachable} of the ${votersAfter.length} remaining voters are reachable; a quorum needs ${quorum}`);
  }
  return problems;
}

/** What the worker reads and does. */
export interface DecommissionDeps {
  selfId: number;
  status(): { role: string; confState: ConfState; progress: Map<number, ProgressStatus> };
  listDecommissions(): Promise<DecommissionRecord[]>;
  propose(op: MetaOp, stampMs: number): Promise<ApplyResult>;
  removeNode(id: number): Promise<void>;
  transferLeadership(id: number): void;
  /** This node's maintenance counters (the last completed pass). */
  maintenance(): {
    lastPassStartMs: number;
    ts3gw_rebalance_misplaced_chunks: number;
    ts3gw_rebalance_misplaced_bytes: number;
    ts3gw_rebalance_dropped_chunks_total: number;
    ts3gw_rebalance_dropped_bytes_total: number;
  };
  /** True when this node's current placement ring includes it. */
  ringHasSelf(): boolean;
  nowMs(): number;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** The per-node worker: reports this node's drain, and (on the leader) finishes drained nodes. */
export class DecommissionWorker {
  readonly #deps: DecommissionDeps;
  readonly #task: PeriodicTask;
  /** When this node first saw its ring without itself while draining (its own clock). */
  #ringLeftAtMs: number | undefined;
  /** Its rebalance drop counters then: what it moved since is counted into the totals. */
  #droppedAtStart: { chunks: number; bytes: number } | undefined;

  constructor(deps: DecommissionDeps, intervalMs: number) {
    this.#deps = deps;
    this.#task = new PeriodicTask(() => this.#due(), intervalMs, (err) => deps.logger.warn({ err: String(err) }, 'decommission step failed; will retry'));
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
    const records = await this.#deps.listDecommissions();
    await this.#reportOwnDrain(records.find((r) => r.nodeId === this.#deps.selfId));
    if (this.#deps.status().role === 'leader') for (const r of records) if (r.state === 'drained') await this.#finish(r);
  }

  async #reportOwnDrain(mine: DecommissionRecord | undefined): Promise<void> {
    const deps = this.#deps;
    if (mine?.state !== 'draining') {
      this.#ringLeftAtMs = undefined;
      this.#droppedAtStart = undefined;
      return;
    }
    if (deps.ringHasSelf()) return;
    if (this.#ringLeftAtMs === undefined) {
      this.#ringLeftAtMs = deps.nowMs();
      const m = deps.maintenance();
      this.#droppedAtStart = { chunks: m.ts3gw_rebalance_dropped_chunks_total, bytes: m.ts3gw_rebalance_dropped_bytes_total };
    }
    const m = deps.maintenance();
    // A pass that began with the new ring measured what is left to move: reported at once, so
    // the operator sees the size of the drain early. Only a pass that began after writes that
    // still used the old ring had time to land (this node refuses new copies while draining)
    // may declare the node drained.
    if (m.lastPassStartMs <= this.#ringLeftAtMs) return;
    const settled = m.lastPassStartMs > this.#ringLeftAtMs + DRAIN_SETTLE_MS;
    const remainingChunks = m.ts3gw_rebalance_misplaced_chunks;
    const remainingBytes = m.ts3gw_rebalance_misplaced_bytes;
    const state = remainingChunks === 0 && settled ? 'drained' : 'draining';
    // The work as a whole: what is left plus what this process moved since the drain began (a
    // restarted node's counters start again, so the largest total seen is kept).
    const start = this.#droppedAtStart ?? { chunks: m.ts3gw_rebalance_dropped_chunks_total, bytes: m.ts3gw_rebalance_dropped_bytes_total };
    const totalChunks = Math.max(mine.totalChunks ?? 0, remainingChunks + Math.max(0, m.ts3gw_rebalance_dropped_chunks_total - start.chunks));
    const totalBytes = Math.max(mine.totalBytes ?? 0, remainingBytes + Math.max(0, m.ts3gw_rebalance_dropped_bytes_total - start.bytes));
    if (state === mine.state && remainingChunks === mine.remainingChunks && remainingBytes === mine.remainingBytes && totalChunks === mine.totalChunks && totalBytes === mine.totalBytes) return;
    const record: DecommissionRecord = {
      ...mine,
      state,
      updatedMs: deps.nowMs(),
      remainingChunks,
      remainingBytes,
      totalChunks,
      totalBytes,
      droppedChunksAtReport: m.ts3gw_rebalance_dropped_chunks_total,
      droppedBytesAtReport: m.ts3gw_rebalance_dropped_bytes_total,
    };
    const result = await deps.propose({ type: 'SetDecommission', nodeId: mine.nodeId, record, expected: 'draining' }, deps.nowMs());
    // Cancelled (or finished) meanwhile: the record changed under us; nothing to report.
    if (!result.ok) return;
    deps.logger.info({ nodeId: mine.nodeId, state, remainingChunks, remainingBytes }, state === 'drained' ? 'decommission: drained, nothing left to move' : 'decommission: draining');
  }

  async #finish(record: DecommissionRecord): Promise<void> {
    const deps = this.#deps;
    const status = deps.status();
    if (record.nodeId === deps.selfId) {
      // The leader cannot remove itself cleanly: hand over to the most caught-up other voter,
      // which finishes the job on its next pass.
      const next = status.confState.voters
        .filter((id) => id !== deps.selfId && status.progress.get(id)?.recentActive === true)
        .sort((a, b) => (status.progress.get(b)?.match ?? 0) - (status.progress.get(a)?.match ?? 0))[0];
      if (next !== undefined) {
        deps.logger.info({ to: next }, 'decommission: handing over leadership before leaving');
        deps.transferLeadership(next);
      }
      return;
    }
    if (status.confState.voters.includes(record.nodeId)) {
      // Checked again now, not only when the drain began: a voter may have died since. Removing
      // one while too few others answer would leave no quorum.
      const others = status.confState.voters.filter((id) => id !== record.nodeId);
      const answering = others.filter((id) => id === deps.selfId || status.progress.get(id)?.recentActive === true).length;
      if (answering < Math.floor(others.length / 2) + 1) {
        deps.logger.warn({ nodeId: record.nodeId, answering, remaining: others.length }, 'decommission: waiting to remove the node until a quorum of the other voters answers');
        return;
      }
    }
    if (status.confState.voters.includes(record.nodeId) || status.confState.learners.includes(record.nodeId)) {
      await deps.removeNode(record.nodeId);
      deps.logger.info({ nodeId: record.nodeId }, 'decommission: removed from Raft');
    }
    await deps.propose({ type: 'DeregisterNode', nodeId: record.nodeId }, deps.nowMs());
    await deps.propose({ type: 'SetDecommission', nodeId: record.nodeId, record: { ...record, state: 'removed', updatedMs: deps.nowMs() }, expected: 'drained' }, deps.nowMs());
    deps.logger.info({ nodeId: record.nodeId }, 'decommission: done; the node may be stopped and its data directory deleted');
  }
}
