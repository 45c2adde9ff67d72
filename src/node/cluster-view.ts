/**
 * ClusterView: this node's view of the data-path membership, built from committed metadata (the
 * registered nodes and the replication settings), refreshed on a short interval. It registers
 * this node through the log at start (and whenever its advertised address changes), keeps the
 * S3 URLs of peers for chunk transfer, and rebuilds the placement ring when membership changes.
 */
import type { ChunkPlacement } from '../chunks/cluster-chunk-store.ts';
import type { Consensus } from '../consensus/types.ts';
import type { DecommissionRecord, NodeRecord, ReplicationSettings } from '../meta/types.ts';

/** How often committed membership is re-read. */
export const CLUSTER_VIEW_REFRESH_MS = 1_000;

/** Builds a placement from registered nodes (the consistent-hash ring). */
export type PlacementBuilder = (nodes: NodeRecord[], replication: ReplicationSettings) => ChunkPlacement;

/** Default replication: 3 copies, written to a majority of them. */
export const DEFAULT_REPLICATION: ReplicationSettings = { replicationFactor: 3, writeQuorum: 2 };

/** The logging the view needs. */
export interface ViewLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The data path's membership as of the last refresh. */
export class ClusterView {
  readonly #self: NodeRecord;
  readonly #consensus: Consensus;
  readonly #build: PlacementBuilder;
  readonly #logger: ViewLogger;
  #nodes = new Map<number, NodeRecord>();
  #placement: ChunkPlacement | undefined;
  #signature = '';
  #decommissions: DecommissionRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #registered = false;

  constructor(self: NodeRecord, consensus: Consensus, build: PlacementBuilder, logger: ViewLogger) {
    this.#self = self;
    this.#consensus = consensus;
    this.#build = build;
    this.#logger = logger;
  }

  /** Starts refreshing (and registering this node) in the background. */
  start(): void {
    const run = () => {
      this.refresh().catch((err: unknown) => this.#logger.warn({ err: String(err) }, 'cluster view refresh failed'));
    };
    run();
    this.#timer = setInterval(run, CLUSTER_VIEW_REFRESH_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Current placement; undefined until membership is known. */
  placement(): ChunkPlacement | undefined {
    return this.#placement;
  }

  /** Base S3 URL of a registered node. */
  urlOf(nodeId: number): string | undefined {
    return this.#nodes.get(nodeId)?.s3Url;
  }

  /** Registered nodes, by id (draining ones included: their URLs still serve their copies). */
  nodes(): NodeRecord[] {
    return [...this.#nodes.values()];
  }

  /** Decommissions as of the last refresh. */
  decommissions(): DecommissionRecord[] {
    return this.#decommissions;
  }

  /** True when the current placement ring includes this node. */
  ringHasSelf(): boolean {
    return this.#placement?.nodes().includes(this.#self.nodeId) ?? false;
  }

  /** Re-reads committed membership; registers this node if its record is missing or stale. */
  async refresh(): Promise<void> {
    const reader = this.#consensus.reader;
    const [nodes, replication, decommissions] = await Promise.all([reader.listNodes(), reader.getReplication(), reader.listDecommissions()]);
    this.#decommissions = decommissions;
    const mine = nodes.find((n) => n.nodeId === this.#self.nodeId);
    // A node being (or done being) decommissioned never registers itself again.
    const leaving = decommissions.some((d) => d.nodeId === this.#self.nodeId);
    if (!leaving && (!this.#registered || !mine || JSON.stringify(mine) !== JSON.stringify(this.#self))) {
      if (!mine || JSON.stringify(mine) !== JSON.stringify(this.#self)) {
        await this.#consensus.propose({ type: 'RegisterNode', node: this.#self }, Date.now());
        this.#logger.info({ node: this.#self }, 'registered this node for data placement');
      }
      this.#registered = true;
    }
    const settings = replication ?? DEFAULT_REPLICATION;
    // Nodes being decommissioned leave the ring at once: new writes avoid them, and the copies
    // they hold now belong to others (rebalancing moves them before dropping anything).
    const gone = new Set(decommissions.map((d) => d.nodeId));
    const ringNodes = nodes.filter((n) => !gone.has(n.nodeId));
    const signature = JSON.stringify([nodes, settings, [...gone]]);
    if (signature === this.#signature) return;
    this.#signature = signature;
    this.#nodes = new Map(nodes.map((n) => [n.nodeId, n]));
    this.#placement = ringNodes.length > 0 ? this.#build(ringNodes, settings) : undefined;
    this.#logger.info({ nodes: ringNodes.map((n) => n.nodeId), leaving: [...gone], ...settings }, 'placement ring rebuilt');
  }
}
