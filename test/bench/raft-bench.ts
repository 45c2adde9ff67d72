/**
 * `npm run bench:raft`: ts3gw's Raft against a 3-member etcd cluster (Debian's etcd-server) on the
 * same machine, both with fsync on, so the figures are ratios.
 *
 *   throughput  committed proposals/s and p50/p99 commit latency at 1, 16, 64, 256 concurrent
 *               proposers (256-byte commands), each row: BENCH_WARMUP_SECONDS warm-up, then
 *               BENCH_SECONDS measured; systems alternate first/second per row.
 *               ts3gw: one proposal = one PutObject command of a 256-byte inline object sent to
 *               the leader over one ProposeStream (one HTTP/2 connection; answered once applied);
 *               BENCH_TS3GW_CLIENT=unary: one unary Propose call each, as etcd's client does;
 *               BENCH_TS3GW_CLIENT=s3: one SigV4 PutObject over keep-alive HTTP/1.1 (one
 *               connection per proposer), i.e. the whole S3 write path.
 *               etcd:  one proposal = one KV Put of a 256-byte value to the leader over its gRPC v3
 *               API (one HTTP/2 connection).
 *   failover    kill -9 the leader → first acknowledged write through a survivor (attempts every
 *               10 ms on each survivor), BENCH_FAILOVER_TRIALS trials per system, killed member
 *               restarted between trials; with default timeouts (ts3gw 100 ms × 10 ticks, etcd
 *               --heartbeat-interval 100 --election-timeout 1000) and aggressive ones (ts3gw 20 ms ×
 *               10 ticks, etcd 20/200). Two ways for the leader to fail: kill -9 (ts3gw's
 *               followers see its Raft port refuse connections and elect at once) and SIGSTOP
 *               until a survivor took a write (a hung leader with open connections: only the
 *               election timeout can tell, in both systems).
 *
 * Environment: BENCH_SECONDS (5), BENCH_WARMUP_SECONDS (1), BENCH_CONCURRENCY (1,16,64,256),
 * BENCH_FAILOVER_TRIALS (3), BENCH_FAILURE_MODES (kill,freeze), BENCH_FAILOVER_TIMEOUT_MS (30000), BENCH_SKIP_THROUGHPUT=1,
 * BENCH_SKIP_FAILOVER=1, BENCH_SKIP_AGGRESSIVE=1, BENCH_MAX_MINUTES (40: hard stop),
 * BENCH_ETCD_BIN (etcd), BENCH_TS3GW_LOG_LEVEL (warn), BENCH_TS3GW_CLIENT (stream | unary | s3).
 * Output: tables on stdout and bench-results/raft-bench-<timestamp>.json.
 * Needs etcd: apt-get install -y etcd-server etcd-client.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { etcdVersion, startEtcdCluster } from './raft-etcd.ts';
import { ATTEMPT_INTERVAL_MS, COMMAND_BYTES, type FailoverTrial, type FailureMode, failoverTrial, quantile, type RowResult, runRow, settle } from './raft-load.ts';
import { type BenchSystem, startTs3gwCluster, waitForStableLeader } from './raft-system.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return n;
}

const SECONDS = envNumber('BENCH_SECONDS', 5);
const WARMUP_SECONDS = envNumber('BENCH_WARMUP_SECONDS', 1);
const CONCURRENCY = (process.env['BENCH_CONCURRENCY'] ?? '1,16,64,256').split(',').filter(Boolean).map(Number);
const FAILOVER_TRIALS = Math.floor(envNumber('BENCH_FAILOVER_TRIALS', 3));
const FAILURE_MODES = (process.env['BENCH_FAILURE_MODES'] ?? 'kill,freeze').split(',').filter(Boolean) as FailureMode[];
for (const m of FAILURE_MODES) if (m !== 'kill' && m !== 'freeze') throw new Error(`BENCH_FAILURE_MODES: unknown mode ${m}`);
const FAILOVER_TIMEOUT_MS = envNumber('BENCH_FAILOVER_TIMEOUT_MS', 30_000);
const SKIP_THROUGHPUT = process.env['BENCH_SKIP_THROUGHPUT'] === '1';
const SKIP_FAILOVER = process.env['BENCH_SKIP_FAILOVER'] === '1';
const SKIP_AGGRESSIVE = process.env['BENCH_SKIP_AGGRESSIVE'] === '1';
const MAX_MINUTES = envNumber('BENCH_MAX_MINUTES', 40);
if (CONCURRENCY.some((c) => !Number.isSafeInteger(c) || c < 1 || c > 1024)) throw new Error('BENCH_CONCURRENCY must list integers 1..1024');

const TIMINGS = {
  default: { ts3gw: { tickMs: 100, electionTicks: 10 }, etcd: { heartbeatMs: 100, electionMs: 1000 } },
  aggressive: { ts3gw: { tickMs: 20, electionTicks: 10 }, etcd: { heartbeatMs: 20, electionMs: 200 } },
} as const;

/** Everything to undo on the way out, newest first. */
const cleanups: Array<() => Promise<void>> = [];

async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (err) {
      console.error('cleanup failed:', err);
    }
  }
  killLeftoverChildren();
}

/** Safety net: SIGKILL, by PID, any child process of this one still running (e.g. a server whose start timed out). */
function killLeftoverChildren(): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) {
        console.error(`killing leftover child process ${entry}`);
        process.kill(Number(entry), 'SIGKILL');
      }
    } catch {
      // gone already
    }
  }
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

function machineInfo() {
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    etcd: etcdVersion(),
    commit: git(['rev-parse', 'HEAD']),
    dirty: (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
    loadAvgAtStart: os.loadavg(),
  };
}

// ---------------------------------------------------------------------------------- formatting

const f0 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(0));
const f1 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(1));
const f2 = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(2));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

interface RowPair {
  concurrency: number;
  first: string;
  ts3gw: RowResult;
  etcd: RowResult;
  ratioOpsPerSec: number | undefined;
  ratioP50: number | undefined;
  ratioP99: number | undefined;
}

function throughputTable(pairs: RowPair[]): string {
  return table(
    ['conc', 'ts3gw ops/s', 'p50 ms', 'p99 ms', 'err', 'etcd ops/s', 'p50 ms', 'p99 ms', 'err', 'ops ratio', 'p50 ratio', 'p99 ratio', 'cli µs/op t/e', 'srv µs/op t/e', 'busy cores t/e'],
    pairs.map((p) => [
      String(p.concurrency),
      f0(p.ts3gw.opsPerSec),
      f1(p.ts3gw.p50Ms),
      f1(p.ts3gw.p99Ms),
      String(p.ts3gw.errors),
      f0(p.etcd.opsPerSec),
      f1(p.etcd.p50Ms),
      f1(p.etcd.p99Ms),
      String(p.etcd.errors),
      f2(p.ratioOpsPerSec),
      f2(p.ratioP50),
      f2(p.ratioP99),
      `${f0(p.ts3gw.clientCpuUsPerOp)}/${f0(p.etcd.clientCpuUsPerOp)}`,
      `${f0(p.ts3gw.serverCpuUsPerOp)}/${f0(p.etcd.serverCpuUsPerOp)}`,
      `${f2(p.ts3gw.machineBusyCores)}/${f2(p.etcd.machineBusyCores)}`,
    ]),
  );
}

interface FailoverSummary {
  timing: string;
  mode: FailureMode;
  system: string;
  settings: string;
  trials: FailoverTrial[];
  minMs: number | undefined;
  medianMs: number | undefined;
  maxMs: number | undefined;
  failed: number;
}

function summarise(timing: string, mode: FailureMode, system: string, settings: string, trials: FailoverTrial[]): FailoverSummary {
  const ok = trials.map((t) => t.ms).filter((ms): ms is number => ms !== undefined).sort((a, b) => a - b);
  return { timing, mode, system, settings, trials, minMs: ok[0], medianMs: quantile(ok, 0.5), maxMs: ok.at(-1), failed: trials.length - ok.length };
}

function failoverTable(rows: FailoverSummary[]): string {
  return table(
    ['timeouts', 'leader', 'system', 'settings', 'trials', 'min ms', 'median ms', 'max ms', 'failed', 'each (ms)'],
    rows.map((r) => [r.timing, r.mode === 'kill' ? 'kill -9' : 'SIGSTOP', r.system, r.settings, String(r.trials.length), f0(r.minMs), f0(r.medianMs), f0(r.maxMs), String(r.failed), r.trials.map((t) => f0(t.ms)).join(',')]),
  );
}

// ---------------------------------------------------------------------------------- phases

async function startPair(timing: keyof typeof TIMINGS): Promise<{ ts3gw: BenchSystem; etcd: BenchSystem }> {
  const t = TIMINGS[timing];
  const etcd = await startEtcdCluster(t.etcd, cleanups);
  const ts3gw = await startTs3gwCluster(t.ts3gw, cleanups);
  await waitForStableLeader(etcd, 30_000);
  await settle(etcd, `start-${timing}`);
  await settle(ts3gw, `start-${timing}`);
  return { ts3gw, etcd };
}

async function throughput(systems: { ts3gw: BenchSystem; etcd: BenchSystem }, evidence: Record<string, unknown>[]): Promise<RowPair[]> {
  const pairs: RowPair[] = [];
  for (const [i, c] of CONCURRENCY.entries()) {
    const order: ('ts3gw' | 'etcd')[] = i % 2 === 0 ? ['ts3gw', 'etcd'] : ['etcd', 'ts3gw'];
    const results: Partial<Record<'ts3gw' | 'etcd', RowResult>> = {};
    for (const name of order) {
      const system = systems[name];
      process.stdout.write(`  ${name} × ${c} … `);
      const r = await runRow(system, c, SECONDS, WARMUP_SECONDS, `c${c}`);
      results[name] = r;
      console.log(`${f0(r.opsPerSec)} ops/s, p50 ${f1(r.p50Ms)} ms, p99 ${f1(r.p99Ms)} ms, errors ${r.errors}, client ${f0(r.clientCpuUsPerOp)} µs/op (${f2(r.clientCpuCores)} cores), servers ${f0(r.serverCpuUsPerOp)} µs/op (${f2(r.serverCpuCores)} cores), machine ${f2(r.machineBusyCores)} cores busy`);
      if (r.errors > 0) {
        console.log(`    errors: ${r.errorSamples.slice(0, 3).join(' | ')}`);
        evidence.push({ where: `throughput ${name} × ${c}`, errorSamples: r.errorSamples, leaderOutputTail: system.output(r.leader).slice(-40) });
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    const ts3gw = results.ts3gw!;
    const etcd = results.etcd!;
    pairs.push({
      concurrency: c,
      first: order[0]!,
      ts3gw,
      etcd,
      ratioOpsPerSec: ratio(ts3gw.opsPerSec, etcd.opsPerSec),
      ratioP50: ratio(ts3gw.p50Ms, etcd.p50Ms),
      ratioP99: ratio(ts3gw.p99Ms, etcd.p99Ms),
    });
  }
  return pairs;
}

async function failover(timing: keyof typeof TIMINGS, mode: FailureMode, systems: { ts3gw: BenchSystem; etcd: BenchSystem }, evidence: Record<string, unknown>[]): Promise<FailoverSummary[]> {
  const trials: Record<'ts3gw' | 'etcd', FailoverTrial[]> = { ts3gw: [], etcd: [] };
  for (let k = 0; k < FAILOVER_TRIALS; k++) {
    const order: ('ts3gw' | 'etcd')[] = k % 2 === 0 ? ['ts3gw', 'etcd'] : ['etcd', 'ts3gw'];
    for (const name of order) {
      const system = systems[name];
      process.stdout.write(`  ${timing} ${mode} ${name} trial ${k + 1}: `);
      const t = await failoverTrial(system, k + 1, `fo-${timing}-${mode}-${k}`, FAILOVER_TIMEOUT_MS, mode);
      trials[name].push(t);
      console.log(`${mode === 'kill' ? 'killed' : 'froze'} ${t.killed} → first write ${f0(t.ms)} ms via ${t.via ?? '-'} (new leader ${t.newLeader ?? '-'}; ${t.attempts} attempts, ${t.failedAttempts} failed; back to 3 in ${f0(t.recoveryMs)} ms)${t.error ? ` ERROR ${t.error}` : ''}`);
      if (t.error || t.ms === undefined) {
        evidence.push({ where: `failover ${timing} ${mode} ${name} trial ${k + 1}`, error: t.error, errorSamples: t.errorSamples, survivorsOutputTail: system.members().filter((m) => m.id !== t.killed).map((m) => ({ id: m.id, tail: system.output(m.id).slice(-40) })) });
      }
    }
  }
  const t = TIMINGS[timing];
  return [
    summarise(timing, mode, 'ts3gw', `tick ${t.ts3gw.tickMs} ms × ${t.ts3gw.electionTicks}`, trials.ts3gw),
    summarise(timing, mode, 'etcd', `hb ${t.etcd.heartbeatMs} / election ${t.etcd.electionMs} ms`, trials.etcd),
  ];
}

async function stopPair(systems: { ts3gw: BenchSystem; etcd: BenchSystem }): Promise<void> {
  await systems.ts3gw.stop();
  await systems.etcd.stop();
}

async function main(): Promise<void> {
  const version = etcdVersion();
  if (!version) throw new Error('etcd not found: apt-get update && apt-get install -y etcd-server etcd-client (or set BENCH_ETCD_BIN)');
  const machine = machineInfo();
  const startedAt = new Date();
  console.log(`raft bench: ${machine.cores} cores (${machine.cpuModel}), node ${machine.node}, ${machine.etcd}, commit ${machine.commit?.slice(0, 10)}${machine.dirty ? ' (dirty)' : ''}`);
  console.log(`  ${COMMAND_BYTES}-byte commands, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per row, concurrency ${CONCURRENCY.join(',')}, ${FAILOVER_TRIALS} failover trials, fsync on in both systems`);
  const evidence: Record<string, unknown>[] = [];
  let pairs: RowPair[] = [];
  const failovers: FailoverSummary[] = [];
  const clusters: Record<string, unknown> = {};

  const defaults = await startPair('default');
  clusters['default'] = { ts3gw: defaults.ts3gw.describe(), etcd: defaults.etcd.describe() };
  try {
    if (!SKIP_THROUGHPUT) {
      console.log('\nthroughput (default timeouts; proposals sent to the leader):');
      pairs = await throughput(defaults, evidence);
    }
    if (!SKIP_FAILOVER) {
      console.log('\nfailover, default timeouts:');
      for (const mode of FAILURE_MODES) failovers.push(...(await failover('default', mode, defaults, evidence)));
    }
  } finally {
    await stopPair(defaults);
  }
  if (!SKIP_FAILOVER && !SKIP_AGGRESSIVE) {
    const aggressive = await startPair('aggressive');
    clusters['aggressive'] = { ts3gw: aggressive.ts3gw.describe(), etcd: aggressive.etcd.describe() };
    try {
      console.log('\nfailover, aggressive timeouts:');
      for (const mode of FAILURE_MODES) failovers.push(...(await failover('aggressive', mode, aggressive, evidence)));
    } finally {
      await stopPair(aggressive);
    }
  }

  console.log(`\n== ${machine.cores} cores, node ${machine.node}, ${machine.etcd}, commit ${machine.commit?.slice(0, 10)}; ${SECONDS} s rows; ratio = ts3gw / etcd ==`);
  if (pairs.length > 0) {
    console.log('\nthroughput (cli = load-generator CPU per op, srv = all 3 members\' CPU per op, t/e = ts3gw/etcd):\n');
    console.log(throughputTable(pairs));
  }
  if (failovers.length > 0) {
    console.log(`\nfailover: kill -9 (or SIGSTOP) of the leader → first acknowledged write through a survivor (attempt every ${ATTEMPT_INTERVAL_MS} ms per survivor):\n`);
    console.log(failoverTable(failovers));
  }
  const out = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { ...machine, loadAvgAtEnd: os.loadavg() },
    settings: { seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, concurrency: CONCURRENCY, commandBytes: COMMAND_BYTES, failoverTrials: FAILOVER_TRIALS, failoverTimeoutMs: FAILOVER_TIMEOUT_MS, attemptIntervalMs: ATTEMPT_INTERVAL_MS, timings: TIMINGS },
    clusters,
    throughput: pairs,
    failover: failovers,
    evidence,
  };
  const dir = join(ROOT, 'bench-results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `raft-bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
  if (evidence.length > 0) console.log(`${evidence.length} problem(s) recorded under "evidence" in the JSON`);
}

let exitCode = 0;
const hardStop = setTimeout(() => {
  console.error(`raft bench: hard time limit of ${MAX_MINUTES} min reached; stopping everything`);
  void runCleanups().finally(() => process.exit(3));
}, MAX_MINUTES * 60_000);
hardStop.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`raft bench: ${signal}; stopping everything`);
    void runCleanups().finally(() => process.exit(130));
  });
}
try {
  await main();
} catch (err) {
  console.error('raft bench failed:', err);
  exitCode = 1;
} finally {
  await runCleanups();
  clearTimeout(hardStop);
}
// Late gRPC calls of abandoned failover attempts must not keep the process alive.
process.exit(exitCode);
