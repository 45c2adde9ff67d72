/**
 * `npm run test:chaos`: the quick chaos set that runs with `npm test`. A few short scenarios with
 * fixed seeds and different nemeses, one through HAProxy; exits non-zero on any violation or
 * failed run. After each run it also checks that the recorded history could have shown a bug:
 * a stale read of a superseded acknowledged write, appended to the real history, must be
 * reported as not linearizable, and the same value as a final read must be reported as a lost
 * write (so a green run is not green because the history was too thin to judge).
 *
 * Results go to .ts3gw-chaos/quick/<scenario>/ (summary.json, availability.svg, history.json).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDurability, checkRegisters, type FinalRead, type RegisterOp } from './checker/register.ts';
import { type ChaosOptions, dropData, runChaos } from './run.ts';

const SCENARIOS: Array<{ name: string } & Omit<ChaosOptions, 'outDir'>> = [
  { name: 'partition-pause', nodes: 3, timeS: 24, nemeses: ['partition', 'pause'], seed: 101 },
  { name: 'kill', nodes: 3, timeS: 24, nemeses: ['kill'], seed: 202 },
  { name: 'haproxy-all', nodes: 3, timeS: 24, nemeses: ['partition', 'kill', 'pause'], seed: 303, lb: 'haproxy' },
  { name: 'rolling-restart', nodes: 3, timeS: 30, nemeses: ['rolling'], seed: 404 },
  // A clock 111 s behind and drifting, a bridge, chunk files deleted, a slow disk.
  { name: 'node-faults', nodes: 3, timeS: 30, nemeses: ['clock', 'disk', 'rot', 'bridge'], seed: 505 },
];

/** A stale read and a lost write made from the real history; both must be caught. */
function mutationCheck(outDir: string): string | undefined {
  const { registers } = JSON.parse(readFileSync(join(outDir, 'history.json'), 'utf8')) as { registers: RegisterOp[] };
  const ops = registers.map((o) => ({ ...o, endTime: o.endTime ?? Number.NaN }));
  const end = Math.max(...ops.map((o) => (Number.isFinite(o.endTime) ? o.endTime : o.invokeTime))) + 1;
  // A key with an acknowledged write that a later acknowledged write (invoked after it completed) superseded.
  for (const old of ops) {
    if (old.status !== 'ok' || (old.f !== 'put' && old.f !== 'cas') || old.value === null) continue;
    const later = ops.find((w) => w.key === old.key && w.status === 'ok' && w.f !== 'get' && w.invokeTime > old.endTime);
    if (!later) continue;
    const stale: RegisterOp = { id: 1e9, client: 'mutant', key: old.key, f: 'get', value: old.value, status: 'ok', invokeTime: end, endTime: end + 1 };
    const lin = checkRegisters([...ops.filter((o) => o.key === old.key), stale]);
    if (lin.ok !== false) return `a stale read of ${old.key} (${old.value}) was not caught`;
    const finals: FinalRead[] = [{ key: old.key, node: 1, value: old.value, bytesOk: true }];
    if (checkDurability(ops.filter((o) => o.key === old.key && !o.client.startsWith('final@')), finals).ok) return `a lost write of ${old.key} was not caught`;
    return undefined;
  }
  return 'the history has no superseded acknowledged write to mutate';
}

const started = performance.now();
const failures: string[] = [];
for (const s of SCENARIOS) {
  const { name, ...options } = s;
  const outDir = join('.ts3gw-chaos', 'quick', name);
  try {
    // TS3GW_CHAOS_SOURCE: run the nodes from another checkout (e.g. a clean export of HEAD).
    const source = process.env['TS3GW_CHAOS_SOURCE'];
    const summary = await runChaos({ ...options, outDir, ...(source ? { source } : {}) });
    if (!summary.ok) failures.push(`${name}: ${JSON.stringify({ linearizable: summary.checks.linearizability.ok, durable: summary.checks.durability.ok, listings: summary.checks.listing.ok, converged: summary.convergence.ok, chunkCopies: summary.convergence.chunkCopies.ok, metaDigests: summary.convergence.metaDigests.ok, timestamps: summary.checks.timestamps.ok })}`);
    const ackedWrites = (summary.ops.byKind['put']?.['ok'] ?? 0) + (summary.ops.byKind['cas']?.['ok'] ?? 0);
    if (ackedWrites < 20) failures.push(`${name}: only ${ackedWrites} acknowledged writes: the cluster was not available enough to test anything`);
    const mutation = mutationCheck(outDir);
    if (mutation) failures.push(`${name}: checker self-test: ${mutation}`);
    if (summary.harness.length > 0) failures.push(`${name}: ${summary.harness.join('; ')}`);
    dropData(summary);
  } catch (err) {
    failures.push(`${name}: the run failed: ${(err as Error).message}`);
  }
}
const seconds = ((performance.now() - started) / 1000).toFixed(0);
if (failures.length > 0) {
  process.stderr.write(`test:chaos: ${failures.length} failure(s) in ${seconds} s:\n${failures.map((f) => `  ${f}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`test:chaos: ${SCENARIOS.length} scenarios clean in ${seconds} s\n`);
