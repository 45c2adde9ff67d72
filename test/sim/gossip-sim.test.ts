/**
 * Goal: the SWIM gossip of src/membership/gossip.ts discovers members through one seed, marks a
 * crashed member suspect and then dead within failureDetectionBounds(), lets a paused member
 * (SIGSTOP) refute the suspicion when it resumes, and keeps healthy members alive on a lossy
 * network. Method: GossipWorld (gossip-sim.ts), one seeded event queue for timers and messages;
 * every run is deterministic, and the seeds loop over several worlds.
 */
import test from 'ava';
import { DEFAULT_GOSSIP_TIMING, failureDetectionBounds } from '../../src/membership/gossip.ts';
import { GossipWorld } from './gossip-sim.ts';

const P = DEFAULT_GOSSIP_TIMING.protocolPeriodMs;
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];
const names = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${i + 1}:9001`);

function world(seed: number, n: number): { w: GossipWorld; all: string[] } {
  const w = new GossipWorld(seed);
  const all = names(n);
  // Every node knows only the first as its seed, as `--join` gives it.
  for (const [i, a] of all.entries()) w.add(a, {}, i === 0 ? [] : [all[0]!]);
  return { w, all };
}

for (const seed of SEEDS) {
  test(`seed ${seed}: five nodes find each other through one seed`, (t) => {
    const { w, all } = world(seed, 5);
    w.runUntil(3 * P);
    for (const a of all) {
      const seen = w.nodes.get(a)!.members();
      t.deepEqual(seen.map((m) => m.address), all.filter((x) => x !== a), `${a} knows every other member`);
      t.true(seen.every((m) => m.state === 'alive'), `${a} sees all alive`);
    }
  });

  test(`seed ${seed}: a crashed node is suspect, then dead, everywhere within the bounds`, (t) => {
    const { w, all } = world(seed, 5);
    w.runUntil(5 * P);
    const victim = all[2]!;
    const crashedAt = w.nowMs;
    w.crash(victim);
    const bounds = failureDetectionBounds(5, DEFAULT_GOSSIP_TIMING);
    w.runUntil(crashedAt + bounds.deadMs);
    for (const a of all.filter((x) => x !== victim)) {
      const suspectAt = w.firstSeen(a, victim, 'suspect', crashedAt);
      const deadAt = w.firstSeen(a, victim, 'dead', crashedAt);
      t.truthy(deadAt, `${a} saw the victim dead`);
      // Suspicion may be skipped by a node that heard `dead` first; then dead is what counts.
      if (suspectAt !== undefined) t.true(suspectAt - crashedAt <= bounds.suspectMs, `${a} suspected after ${suspectAt - crashedAt} ms`);
      t.true(deadAt! - crashedAt <= bounds.deadMs, `${a} declared dead after ${deadAt! - crashedAt} ms`);
      // Never before the suspicion timeout: dead needs suspect + timeout somewhere first.
      t.true(deadAt! - crashedAt >= DEFAULT_GOSSIP_TIMING.suspicionTimeoutMs, `${a} declared dead too early`);
    }
    // The others stay alive to each other throughout.
    const falseDeaths = w.observations.filter((o) => o.member !== victim && o.state === 'dead');
    t.deepEqual(falseDeaths, []);
  });

  test(`seed ${seed}: a paused node is suspected and refutes when it resumes; nobody declares it dead`, (t) => {
    const { w, all } = world(seed, 5);
    w.runUntil(5 * P);
    const victim = all[1]!;
    const pausedAt = w.nowMs;
    w.pause(victim);
    // Paused until someone suspects it (within the bound), then resumed well before the
    // suspicion times out.
    const bounds = failureDetectionBounds(5, DEFAULT_GOSSIP_TIMING);
    const suspected = () => all.some((a) => a !== victim && w.stateOf(a, victim) === 'suspect');
    while (!suspected() && w.nowMs < pausedAt + bounds.suspectMs) w.runUntil(w.nowMs + 50);
    t.true(suspected(), 'someone suspected the paused node');
    w.runUntil(w.nowMs + DEFAULT_GOSSIP_TIMING.suspicionTimeoutMs / 2);
    w.resume(victim);
    w.runUntil(w.nowMs + 4 * P);
    for (const a of all.filter((x) => x !== victim)) t.is(w.stateOf(a, victim), 'alive', `${a} sees the resumed node alive`);
    t.true(w.nodes.get(victim)!.self().incarnation > 0, 'it refuted with a higher incarnation');
    t.deepEqual(w.observations.filter((o) => o.member === victim && o.state === 'dead'), [], 'never declared dead');
  });

  test(`seed ${seed}: a node paused past its death comes back alive with a higher incarnation`, (t) => {
    const { w, all } = world(seed, 3);
    w.runUntil(5 * P);
    const victim = all[2]!;
    w.pause(victim);
    w.runUntil(w.nowMs + failureDetectionBounds(3, DEFAULT_GOSSIP_TIMING).deadMs);
    for (const a of all.filter((x) => x !== victim)) t.is(w.stateOf(a, victim), 'dead', `${a} sees it dead while paused`);
    w.resume(victim);
    // It learns of its death from the answers to its own probes or the next sync, and refutes.
    w.runUntil(w.nowMs + DEFAULT_GOSSIP_TIMING.syncIntervalMs + 4 * P);
    for (const a of all.filter((x) => x !== victim)) t.is(w.stateOf(a, victim), 'alive', `${a} sees it alive again`);
  });

  test(`seed ${seed}: with 10% message loss no healthy node is declared dead over 300 periods`, (t) => {
    const { w } = world(seed, 5);
    w.lossRate = 0.1;
    w.runUntil(300 * P);
    t.deepEqual(w.observations.filter((o) => o.state === 'dead'), []);
  });
}

for (const seed of SEEDS.slice(0, 4)) {
  test(`seed ${seed}: after a partition longer than failure detection, both sides find each other again`, (t) => {
    const { w, all } = world(seed, 3);
    w.runUntil(5 * P);
    w.side.set(all[0]!, 1);
    for (const a of all.slice(1)) w.side.set(a, 2);
    w.runUntil(w.nowMs + 30 * P);
    t.is(w.stateOf(all[1]!, all[0]!), 'dead', 'the lone node is dead to the others while cut off');
    w.side.clear();
    w.runUntil(w.nowMs + DEFAULT_GOSSIP_TIMING.syncIntervalMs + 6 * P);
    for (const a of all) for (const b of all) if (a !== b) t.is(w.stateOf(a, b), 'alive', `${a} sees ${b} alive after the heal`);
  });
}

test('a suspicion at a newer incarnation gets its own timeout', (t) => {
  // Two nodes; b refutes once (incarnation bump), then dies: a must still declare it dead.
  const { w, all } = world(3, 2);
  w.runUntil(5 * P);
  w.pause(all[1]!);
  while (w.stateOf(all[0]!, all[1]!) !== 'suspect') w.runUntil(w.nowMs + 50);
  w.resume(all[1]!);
  w.runUntil(w.nowMs + 3 * P);
  t.is(w.stateOf(all[0]!, all[1]!), 'alive', 'refuted');
  w.crash(all[1]!);
  w.runUntil(w.nowMs + failureDetectionBounds(2, DEFAULT_GOSSIP_TIMING).deadMs);
  t.is(w.stateOf(all[0]!, all[1]!), 'dead');
});

test('the same seed gives the same history', (t) => {
  const run = () => {
    const { w, all } = world(42, 5);
    w.lossRate = 0.05;
    w.runUntil(5 * P);
    w.crash(all[3]!);
    w.runUntil(40 * P);
    return JSON.stringify(w.observations);
  };
  t.is(run(), run());
});
