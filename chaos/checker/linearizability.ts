/**
 * Linearizability checking of a concurrent history against a sequential model, in the style of
 * Wing & Gong with Lowe's memoisation (as Knossos and Porcupine do): a depth-first search for an
 * order of the operations that respects real time (an operation that completed before another was
 * invoked comes first) and that the model accepts step by step. States already seen (the set of
 * linearized operations plus the model state) are not explored twice.
 *
 * Histories are checked per key (P-compositionality, Herlihy & Wing: a history is linearizable iff
 * each object's sub-history is), which keeps every search small.
 *
 * An operation whose outcome is unknown (the client timed out, the server answered 5xx) is
 * *indeterminate*: its completion time is Infinity, so it constrains nothing, and the search may
 * linearize it at any point after its invocation, or leave it out (it never took effect).
 *
 * On a violation, shrink() reduces the key's sub-history to a 1-minimal offending one: removing
 * any single remaining operation makes it linearizable. That is what a person reads first.
 *
 * This is the one search of the project: the Raft simulator's register checker
 * (test/sim/raft-linearizability.ts) and the chaos suite's S3 register checker
 * (chaos/checker/register.ts) both run it with their own model.
 */

/** The timing every operation of a history carries. */
export interface TimedOp {
  /** When the client sent it. */
  invokeTime: number;
  /** When the client got the answer; Infinity when the outcome is unknown (indeterminate). */
  completeTime: number;
}

/**
 * A sequential specification. step() returns the state after `op` took effect in `state`, or
 * undefined when `op` (with the output it observed) cannot happen in `state`. For an indeterminate
 * op, step() decides whether it can take effect (skipping it is the search's other choice).
 */
export interface Model<S, Op extends TimedOp> {
  init(): S;
  step(state: S, op: Op): S | undefined;
  /** Equal states hash equally (the memo key). */
  hash(state: S): string;
}

/** Outcome of one search. */
export type SearchResult =
  | { ok: true; explored: number }
  | { ok: false; explored: number }
  | { ok: 'unknown'; explored: number; reason: string };

/** Default bound on explored states per key. */
export const SEARCH_STATES_MAX = 500_000;

/**
 * Searches for a linearization of `history` (one key's operations). `budget` bounds the explored
 * states; past it the answer is 'unknown' (never a false verdict).
 */
export function searchLinearization<S, Op extends TimedOp>(model: Model<S, Op>, history: readonly Op[], budget = SEARCH_STATES_MAX): SearchResult {
  const ops = [...history].sort((a, b) => a.invokeTime - b.invokeTime);
  const n = ops.length;
  for (const o of ops) {
    if (!(o.completeTime >= o.invokeTime)) throw new RangeError(`operation completes (${o.completeTime}) before it is invoked (${o.invokeTime})`);
  }
  const determinate = ops.filter((o) => o.completeTime !== Number.POSITIVE_INFINITY).length;
  const done = new Uint8Array(Math.ceil(n / 8));
  const isDone = (i: number) => ((done[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
  const flip = (i: number) => {
    done[i >> 3] = (done[i >> 3] ?? 0) ^ (1 << (i & 7));
  };
  const seen = new Set<string>();
  const memoKey = (state: S) => `${model.hash(state)}|${Buffer.from(done).toString('latin1')}`;

  // An op may be linearized next iff it was invoked before the earliest completion among the ops
  // not linearized yet (otherwise that op would have to come first). Ops are sorted by invocation,
  // so the scan stops at the first op invoked after that completion.
  const candidatesOf = (state: S): Array<{ i: number; next: S }> => {
    let minComplete = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const o = ops[i]!;
      if (!isDone(i) && o.completeTime < minComplete) minComplete = o.completeTime;
    }
    const out: Array<{ i: number; next: S }> = [];
    for (let i = 0; i < n; i++) {
      const o = ops[i]!;
      if (isDone(i)) continue;
      if (o.invokeTime > minComplete) break;
      const next = model.step(state, o);
      if (next !== undefined) out.push({ i, next });
    }
    return out;
  };

  type Frame = { candidates: Array<{ i: number; next: S }>; at: number; chosen: number };
  let doneDeterminate = 0;
  let explored = 0;
  const init = model.init();
  seen.add(memoKey(init));
  const stack: Frame[] = [{ candidates: candidatesOf(init), at: 0, chosen: -1 }];
  while (stack.length > 0) {
    if (doneDeterminate === determinate) return { ok: true, explored };
    const top = stack[stack.length - 1]!;
    if (top.at >= top.candidates.length) {
      stack.pop();
      if (top.chosen >= 0) {
        flip(top.chosen);
        if (ops[top.chosen]!.completeTime !== Number.POSITIVE_INFINITY) doneDeterminate--;
      }
      continue;
    }
    const { i, next } = top.candidates[top.at++]!;
    flip(i);
    const k = memoKey(next);
    if (seen.has(k)) {
      flip(i);
      continue;
    }
    seen.add(k);
    if (++explored > budget) return { ok: 'unknown', explored, reason: `search budget of ${budget} states exhausted (${n} ops)` };
    if (ops[i]!.completeTime !== Number.POSITIVE_INFINITY) doneDeterminate++;
    stack.push({ candidates: candidatesOf(next), at: 0, chosen: i });
  }
  return doneDeterminate === determinate ? { ok: true, explored } : { ok: false, explored };
}

/** A violation found by checkPartitioned: the key, its whole sub-history and a minimal offending part. */
export interface Violation<Op> {
  key: string;
  history: Op[];
  minimal: Op[];
}

/** Outcome of checking a whole history key by key. */
export interface PartitionedResult<Op> {
  /** true: every key linearizable; false: some key is not; 'unknown': some key ran out of budget, none failed. */
  ok: boolean | 'unknown';
  keys: number;
  explored: number;
  violations: Violation<Op>[];
  /** Keys whose search ran out of budget. */
  unknown: string[];
}

/** Options of checkPartitioned. */
export interface CheckOptions<Op = unknown> {
  /** States per key search. */
  budget?: number;
  /** Stop after this many violating keys. */
  violationsMax?: number;
  /** Shrink violations to a minimal sub-history (costs more searches). */
  shrink?: boolean;
  /**
   * Which sub-histories shrinking may keep, given the key's whole history. The register model
   * keeps the write of every value a remaining read observed: otherwise "a read of a value no
   * one wrote" would be the minimal answer to every violation.
   */
  admissible?: (candidate: readonly Op[], history: readonly Op[]) => boolean;
}

/** Checks every key's sub-history; violating keys are reported with a minimal offending sub-history. */
export function checkPartitioned<S, Op extends TimedOp>(
  model: Model<S, Op>,
  ops: readonly Op[],
  keyOf: (op: Op) => string,
  options: CheckOptions<Op> = {},
): PartitionedResult<Op> {
  const budget = options.budget ?? SEARCH_STATES_MAX;
  const byKey = new Map<string, Op[]>();
  for (const op of ops) {
    const key = keyOf(op);
    const list = byKey.get(key);
    if (list === undefined) byKey.set(key, [op]);
    else list.push(op);
  }
  const result: PartitionedResult<Op> = { ok: true, keys: byKey.size, explored: 0, violations: [], unknown: [] };
  for (const key of [...byKey.keys()].sort()) {
    const history = byKey.get(key)!;
    const r = searchLinearization(model, history, budget);
    result.explored += r.explored;
    if (r.ok === 'unknown') result.unknown.push(key);
    if (r.ok !== false) continue;
    const minimal = options.shrink === false ? history : shrink(model, history, budget, options.admissible);
    result.violations.push({ key, history, minimal });
    if (result.violations.length >= (options.violationsMax ?? 10)) break;
  }
  result.ok = result.violations.length > 0 ? false : result.unknown.length > 0 ? 'unknown' : true;
  return result;
}

/** Searches shrink() may spend; past it the history is returned as reduced so far. */
const SHRINK_SEARCHES_MAX = 2_000;

/**
 * Reduces a non-linearizable history to a 1-minimal one (ddmin-style): first drop chunks of
 * operations (halves, quarters, …), then single operations, keeping each removal that leaves the
 * history non-linearizable. The result is still non-linearizable; removing any one of its
 * operations makes it linearizable (unless the search budget ran out first).
 */
export function shrink<S, Op extends TimedOp>(
  model: Model<S, Op>,
  history: readonly Op[],
  budget = SEARCH_STATES_MAX,
  admissible: (candidate: readonly Op[], history: readonly Op[]) => boolean = () => true,
): Op[] {
  let current = [...history].sort((a, b) => a.invokeTime - b.invokeTime);
  let searches = 0;
  const violates = (ops: Op[]) => {
    if (!admissible(ops, history)) return false;
    searches++;
    return searchLinearization(model, ops, budget).ok === false;
  };
  for (let size = Math.floor(current.length / 2); size >= 1 && searches < SHRINK_SEARCHES_MAX; size = Math.floor(size / 2)) {
    for (let at = 0; at < current.length && searches < SHRINK_SEARCHES_MAX; ) {
      const candidate = [...current.slice(0, at), ...current.slice(at + size)];
      if (candidate.length > 0 && violates(candidate)) current = candidate;
      else at += size;
    }
  }
  // Removing one op can make an earlier one removable: repeat single removals until none works.
  for (let changed = true; changed && searches < SHRINK_SEARCHES_MAX; ) {
    changed = false;
    for (let at = 0; at < current.length && searches < SHRINK_SEARCHES_MAX; at++) {
      const candidate = [...current.slice(0, at), ...current.slice(at + 1)];
      if (candidate.length > 0 && violates(candidate)) {
        current = candidate;
        changed = true;
        at--;
      }
    }
  }
  return current;
}
