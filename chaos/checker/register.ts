/**
 * The chaos suite's S3 checks over a recorded history:
 *
 *   - checkRegisters: per-key linearizability of objects used as registers: PUT, GET, DELETE and
 *     conditional PUT (If-Match: etag / If-None-Match: *) as compare-and-set. Every written value
 *     is unique, so "If-Match the ETag of value v" is "compare v and set".
 *   - checkDurability: after healing, every key's final value is one that no acknowledged write or
 *     delete superseded (a lost write, a resurrected delete and corrupt bytes are all caught).
 *   - checkListings: a LIST invoked after a PUT was acknowledged contains the key, and after a
 *     DELETE was acknowledged does not, unless a concurrent write or delete of the key could explain
 *     it; a listing never shows a key that was never written.
 *
 * Status follows Jepsen: 'ok' (acknowledged), 'fail' (definitely did not take effect: a 4xx, a
 * refused connection; a conditional PUT refused with 412 PreconditionFailed also tells that its
 * condition was false), 'info' (indeterminate: timeout, connection reset, 5xx — it may or may
 * not have taken effect; the checker gives it completion time Infinity).
 */
import { checkPartitioned, type Model, type PartitionedResult, type TimedOp } from './linearizability.ts';

/** Jepsen's outcome of an operation. */
export type OpStatus = 'ok' | 'fail' | 'info';

/** One register operation on one key, as a client saw it. */
export interface RegisterOp {
  id: number;
  /** Which client (and through which node) ran it, for people reading a violation. */
  client: string;
  key: string;
  f: 'put' | 'get' | 'cas' | 'delete';
  /** put/cas: the value written; get: the value observed (null: the key was absent). */
  value: string | null;
  /** cas: the value that must be current for the write to apply (null: If-None-Match: *). */
  expect?: string | null;
  /**
   * cas with status 'fail': the server answered that the condition did not hold (412, or 404
   * for If-Match on an absent key), which is an observation. Any other definite failure (a
   * refused connection, a 400) observed nothing.
   */
  refused?: boolean;
  status: OpStatus;
  invokeTime: number;
  /** When the answer came (or the client gave up), whatever the status. */
  endTime: number;
  error?: string;
  /** get with status 'ok' and a value: the Last-Modified the answer carried (ms; HTTP dates have whole seconds). */
  lastModifiedMs?: number;
}

/** A register op as the search sees it: indeterminate ops complete at Infinity. */
export interface TimedRegisterOp extends TimedOp {
  op: RegisterOp;
}

/** The register's sequential specification; the state is the current value (null: absent). */
export const REGISTER_MODEL: Model<string | null, TimedRegisterOp> = {
  init: () => null,
  hash: (state) => (state === null ? '\u0000' : `=${state}`),
  step(state, { op }) {
    switch (op.f) {
      case 'get':
        return op.value === state ? state : undefined;
      case 'put':
        return op.value;
      case 'delete':
        return null;
      case 'cas':
        // A refused conditional write is a read: the condition was false at that point.
        if (op.status === 'fail') return state !== op.expect ? state : undefined;
        return state === op.expect ? op.value : undefined;
    }
  },
};

/** What the search should see of an op, or undefined when it carries no information. */
function timed(op: RegisterOp): TimedRegisterOp | undefined {
  if (op.status === 'fail' && !(op.f === 'cas' && op.refused === true)) return undefined; // definitely did nothing
  if (op.status !== 'ok' && op.f === 'get') return undefined; // a failed read observed nothing
  return { op, invokeTime: op.invokeTime, completeTime: op.status === 'info' ? Number.POSITIVE_INFINITY : op.endTime };
}

/** The value an op needs someone to have written (a read's value, a compare-and-set's expected value). */
function observed(op: RegisterOp): string | null {
  if (op.f === 'get') return op.value;
  if (op.f === 'cas' && op.status !== 'fail') return op.expect ?? null;
  return null;
}

/** A sub-history keeps, for every value its ops observed, the writes of it the whole history had. */
export function keepsWriters(candidate: readonly TimedRegisterOp[], history: readonly TimedRegisterOp[]): boolean {
  const written = new Set(candidate.filter((o) => o.op.f === 'put' || o.op.f === 'cas').map((o) => o.op.value));
  for (const o of candidate) {
    const v = observed(o.op);
    if (v === null || written.has(v)) continue;
    if (history.some((w) => (w.op.f === 'put' || w.op.f === 'cas') && w.op.value === v)) return false;
  }
  return true;
}

/** Result of checkRegisters: violations carry minimal offending sub-histories. */
export interface RegisterCheck {
  ok: boolean | 'unknown';
  keys: number;
  ops: number;
  explored: number;
  unknownKeys: string[];
  violations: Array<{ key: string; ops: number; minimal: RegisterOp[]; text: string }>;
}

/** Per-key linearizability of register operations. */
export function checkRegisters(ops: readonly RegisterOp[], options: { budget?: number } = {}): RegisterCheck {
  const timedOps = ops.map(timed).filter((o): o is TimedRegisterOp => o !== undefined);
  const r: PartitionedResult<TimedRegisterOp> = checkPartitioned(REGISTER_MODEL, timedOps, (o) => o.op.key, { ...options, admissible: keepsWriters });
  const origin = ops.length > 0 ? Math.min(...ops.map((o) => o.invokeTime)) : 0;
  return {
    ok: r.ok,
    keys: r.keys,
    ops: timedOps.length,
    explored: r.explored,
    unknownKeys: r.unknown,
    violations: r.violations.map((v) => {
      const minimal = v.minimal.map((o) => o.op);
      return {
        key: v.key,
        ops: v.history.length,
        minimal,
        text: `key ${v.key}: not linearizable (${v.history.length} ops); a minimal offending sub-history:\n${minimal.map((o) => formatOp(o, origin)).join('\n')}`,
      };
    }),
  };
}

/** One op on one line: `[invoke, end] client f(key) ...`, times in ms from `origin`. */
export function formatOp(o: RegisterOp, origin = 0): string {
  const t = (x: number) => (x - origin).toFixed(0).padStart(6);
  const what =
    o.f === 'get'
      ? `get -> ${o.value ?? 'absent'}`
      : o.f === 'put'
        ? `put ${o.value}`
        : o.f === 'delete'
          ? 'delete'
          : `cas ${o.expect ?? 'absent'} -> ${o.value}`;
  return `  [${t(o.invokeTime)}, ${o.status === 'info' ? '     ?' : t(o.endTime)}] ${o.client.padEnd(8)} ${o.key} ${what}  ${o.status}${o.error ? ` (${o.error})` : ''}`;
}

/** What a final read after healing found for a key. */
export interface FinalRead {
  key: string;
  /** Node it was read from. */
  node: number;
  /** The value (null: absent), or undefined when the read itself failed. */
  value: string | null | undefined;
  /** The body had exactly the bytes written with that value. */
  bytesOk: boolean;
}

/** Result of checkDurability. */
export interface DurabilityCheck {
  ok: boolean;
  keys: number;
  problems: string[];
}

/** Ops that change a key, with whether they may have taken effect. */
function writesOf(ops: readonly RegisterOp[]): RegisterOp[] {
  return ops.filter((o) => o.f !== 'get' && o.status !== 'fail');
}

/** True when `a` was acknowledged and invoked after `b` completed: a's effect lies after b's. */
function supersedes(a: RegisterOp, b: { status: OpStatus; endTime: number }): boolean {
  return a.status === 'ok' && b.status !== 'info' && a.invokeTime > b.endTime;
}

/**
 * Durability: the final value of each key (read from every node after healing) must be the value
 * of a write (or absence after a delete, or the initial absence) that no acknowledged write or
 * delete superseded, with the exact bytes written, and every node must answer the same.
 */
export function checkDurability(ops: readonly RegisterOp[], finals: readonly FinalRead[]): DurabilityCheck {
  const problems: string[] = [];
  const byKey = new Map<string, RegisterOp[]>();
  for (const o of ops) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  const finalsByKey = new Map<string, FinalRead[]>();
  for (const f of finals) finalsByKey.set(f.key, [...(finalsByKey.get(f.key) ?? []), f]);
  for (const [key, keyOps] of byKey) {
    const writes = writesOf(keyOps);
    const reads = finalsByKey.get(key) ?? [];
    if (writes.length === 0) continue;
    if (reads.length === 0) {
      problems.push(`key ${key}: no final read`);
      continue;
    }
    const values = new Set(reads.map((r) => (r.value === undefined ? '<read failed>' : (r.value ?? '<absent>'))));
    if (values.size > 1) problems.push(`key ${key}: nodes disagree after healing: ${reads.map((r) => `node ${r.node}: ${r.value === undefined ? 'read failed' : (r.value ?? 'absent')}`).join(', ')}`);
    for (const r of reads) {
      if (r.value === undefined) {
        problems.push(`key ${key}: final read from node ${r.node} failed`);
        continue;
      }
      if (!r.bytesOk) problems.push(`key ${key}: node ${r.node} served bytes that are not those written for ${r.value}`);
      // Which ops could have produced the value read?
      const producers: Array<{ status: OpStatus; endTime: number; what: string }> =
        r.value === null
          ? [{ status: 'ok', endTime: Number.NEGATIVE_INFINITY, what: 'initial absence' }, ...writes.filter((w) => w.f === 'delete').map((w) => ({ ...w, what: `delete #${w.id}` }))]
          : writes.filter((w) => w.f !== 'delete' && w.value === r.value).map((w) => ({ ...w, what: `write #${w.id}` }));
      if (producers.length === 0) {
        problems.push(`key ${key}: node ${r.node} returned ${r.value}, which no one wrote`);
        continue;
      }
      const alive = producers.filter((p) => !writes.some((w) => supersedes(w, p)));
      if (alive.length === 0) {
        const lost = writes.filter((w) => producers.some((p) => supersedes(w, p)));
        problems.push(
          `key ${key}: node ${r.node} returned ${r.value ?? 'absent'} (${producers.map((p) => p.what).join(', ')}), but later acknowledged ` +
            `${lost.map((w) => `${w.f} #${w.id}${w.f === 'delete' ? '' : ` (${w.value})`}`).join(', ')} must have replaced it: lost ${lost.some((w) => w.f === 'delete') ? 'delete or write' : 'write'}`,
        );
      }
    }
  }
  return { ok: problems.length === 0, keys: byKey.size, problems };
}

/** One LIST of a prefix, as a client saw it. */
export interface ListOp {
  id: number;
  client: string;
  prefix: string;
  /** Keys listed (ok only). */
  keys: string[];
  status: OpStatus;
  invokeTime: number;
  endTime: number;
}

/** Result of checkListings. */
export interface ListingCheck {
  ok: boolean;
  lists: number;
  problems: string[];
}

/**
 * List-after-write and list-after-delete. For each acknowledged LIST L and each key k under its
 * prefix: k must be listed if an acknowledged write of k completed before L was invoked and no
 * delete of k could have taken effect between that write's invocation and L's completion; k must
 * not be listed if an acknowledged delete completed before L and no write could have taken
 * effect between that delete's invocation and L's completion. A listed key must have been written.
 */
export function checkListings(ops: readonly RegisterOp[], lists: readonly ListOp[]): ListingCheck {
  const problems: string[] = [];
  const writesByKey = new Map<string, RegisterOp[]>();
  for (const w of writesOf(ops)) writesByKey.set(w.key, [...(writesByKey.get(w.key) ?? []), w]);
  let checked = 0;
  for (const l of lists) {
    if (l.status !== 'ok') continue;
    checked++;
    const listed = new Set(l.keys);
    // Could `o` have taken effect inside [from, l.endTime]?
    const mayFallIn = (o: RegisterOp, from: number) => o.invokeTime < l.endTime && (o.status === 'info' || o.endTime > from);
    for (const [key, writes] of writesByKey) {
      if (!key.startsWith(l.prefix)) continue;
      const puts = writes.filter((w) => w.f !== 'delete');
      const deletes = writes.filter((w) => w.f === 'delete');
      const mustHave = puts.find((w) => w.status === 'ok' && w.endTime < l.invokeTime && !deletes.some((d) => mayFallIn(d, w.invokeTime)));
      const mustLack = deletes.find((d) => d.status === 'ok' && d.endTime < l.invokeTime && !puts.some((w) => mayFallIn(w, d.invokeTime)));
      if (mustHave && !listed.has(key)) problems.push(`list #${l.id} (${l.client}) of ${l.prefix} misses ${key}, written by #${mustHave.id} before the list began`);
      if (mustLack && listed.has(key)) problems.push(`list #${l.id} (${l.client}) of ${l.prefix} shows ${key}, deleted by #${mustLack.id} before the list began`);
    }
    for (const key of listed) {
      if (!(writesByKey.get(key) ?? []).some((w) => w.f !== 'delete' && w.invokeTime < l.endTime)) problems.push(`list #${l.id} (${l.client}) shows ${key}, which no one had written`);
    }
  }
  return { ok: problems.length === 0, lists: checked, problems };
}
