/**
 * CLI: replay one simulation seed exactly, or sweep a range.
 *
 *   npm run sim -- --seed 1234 [--steps 5000] [--nodes 3|5] [--verbose]
 *   npm run sim -- --seeds 100 [--from 1] [--steps 5000]
 *
 * Exits 1 on the first checker failure, printing the seed and the replay command.
 */
import { parseArgs } from 'node:util';
import { runSimulation, SimulationError } from './raft-sim.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    from: { type: 'string', default: '1' },
    steps: { type: 'string', default: '5000' },
    nodes: { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});

const steps = Number(values.steps);
const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
const seeds: number[] = [];
if (values.seed !== undefined) {
  seeds.push(Number(values.seed));
} else {
  const count = Number(values.seeds ?? '20');
  const from = Number(values.from);
  for (let s = from; s < from + count; s++) seeds.push(s);
}

const started = performance.now();
let failed = 0;
let attempted = 0;
for (const seed of seeds) {
  attempted++;
  try {
    const r = runSimulation({ seed, steps, ...(nodes === undefined ? {} : { nodes }), verbose: values.verbose });
    if (seeds.length === 1 || values.verbose) {
      console.log(JSON.stringify(r, null, 2));
    } else {
      console.log(
        `seed ${seed}: ok nodes=${r.nodes} leaders=${r.leadersElected} maxTerm=${r.maxTerm} applied=${r.appliedIndex} ops=${r.opsInvoked} (indeterminate ${r.opsIndeterminate}) crashes=${r.crashes} partitions=${r.partitions} confChanges=${r.confChanges} final=${r.finalConfig} snaps=${r.snapshotsSent} lease=${r.config.leaseReads} forgot=${r.leadersForgotten} lin=${r.linearizability.ok}`,
      );
    }
  } catch (err) {
    failed++;
    if (err instanceof SimulationError) console.error(err.message);
    else console.error(`seed ${seed}: crashed:`, err);
    process.exitCode = 1;
    break;
  }
}
console.log(`${attempted - failed}/${attempted} seeds passed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
