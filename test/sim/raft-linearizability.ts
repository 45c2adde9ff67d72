/**
 * The Raft simulator's register checker: put/get histories checked per key for linearizability
 * by the project's one Wing & Gong search (chaos/checker/linearizability.ts), with a plain
 * register as the model.
 *
 * An operation has an invocation time and a completion time. A put whose outcome is unknown (the
 * client timed out) is "indeterminate": completion = Infinity, and it may take effect at any point
 * after its invocation, or never.
 */
import { type Model, searchLinearization } from '../../chaos/checker/linearizability.ts';

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

/** A register: the state is its value (null = absent). */
const REGISTER: Model<string | null, RegisterOp> = {
  init: () => null,
  hash: (state) => (state === null ? '\u0000' : `=${state}`),
  step: (state, op) => (op.kind === 'put' ? op.value : op.value === state ? state : undefined),
};

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

/** Searches for a linearization of one register's history. */
export function checkRegister(key: string, history: readonly RegisterOp[], budget: number): LinearizabilityResult {
  const r = searchLinearization(REGISTER, history, budget);
  if (r.ok === true) return r;
  if (r.ok === 'unknown') return { ok: 'unknown', key, explored: r.explored, reason: r.reason };
  const ops = [...history].sort((a, b) => a.invokeTime - b.invokeTime);
  return { ok: false, key, explored: r.explored, reason: `no linearization of ${ops.length} ops on key ${key}:\n${ops.map(fmtOp).join('\n')}` };
}

function fmtOp(o: RegisterOp): string {
  const end = o.completeTime === Number.POSITIVE_INFINITY ? '?' : String(o.completeTime);
  return `  [${o.invokeTime}, ${end}] ${o.id} ${o.kind}(${o.key}) ${o.kind === 'put' ? '<-' : '->'} ${o.value}`;
}
