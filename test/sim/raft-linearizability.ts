/**
 * Linearizability checker for a history of single-key register operations (put/get), in the style
 * of Wing & Gong with Lowe's memoisation (as Knossos and Porcupine do), run per key
 * (P-compositionality: a history is linearizable iff each key's sub-history is).
 *
 * An operation has an invocation time and a completion time. A put whose outcome is unknown (the
 * client timed out) is "indeterminate": completion = Infinity, and it may take effect at any point
 * after its invocation, or never.
 */

/** One client operation on a register. */
export interface RegisterOp {
  /** Unique id (for messages). */
  id: string;
  kind: 'put' | 'get';
  key: string;
  /** put: the value written; get: the value observed (null = key absent). */
  value: string | null;
  invokeTime: number;
  /** Completion time, or Infinity when the outcome is unknown (puts only). */
  completeTime: number;
}

/** Result of a check. */
export type LinearizabilityResult =
  | { ok: true; explored: number }
  | { ok: false; key: string; explored: number; reason: string }
  | { ok: 'unknown'; key: string; explored: number; reason: string };

/** Checks every key's sub-history; `budget` bounds explored states per key. */
export function checkHistory(ops: readonly RegisterOp[], budget = 500_000): LinearizabilityResult {
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of ops) {
    if (op.kind === 'get' && op.completeTime === Number.POSITIVE_INFINITY) {
      throw new Error(`get ${op.id} without completion must be removed from the history`);
    }
    let list = byKey.get(op.key);
    if (list === undefined) {
      list = [];
      byKey.set(op.key, list);
    }
    list.push(op);
  }
  let explored = 0;
  for (const key of [...byKey.keys()].sort()) {
    const r = checkRegister(key, byKey.get(key) ?? [], budget);
    explored += r.explored;
    if (r.ok !== true) return { ...r, explored };
  }
  return { ok: true, explored };
}

/**
 * Depth-first search for a linearization of one register's history.
 * State = (set of linearized ops, current value). An op may be linearized next iff it was invoked
 * before the earliest completion among the ops not yet linearized (otherwise that op would have to
 * come first). Done when every op with a known completion is linearized.
 */
export function checkRegister(
  key: string,
  history: readonly RegisterOp[],
  budget: number,
): LinearizabilityResult {
  const ops = [...history].sort((a, b) => a.invokeTime - b.invokeTime || a.id.localeCompare(b.id));
  const n = ops.length;
  const determinate = ops.filter((o) => o.completeTime !== Number.POSITIVE_INFINITY).length;
  const seen = new Set<string>();
  let explored = 0;
  const done = new Uint8Array(n);

  // Iterative DFS to avoid deep recursion on long histories.
  type Frame = { value: string | null; doneCount: number; candidates: number[]; next: number; chosen: number };
  const candidatesOf = (value: string | null): number[] => {
    let minComplete = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const o = ops[i];
      if (o !== undefined && done[i] === 0 && o.completeTime < minComplete) minComplete = o.completeTime;
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const o = ops[i];
      if (o === undefined || done[i] === 1) continue;
      if (o.invokeTime > minComplete) break; // sorted by invoke: no later op qualifies
      if (o.kind === 'get' && o.value !== value) continue;
      out.push(i);
    }
    return out;
  };
  const stateKey = (value: string | null): string => `${value === null ? '\u0000' : value}|${Buffer.from(done).toString('base64')}`;

  const stack: Frame[] = [{ value: null, doneCount: 0, candidates: candidatesOf(null), next: 0, chosen: -1 }];
  seen.add(stateKey(null));
  let doneDeterminate = 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top === undefined) break;
    if (doneDeterminate === determinate) return { ok: true, explored };
    if (top.next >= top.candidates.length) {
      // Backtrack: undo the op that led to this frame.
      stack.pop();
      if (top.chosen >= 0) {
        done[top.chosen] = 0;
        if (ops[top.chosen]?.completeTime !== Number.POSITIVE_INFINITY) doneDeterminate--;
      }
      continue;
    }
    const i = top.candidates[top.next++];
    if (i === undefined) continue;
    const op = ops[i];
    if (op === undefined) continue;
    const value = op.kind === 'put' ? op.value : top.value;
    done[i] = 1;
    const k = stateKey(value);
    if (seen.has(k)) {
      done[i] = 0;
      continue;
    }
    seen.add(k);
    explored++;
    if (explored > budget) {
      return { ok: 'unknown', key, explored, reason: `search budget ${budget} exhausted (${n} ops)` };
    }
    if (op.completeTime !== Number.POSITIVE_INFINITY) doneDeterminate++;
    stack.push({ value, doneCount: top.doneCount + 1, candidates: candidatesOf(value), next: 0, chosen: i });
  }
  if (doneDeterminate === determinate) return { ok: true, explored };
  return {
    ok: false,
    key,
    explored,
    reason: `no linearization of ${n} ops on key ${key}:\n${ops.map(fmtOp).join('\n')}`,
  };
}

function fmtOp(o: RegisterOp): string {
  const end = o.completeTime === Number.POSITIVE_INFINITY ? '?' : String(o.completeTime);
  return `  [${o.invokeTime}, ${end}] ${o.id} ${o.kind}(${o.key}) ${o.kind === 'put' ? '<-' : '->'} ${o.value}`;
}
