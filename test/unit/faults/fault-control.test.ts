/**
 * FaultControl (the chaos suite's fault mode): the control file is parsed strictly, a bad file
 * keeps the faults in force, the clock carries the offset and accumulates drift from when the
 * rate was set, and the disk hook fails exactly the durable writes it was told to. Method: a
 * real file in a tmp dir, polled by hand; injected wall and monotonic clocks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { FaultControl, parseFaultState } from '../../../src/faults/fault-control.ts';

const quiet = { warn: () => undefined };

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'faults-'));
  const path = join(dir, 'faults.json');
  const time = { wall: 1_000_000, mono: 0 };
  const control = new FaultControl(path, quiet, { wallMs: () => time.wall, monotonicMs: () => time.mono });
  return { dir, path, time, control, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('parseFaultState: defaults, every field, and bad input named', (t) => {
  t.deepEqual(parseFaultState(''), { clockOffsetMs: 0, clockRate: 1, diskDelayMs: 0, fsyncFail: 'none' });
  t.deepEqual(parseFaultState('{"clockOffsetMs":-5000,"clockRate":1.5,"diskDelayMs":20,"fsyncFail":"wal"}'), { clockOffsetMs: -5000, clockRate: 1.5, diskDelayMs: 20, fsyncFail: 'wal' });
  t.throws(() => parseFaultState('{"clockskew":1}'), { message: /unknown field "clockskew"/ });
  t.throws(() => parseFaultState('{"clockRate":0}'), { message: /clockRate/ });
  t.throws(() => parseFaultState('{"fsyncFail":"yes"}'), { message: /fsyncFail/ });
  t.throws(() => parseFaultState('[1]'), { message: /JSON object/ });
});

test('no file means no faults; the clock follows the file and drift accumulates from when the rate was set', (t) => {
  const s = setup();
  try {
    s.control.poll();
    t.is(s.control.clock.nowMs(), 1_000_000);
    writeFileSync(s.path, '{"clockOffsetMs":30000}');
    s.control.poll();
    t.is(s.control.clock.nowMs(), 1_030_000);
    s.time.mono = 10_000;
    s.time.wall += 10_000;
    writeFileSync(s.path, '{"clockOffsetMs":30000,"clockRate":1.1}');
    s.control.poll();
    t.is(s.control.clock.nowMs(), 1_040_000, 'no jump when a rate is set');
    s.time.mono += 10_000;
    s.time.wall += 10_000;
    t.is(s.control.clock.nowMs(), 1_051_000, '10 s at rate 1.1 gain 1 s');
    writeFileSync(s.path, '{not json');
    s.control.poll();
    t.is(s.control.state.clockRate, 1.1, 'an invalid file keeps the faults in force');
    rmSync(s.path);
    s.control.poll();
    t.is(s.control.clock.nowMs(), 1_020_000, 'a removed file clears every fault');
  } finally {
    s.done();
  }
});

test('the disk hook fails the durable writes named by fsyncFail with EIO, and only those', async (t) => {
  const s = setup();
  try {
    await t.notThrowsAsync(s.control.disk.beforeSync('wal'));
    writeFileSync(s.path, '{"fsyncFail":"chunk"}');
    s.control.poll();
    await t.throwsAsync(s.control.disk.beforeSync('chunk'), { code: 'EIO' } as never);
    await t.notThrowsAsync(s.control.disk.beforeSync('wal'));
    writeFileSync(s.path, '{"fsyncFail":"all","diskDelayMs":1}');
    s.control.poll();
    await t.throwsAsync(s.control.disk.beforeSync('wal'), { code: 'EIO' } as never);
  } finally {
    s.done();
  }
});
