/**
 * checkTimestamps: Last-Modified is monotonic per key. When a write of a key was acknowledged
 * before another write of the same key was invoked, the later one is ordered after it (per-key
 * linearizability), so its Last-Modified must not be earlier — unless a delete of the key may
 * fall between them (the key then starts afresh) — whatever the clocks of the nodes that took them (S3 clients sort versions and sync tools compare objects by it). And one value
 * (each written once) has one Last-Modified, whichever node answers. HTTP dates carry whole
 * seconds, so stamps are compared at that resolution.
 *
 * Only values some GET observed with a Last-Modified are judged; the clock nemesis is what makes
 * this check bite (a node whose clock is behind would stamp an overwrite before the original).
 */
import type { RegisterOp } from './register.ts';

/** Result of checkTimestamps. */
export interface TimestampCheck {
  ok: boolean;
  /** Write pairs judged (both values observed with a Last-Modified). */
  pairs: number;
  problems: string[];
}

const second = (ms: number) => Math.floor(ms / 1000);

/** Checks the Last-Modified stamps GETs observed (see the header). */
export function checkTimestamps(ops: readonly RegisterOp[]): TimestampCheck {
  const problems: string[] = [];
  // value -> the Last-Modified every read of it saw
  const stampOf = new Map<string, number>();
  for (const o of ops) {
    if (o.f !== 'get' || o.status !== 'ok' || o.value === null || o.lastModifiedMs === undefined) continue;
    const before = stampOf.get(o.value);
    if (before === undefined) stampOf.set(o.value, o.lastModifiedMs);
    else if (second(before) !== second(o.lastModifiedMs)) problems.push(`${o.key}: value ${o.value} read with Last-Modified ${new Date(before).toISOString()} and ${new Date(o.lastModifiedMs).toISOString()} (${o.client})`);
  }
  const writesByKey = new Map<string, RegisterOp[]>();
  for (const o of ops) {
    if ((o.f !== 'put' && o.f !== 'cas') || o.status !== 'ok' || o.value === null || !stampOf.has(o.value)) continue;
    const list = writesByKey.get(o.key) ?? [];
    writesByKey.set(o.key, list);
    list.push(o);
  }
  // A delete (acknowledged or not) that may fall between two writes lets the key start afresh.
  const deletesByKey = new Map<string, RegisterOp[]>();
  for (const o of ops) {
    if (o.f !== 'delete' || o.status === 'fail') continue;
    const list = deletesByKey.get(o.key) ?? [];
    deletesByKey.set(o.key, list);
    list.push(o);
  }
  const deleteBetween = (key: string, w1: RegisterOp, w2: RegisterOp) =>
    (deletesByKey.get(key) ?? []).some((d) => d.invokeTime < w2.endTime && (d.status === 'info' || !Number.isFinite(d.endTime) || d.endTime > w1.invokeTime));
  let pairs = 0;
  for (const [key, writes] of writesByKey) {
    for (const w1 of writes) {
      for (const w2 of writes) {
        if (w1 === w2 || !(w1.endTime < w2.invokeTime) || deleteBetween(key, w1, w2)) continue;
        pairs++;
        const s1 = stampOf.get(w1.value!)!;
        const s2 = stampOf.get(w2.value!)!;
        if (second(s2) < second(s1)) {
          problems.push(`${key}: ${w2.client} wrote ${w2.value} after ${w1.client}'s ${w1.value} was acknowledged, yet its Last-Modified ${new Date(s2).toISOString()} is ${((s1 - s2) / 1000).toFixed(0)} s earlier than ${new Date(s1).toISOString()}`);
        }
      }
    }
  }
  return { ok: problems.length === 0, pairs, problems: problems.slice(0, 50) };
}
