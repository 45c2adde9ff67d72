/**
 * A seeded fault schedule: which nemesis acts when, on whom, for how long. The same seed and
 * options give the same schedule; targets named "leader" are resolved when the fault starts
 * (the run records what they resolved to).
 *
 * One fault is active at a time and each touches a minority of the nodes, so the majority side
 * stays able to make progress; every fault is undone (heal, restart, resume) before the next.
 *
 *   |warmup| fault 1 |gap| fault 2 |gap| … |cooldown (no faults)| heal, converge, check
 */
import { SeededRandom } from '../src/util/random.ts';

/**
 * The nemeses a run can use. partition: a minority (or the leader) cut off both ways; oneway:
 * its packets to the others dropped, theirs to it delivered; bridge: two sides that cannot
 * reach each other but both reach one bridge node; kill, pause, rolling: the process; clock:
 * one node's wall clock shifted and drifting; disk: one node's durable writes slow, or failing
 * (chunk fsyncs, or the WAL: the node must crash rather than acknowledge); rot: chunk files
 * corrupted or deleted on one node's disk (scrub and repair must mend them).
 */
export const NEMESES = ['partition', 'kill', 'pause', 'rolling', 'oneway', 'bridge', 'clock', 'disk', 'rot'] as const;
export type Nemesis = (typeof NEMESES)[number];

/** What a fault does beyond its target (for the nemeses that need more than a node). */
export interface FaultParams {
  /** bridge: the groups, bridge node first and alone: [[bridge], sideA, sideB]. */
  groups?: number[][];
  /** clock: offset (ms, signed) and rate (1 = no drift). */
  clockOffsetMs?: number;
  clockRate?: number;
  /** disk: what breaks, and the delay of a slow disk. */
  disk?: 'slow' | 'fsync-chunk' | 'fsync-wal';
  diskDelayMs?: number;
  /** rot: how chunk files are damaged and how many. */
  rot?: 'flip' | 'delete';
  count?: number;
}

/** Time planned for each node of a rolling restart. */
const ROLLING_SECONDS_PER_NODE = 8;

/** One planned fault. */
export interface PlannedFault {
  nemesis: Nemesis;
  /** Seconds from the start of the workload. */
  atS: number;
  durationS: number;
  /**
   * partition: the isolated minority (node ids) or 'leader' (the leader alone);
   * kill/pause: one node id or 'leader'; rolling: every node, in the order they restart.
   */
  target: number[] | 'leader';
  params?: FaultParams;
}

/** Options of planSchedule. */
export interface ScheduleOptions {
  seed: number;
  nodes: number;
  timeS: number;
  nemeses: Nemesis[];
  /** Seconds without faults at the start and before the end. */
  warmupS?: number;
  cooldownS?: number;
}

/** Plans the faults of a run. */
export function planSchedule(options: ScheduleOptions): PlannedFault[] {
  const rng = new SeededRandom(options.seed * 7919 + 17);
  const out: PlannedFault[] = [];
  if (options.nemeses.length === 0) return out;
  const warmup = options.warmupS ?? 3;
  const end = options.timeS - (options.cooldownS ?? 3);
  const minority = Math.floor((options.nodes - 1) / 2);
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const pickNodes = (count: number) => {
    const pool = [...ids];
    const chosen: number[] = [];
    for (let i = 0; i < count; i++) chosen.push(pool.splice(rng.intBelow(pool.length), 1)[0]!);
    return chosen.sort((a, b) => a - b);
  };
  // Every node once, in a seeded order (Fisher-Yates).
  const shuffled = () => {
    const order = [...ids];
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.intBelow(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  };
  // Faults and gaps of a few seconds: longer than the election timeout (a paused leader must
  // come back to a new term), short enough for many faults per minute.
  for (let t = warmup; out.length < 1_000; ) {
    let durationS = round(2 + rng.float() * 4);
    let nemesis = options.nemeses[rng.intBelow(options.nemeses.length)]!;
    // A rolling restart takes a few seconds per node (graceful stop, start, catch up).
    if (nemesis === 'rolling') durationS = ROLLING_SECONDS_PER_NODE * options.nodes;
    if (t + durationS > end && nemesis === 'rolling') {
      const others = options.nemeses.filter((n) => n !== 'rolling');
      if (others.length === 0) break;
      nemesis = others[rng.intBelow(others.length)]!;
      durationS = round(2 + rng.float() * 4);
    }
    if (t + durationS > end) break;
    const leader = rng.chance(0.5);
    let target: PlannedFault['target'];
    if (nemesis === 'rolling') target = shuffled();
    else if (minority === 0) target = pickNodes(1); // a cluster of 1 or 2: no minority; faults still run
    else if (nemesis === 'partition' || nemesis === 'oneway') target = leader ? 'leader' : pickNodes(1 + rng.intBelow(minority));
    else target = leader ? 'leader' : pickNodes(1);
    const params = paramsOf(nemesis, shuffled, rng);
    if (nemesis === 'bridge') target = params!.groups!.flat();
    out.push({ nemesis, atS: round(t), durationS, target, ...(params ? { params } : {}) });
    t += durationS + round(1.5 + rng.float() * 3);
  }
  return out;
}

/** The extra choices of the nemeses that need them (drawn only for those, so older schedules stay as they were). */
function paramsOf(nemesis: Nemesis, shuffled: () => number[], rng: SeededRandom): FaultParams | undefined {
  switch (nemesis) {
    case 'bridge': {
      // The bridge first, then two sides of the rest: each side with the bridge is a majority.
      const order = shuffled();
      const rest = order.slice(1);
      const half = Math.floor(rest.length / 2);
      return { groups: [[order[0]!], rest.slice(0, half).sort((a, b) => a - b), rest.slice(half).sort((a, b) => a - b)] };
    }
    case 'clock': {
      // Seconds to minutes either way (within SigV4's 15 minutes), sometimes with a drift of up to 2x.
      const sign = rng.chance(0.5) ? 1 : -1;
      const offsetMs = sign * Math.round(1_000 + rng.float() * 120_000);
      const clockRate = rng.chance(0.5) ? 1 : round(0.5 + rng.float() * 1.5);
      return { clockOffsetMs: offsetMs, clockRate };
    }
    case 'disk': {
      const roll = rng.float();
      const disk = roll < 0.5 ? 'slow' : roll < 0.8 ? 'fsync-chunk' : 'fsync-wal';
      return { disk, diskDelayMs: disk === 'slow' ? 20 + rng.intBelow(400) : 0 };
    }
    case 'rot':
      return { rot: rng.chance(0.5) ? 'flip' : 'delete', count: 1 + rng.intBelow(5) };
    default:
      return undefined;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
