/**
 * Load and failover measurements of the Raft benchmark, for any BenchSystem: closed-loop
 * proposers against the leader for a fixed time, and kill -9 of the leader with staggered write
 * attempts through the survivors.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { type BenchSystem, waitForStableLeader, type Writer } from './raft-system.ts';

/** Bytes of every proposed command (object body / etcd value). */
export const COMMAND_BYTES = 256;
/** One proposal making no progress for this long counts as an error. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** A row stops early after this many errors. */
export const MAX_ERRORS_PER_ROW = 50;

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user+system CPU seconds of a process so far (0 once it is gone). */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine so far (all CPUs). */
export function machineBusyCpuSeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLK_TCK;
}

/** The q-quantile (0..1) of sorted values (nearest rank). */
export function quantile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** One throughput row of one system. */
export interface RowResult {
  system: string;
  concurrency: number;
  leader: number;
  seconds: number;
  ops: number;
  opsPerSec: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  errors: number;
  errorSamples: string[];
  /** CPU of the load generator process (this one) per op, and as a share of one core. */
  clientCpuUsPerOp: number | undefined;
  clientCpuCores: number;
  /** CPU of all members together per op, and as cores. */
  serverCpuUsPerOp: number | undefined;
  serverCpuCores: number;
  /** Whole-machine busy cores during the window (2 on this machine means saturated). */
  machineBusyCores: number;
  stoppedEarly: boolean;
}

interface CpuSnapshot {
  at: number;
  client: NodeJS.CpuUsage;
  server: number;
  machine: number;
}

function snapshot(system: BenchSystem): CpuSnapshot {
  return {
    at: performance.now(),
    client: process.cpuUsage(),
    server: system.members().reduce((sum, m) => sum + processCpuSeconds(m.pid), 0),
    machine: machineBusyCpuSeconds(),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * `concurrency` closed-loop proposers against the leader: warm-up, then `seconds` of measurement.
 * Throughput counts proposals acknowledged inside the window; latency is of those proposals.
 */
export async function runRow(system: BenchSystem, concurrency: number, seconds: number, warmupSeconds: number, tag: string): Promise<RowResult> {
  const leader = await waitForStableLeader(system, 30_000);
  const writer = system.openWriter(leader, concurrency);
  const value = randomBytes(COMMAND_BYTES);
  const latencies: number[] = [];
  const errorSamples: string[] = [];
  let errors = 0;
  let stoppedEarly = false;
  const tStart = performance.now();
  const tMeasure = tStart + warmupSeconds * 1000;
  const tEnd = tMeasure + seconds * 1000;
  let before: CpuSnapshot | undefined;
  let after: CpuSnapshot | undefined;
  const t1 = setTimeout(() => {
    before = snapshot(system);
  }, tMeasure - performance.now());
  const t2 = setTimeout(() => {
    after = snapshot(system);
  }, tEnd - performance.now());
  const proposer = async (w: number): Promise<void> => {
    let seq = 0;
    while (performance.now() < tEnd && !stoppedEarly) {
      const key = `${tag}-${w}-${seq++}`;
      const start = performance.now();
      try {
        await writer.put(key, value, REQUEST_TIMEOUT_MS);
        const end = performance.now();
        if (end >= tMeasure && end <= tEnd) latencies.push(end - start);
      } catch (err) {
        errors++;
        if (errorSamples.length < 10) errorSamples.push(`${((performance.now() - tStart) / 1000).toFixed(2)}s: ${(err as Error).message}`);
        if (errors >= MAX_ERRORS_PER_ROW) stoppedEarly = true;
        await sleep(10);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, w) => proposer(w)));
  } finally {
    clearTimeout(t1);
    clearTimeout(t2);
    await writer.close();
  }
  before ??= snapshot(system);
  after ??= snapshot(system);
  const windowS = Math.max(1e-3, (after.at - before.at) / 1000);
  const ops = latencies.length;
  latencies.sort((a, b) => a - b);
  const clientCpuS = (after.client.user - before.client.user + after.client.system - before.client.system) / 1e6;
  const serverCpuS = after.server - before.server;
  return {
    system: system.name,
    concurrency,
    leader,
    seconds: windowS,
    ops,
    opsPerSec: ops / windowS,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: latencies.at(-1),
    errors,
    errorSamples,
    clientCpuUsPerOp: ops > 0 ? (clientCpuS * 1e6) / ops : undefined,
    clientCpuCores: clientCpuS / windowS,
    serverCpuUsPerOp: ops > 0 ? (serverCpuS * 1e6) / ops : undefined,
    serverCpuCores: serverCpuS / windowS,
    machineBusyCores: (after.machine - before.machine) / windowS,
    stoppedEarly,
  };
}

/** One kill -9 of the leader. */
export interface FailoverTrial {
  system: string;
  mode: FailureMode;
  trial: number;
  killed: number;
  /** kill -9 (or SIGSTOP) sent → first acknowledged write through a survivor; undefined when none in time. */
  ms: number | undefined;
  /** The survivor that took that write. */
  via: number | undefined;
  newLeader: number | undefined;
  attempts: number;
  failedAttempts: number;
  errorSamples: string[];
  /** Restart of the killed member (or SIGCONT of the frozen one) and a stable leader again, ms. */
  recoveryMs: number | undefined;
  /** Wall-clock time of the kill (epoch ms), to line the trial up with the members' logs. */
  killEpochMs?: number;
  error?: string;
}

/** Spacing of write attempts per survivor after the kill: the resolution of the measurement. */
export const ATTEMPT_INTERVAL_MS = 10;
const MAX_INFLIGHT_PER_SURVIVOR = 200;

/** A write through every member succeeds (they are all connected to the leader). */
async function writeThroughEach(system: BenchSystem, tag: string, timeoutMs: number): Promise<void> {
  const value = randomBytes(COMMAND_BYTES);
  for (const m of system.members()) {
    const writer = system.openWriter(m.id, 1);
    const deadline = Date.now() + timeoutMs;
    try {
      for (let i = 0; ; i++) {
        try {
          await writer.put(`${tag}-check-${m.id}-${i}`, value, Math.max(500, deadline - Date.now()));
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`${system.name}: write through member ${m.id} keeps failing: ${(err as Error).message}`);
          await sleep(100);
        }
      }
    } finally {
      await writer.close();
    }
  }
}

/** Brings a system back to 3 healthy members with an agreed leader. */
export async function settle(system: BenchSystem, tag: string): Promise<number> {
  for (const m of system.members()) if (m.pid === undefined) await system.restart(m.id);
  await waitForStableLeader(system, 30_000);
  await writeThroughEach(system, tag, 20_000);
  return waitForStableLeader(system, 30_000);
}

/** Kills the leader, measures the time to the first acknowledged write through a survivor, restarts it. */
/**
 * How the leader fails: 'kill' = kill -9 (the process is gone, the kernel closes its sockets);
 * 'freeze' = SIGSTOP until a survivor took a write, then SIGCONT (the process hangs with its
 * connections open, like a long GC pause or a stuck disk: only a timeout can tell).
 */
export type FailureMode = 'kill' | 'freeze';

export async function failoverTrial(system: BenchSystem, trial: number, tag: string, timeoutMs: number, mode: FailureMode = 'kill'): Promise<FailoverTrial> {
  const killed = await settle(system, `${tag}-pre`);
  // Let heartbeats flow for a moment after the checks, as in a quiet steady state.
  await sleep(500);
  const survivors = system.members().map((m) => m.id).filter((id) => id !== killed);
  const writers = new Map<number, Writer>(survivors.map((id) => [id, system.openWriter(id, MAX_INFLIGHT_PER_SURVIVOR)]));
  const value = randomBytes(COMMAND_BYTES);
  const result: FailoverTrial = { system: system.name, mode, trial, killed, ms: undefined, via: undefined, newLeader: undefined, attempts: 0, failedAttempts: 0, errorSamples: [], recoveryMs: undefined };
  const tKill = performance.now();
  result.killEpochMs = Date.now();
  const pid = system.members().find((m) => m.id === killed)?.pid;
  if (mode === 'freeze' && pid === undefined) throw new Error(`no pid for member ${killed}`);
  let frozen = false;
  try {
    if (mode === 'kill') await system.kill(killed);
    else {
      process.kill(pid!, 'SIGSTOP');
      frozen = true;
    }
    let done = false;
    const won = await new Promise<{ ms: number; via: number } | undefined>((resolve) => {
      const inflight = new Map<number, number>(survivors.map((id) => [id, 0]));
      let seq = 0;
      const finish = (v: { ms: number; via: number } | undefined) => {
        if (done) return;
        done = true;
        clearInterval(timer);
        clearTimeout(giveUp);
        resolve(v);
      };
      const attempt = () => {
        for (const id of survivors) {
          if (done || inflight.get(id)! >= MAX_INFLIGHT_PER_SURVIVOR) continue;
          inflight.set(id, inflight.get(id)! + 1);
          result.attempts++;
          writers
            .get(id)!
            .put(`${tag}-${id}-${seq++}`, value, timeoutMs)
            .then(
              () => finish({ ms: performance.now() - tKill, via: id }),
              (err: unknown) => {
                if (done) return;
                result.failedAttempts++;
                if (result.errorSamples.length < 6) result.errorSamples.push(`+${Math.round(performance.now() - tKill)}ms via ${id}: ${(err as Error).message}`);
              },
            )
            .finally(() => inflight.set(id, inflight.get(id)! - 1));
        }
      };
      const timer = setInterval(attempt, ATTEMPT_INTERVAL_MS);
      const giveUp = setTimeout(() => finish(undefined), timeoutMs);
      attempt();
    });
    result.ms = won?.ms;
    result.via = won?.via;
    if (!won) result.error = `no write acknowledged within ${timeoutMs} ms of ${mode === 'kill' ? 'kill -9' : 'SIGSTOP'}`;
    try {
      result.newLeader = await waitForStableLeader(system, 10_000, survivors);
    } catch (err) {
      result.error ??= (err as Error).message;
    }
  } finally {
    if (frozen) process.kill(pid!, 'SIGCONT');
    await Promise.all([...writers.values()].map((w) => w.close().catch(() => undefined)));
  }
  const tRecover = performance.now();
  if (mode === 'kill') await system.restart(killed);
  await settle(system, `${tag}-post`);
  result.recoveryMs = performance.now() - tRecover;
  return result;
}
