/**
 * Goal: Raft safety (election safety, log matching, leader completeness, state machine safety),
 * linearizability of a KV workload, and convergence after healing, under seeded faults.
 * Method: run the deterministic simulator (test/sim/raft-sim.ts) for a range of seeds. Defaults
 * stay fast for CI; SIM_SEEDS=1000 (and SIM_STEPS, SIM_FROM) enlarge the sweep. A failure prints
 * the seed and the exact replay command (`npm run sim -- --seed X --steps N`).
 */
import test from 'ava';
import { runSimulation } from './raft-sim.ts';

const SEEDS = Number(process.env.SIM_SEEDS ?? '40');
const STEPS = Number(process.env.SIM_STEPS ?? '5000');
const FROM = Number(process.env.SIM_FROM ?? '1');

test(`raft simulation: ${SEEDS} seeds x ${STEPS} steps are safe, linearizable and converge`, (t) => {
  let ops = 0;
  let leaders = 0;
  let snaps = 0;
  let crashes = 0;
  for (let seed = FROM; seed < FROM + SEEDS; seed++) {
    // runSimulation throws SimulationError naming the seed on any checker failure.
    const r = runSimulation({ seed, steps: STEPS });
    t.true(r.linearizability.ok !== false, `seed ${seed}: linearizability`);
    ops += r.opsInvoked;
    leaders += r.leadersElected;
    snaps += r.snapshotsSent;
    crashes += r.crashes;
  }
  t.log(`ops=${ops} leaders=${leaders} snapshotsSent=${snaps} crashes=${crashes}`);
  // The sweep must actually exercise the interesting paths.
  t.true(ops > SEEDS * 10, 'workload ran');
  t.true(leaders >= SEEDS, 'elections happened');
  t.true(crashes > 0, 'crashes happened');
});

test('raft simulation: the same seed replays exactly', (t) => {
  const a = runSimulation({ seed: 4242, steps: 2000 });
  const b = runSimulation({ seed: 4242, steps: 2000 });
  t.deepEqual(a, b);
});
