/**
 * The schedule's new nemeses (chaos/schedule.ts): a bridge names every node once with the bridge
 * alone first, clock offsets stay within SigV4's 15 minutes, disk and rot faults carry what they
 * break; the older nemeses carry none (their choices are drawn only for the new ones, so a seed's
 * schedule for the older nemeses is what it was: checked against the previous version by hand).
 */
import test from 'ava';
import { planSchedule } from '../../../chaos/schedule.ts';

test('new nemeses carry their parameters', (t) => {
  const plan = planSchedule({ seed: 9, nodes: 5, timeS: 600, nemeses: ['bridge', 'clock', 'disk', 'rot', 'oneway'] });
  t.true(plan.length > 50);
  for (const f of plan) {
    if (f.nemesis === 'bridge') {
      const groups = f.params!.groups!;
      t.is(groups[0]!.length, 1);
      t.deepEqual([...groups.flat()].sort(), [1, 2, 3, 4, 5]);
      t.true(groups[1]!.length > 0 && groups[2]!.length > 0);
    } else if (f.nemesis === 'clock') {
      t.true(Math.abs(f.params!.clockOffsetMs!) >= 1_000 && Math.abs(f.params!.clockOffsetMs!) < 15 * 60_000);
      t.true(f.params!.clockRate! >= 0.5 && f.params!.clockRate! <= 2);
    } else if (f.nemesis === 'disk') t.true(['slow', 'fsync-chunk', 'fsync-wal'].includes(f.params!.disk!));
    else if (f.nemesis === 'rot') t.true(f.params!.count! >= 1);
    else t.true(f.target === 'leader' || (f.target.length >= 1 && f.target.length <= 2), 'oneway cuts off a minority');
  }
  t.deepEqual([...new Set(plan.map((f) => f.nemesis))].sort(), ['bridge', 'clock', 'disk', 'oneway', 'rot']);
});

test('the older nemeses get no parameters; a seed gives one schedule', (t) => {
  const plan = planSchedule({ seed: 101, nodes: 3, timeS: 24, nemeses: ['partition', 'pause'] });
  t.true(plan.length > 0);
  t.true(plan.every((f) => f.params === undefined));
  t.deepEqual(planSchedule({ seed: 101, nodes: 3, timeS: 24, nemeses: ['partition', 'pause'] }), plan);
});
