/**
 * Goal: the chaos harness's pure parts do what the runner relies on: a seed gives exactly one
 * fault schedule, faults stay inside the run and touch a minority, partition specs are parsed
 * or refused with a reason, and a GET body that is not exactly the bytes written for the value
 * it names reads as a value no one wrote.
 * Method: direct calls, no processes.
 */
import test from 'ava';
import { parsePartition } from '../../../chaos/faults.ts';
import { planSchedule } from '../../../chaos/schedule.ts';
import { bodyOf, etagOf, KeyPool, KEY_OPS_MAX, valueOfBody } from '../../../chaos/workload.ts';
import { planLocalCluster } from '../../../cluster/local-cluster.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeededRandom } from '../../../src/util/random.ts';

test('a seed gives one schedule; faults stay inside the run and hit a minority', (t) => {
  const options = { seed: 42, nodes: 5, timeS: 120, nemeses: ['partition', 'kill', 'pause'] as const };
  const a = planSchedule({ ...options, nemeses: [...options.nemeses] });
  t.deepEqual(a, planSchedule({ ...options, nemeses: [...options.nemeses] }));
  t.notDeepEqual(a, planSchedule({ ...options, seed: 43, nemeses: [...options.nemeses] }));
  t.true(a.length >= 10);
  for (const f of a) {
    t.true(f.atS >= 3 && f.atS + f.durationS <= 117, `fault at ${f.atS}+${f.durationS}`);
    if (f.target !== 'leader') t.true(f.target.length >= 1 && f.target.length <= 2, `minority of 5: ${f.target}`);
  }
  for (let i = 1; i < a.length; i++) t.true(a[i]!.atS >= a[i - 1]!.atS + a[i - 1]!.durationS, 'one fault at a time');
  t.deepEqual(planSchedule({ ...options, nemeses: [] }), []);
  t.true(new Set(a.map((f) => f.nemesis)).size === 3);
});

test('partition specs: groups by node number, refused with a reason when malformed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ts3gw-chaos-unit-'));
  try {
    const state = planLocalCluster({ nodes: 5, dir, net: 250 });
    t.deepEqual(parsePartition('1|2,3', state), [[1], [2, 3]]);
    t.deepEqual(parsePartition('1,2|3,4|5', state), [[1, 2], [3, 4], [5]]);
    t.throws(() => parsePartition('1', state), { message: /two non-empty groups/ });
    t.throws(() => parsePartition('1|', state), { message: /two non-empty groups/ });
    t.throws(() => parsePartition('1|1,2', state), { message: /twice/ });
    t.throws(() => parsePartition('1|9', state), { message: /no node 9/ });
    t.throws(() => parsePartition('a|2', state), { message: /not a node number/ });
    // Each node on its own loopback address, not 127.0.0.1.
    t.deepEqual(
      state.nodes.map((n) => n.address),
      ['127.0.250.11', '127.0.250.12', '127.0.250.13', '127.0.250.14', '127.0.250.15'],
    );
    t.is(state.nodes[1]!.env['TS3GW_S3_HOST'], '127.0.250.12');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bodies: exact bytes read as their value; anything else reads as a value no one wrote', (t) => {
  const value = 'c1@n1.7.70000';
  const body = bodyOf(value);
  t.is(body.length, 70_000);
  t.is(valueOfBody(body), value);
  t.not(etagOf(value), etagOf('c1@n1.8.70000'));
  const flipped = Buffer.from(body);
  flipped[40_000] = flipped[40_000]! ^ 1;
  t.regex(valueOfBody(flipped), /^corrupt\(/);
  t.regex(valueOfBody(body.subarray(0, 65_536)), /^corrupt\(/, 'a torn body');
  t.regex(valueOfBody(Buffer.from('garbage')), /^corrupt\(/);
});

test('keys retire after KEY_OPS_MAX operations', (t) => {
  const pool = new KeyPool('r/', 2);
  const rng = new SeededRandom(1);
  const counts = new Map<string, number>();
  for (let i = 0; i < 10 * KEY_OPS_MAX; i++) {
    const k = pool.pick(rng);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  for (const [k, n] of counts) t.true(n <= KEY_OPS_MAX, `${k}: ${n}`);
  t.true(pool.all.length >= 10);
});
