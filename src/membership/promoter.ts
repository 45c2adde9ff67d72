/**
 * The leader's promoter: makes caught-up learners voters while the cluster has fewer voters
 * than it wants (3 or 5). Other nodes stay learners: they hold all metadata, serve reads and
 * own chunks, but a larger voter set would only slow every commit.
 *
 * Runs on every node and acts only where this node leads, one promotion per pass (Raft changes
 * membership one step at a time). A learner counts as caught up when the leader's record of it
 * (its match index) is within `lagEntriesMax` of the leader's last index while it replicates
 * and answers, and gossip sees it alive: promoting a node that cannot vote would shrink the
 * margin of the quorum it joins (with two voters, to nothing).
 */
import type { ConfState, ProgressStatus } from '../raft/types.ts';

/** What the promoter reads and does. */
export interface PromoterDeps {
  status(): { role: string; lastIndex: number; confState: ConfState; progress: Map<number, ProgressStatus> };
  /** Gossip's view of a node; true when no gossip runs (static clusters). */
  isAlive(nodeId: number): boolean;
  /** True for a node with a decommission record: it is leaving, never promoted. */
  isLeaving(nodeId: number): boolean;
  addVoter(id: number): Promise<void>;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface PromoterOptions {
  votersTarget: number;
  lagEntriesMax: number;
  intervalMs: number;
}

/**
 * The voter count the promoter aims for: an even target is taken one lower. Four voters survive
 * one failure, as three do, but need three for a quorum instead of two, so every commit waits
 * for one more node and a 2+2 partition stops both halves; etcd and Consul advise odd sizes too.
 */
export function votersWanted(votersTarget: number): number {
  return votersTarget % 2 === 0 ? votersTarget - 1 : votersTarget;
}

/** The learner to promote now, or undefined. Pure: the decision, without the doing. */
export function learnerToPromote(status: ReturnType<PromoterDeps['status']>, options: Pick<PromoterOptions, 'votersTarget' | 'lagEntriesMax'>, isAlive: (id: number) => boolean): number | undefined {
  if (status.role !== 'leader') return undefined;
  if (status.confState.voters.length >= votersWanted(options.votersTarget)) return undefined;
  const ready = status.confState.learners
    .filter((id) => {
      const pr = status.progress.get(id);
      // Replicating (it acknowledged appends, not just a probe), heard from lately (check-quorum
      // would otherwise count it as absent at once), and close to the leader's log. With a short
      // log "close" alone is true of a node that never answered.
      return pr !== undefined && pr.state === 'replicate' && pr.recentActive && pr.match > 0 && pr.match + options.lagEntriesMax >= status.lastIndex && isAlive(id);
    })
    .sort((a, b) => a - b);
  return ready[0];
}

/** The background loop around learnerToPromote. */
export class Promoter {
  readonly #options: PromoterOptions;
  readonly #deps: PromoterDeps;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(options: PromoterOptions, deps: PromoterDeps) {
    this.#options = options;
    this.#deps = deps;
  }

  start(): void {
    const wanted = votersWanted(this.#options.votersTarget);
    if (wanted !== this.#options.votersTarget) {
      this.#deps.logger.warn(
        { votersTarget: this.#options.votersTarget, votersWanted: wanted },
        `TS3GW_VOTERS=${this.#options.votersTarget} is even: promoting up to ${wanted} voters (as many failures survived, a smaller quorum); the other nodes stay learners`,
      );
    }
    this.#timer = setInterval(() => void this.pass(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** One pass; resolves once a promotion it started is applied (or failed). */
  async pass(): Promise<void> {
    if (this.#busy) return;
    const id = learnerToPromote(this.#deps.status(), this.#options, (n) => this.#deps.isAlive(n) && !this.#deps.isLeaving(n));
    if (id === undefined) return;
    this.#busy = true;
    try {
      this.#deps.logger.info({ nodeId: id, votersTarget: this.#options.votersTarget }, 'promoting a caught-up learner to voter');
      await this.#deps.addVoter(id);
    } catch (err) {
      // Lost leadership or timed out: the next pass (here or on the new leader) tries again.
      this.#deps.logger.warn({ nodeId: id, err: String(err) }, 'promotion failed; will retry');
    } finally {
      this.#busy = false;
    }
  }
}
