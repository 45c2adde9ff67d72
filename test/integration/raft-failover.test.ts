/**
 * Goal: when the leader's process dies, the survivors elect a new leader without waiting out the
 * election timeout: its connections break, a reconnect is refused, and the followers forget it
 * (Raft.forgetLeader) and campaign at once. When the leader is only frozen (SIGSTOP: connections
 * stay open) nothing is refused and the election timeout stays in charge; the frozen leader
 * steps down when it wakes.
 * Method: real processes on loopback with a long election timeout (50 ticks of 100 ms = 5 s), so
 * an election before 5 s can only come from the crash detector.
 */
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import anyTest, { type TestFn } from 'ava';
import { clusterStatus, eventually, startCluster, type TestCluster, waitForLeader } from '../helpers/cluster.ts';
import { s3Client } from '../helpers/server.ts';

const test = anyTest as TestFn<{ cluster: TestCluster }>;
const ELECTION_TIMEOUT_MS = 50 * 100;

test.before(async (t) => {
  t.context = { cluster: await startCluster(3, { TS3GW_RAFT_TICK_MS: '100', TS3GW_RAFT_ELECTION_TICKS: '50', TS3GW_LOG_LEVEL: 'info' }) };
});
test.after.always(async (t) => {
  await t.context.cluster?.stop();
});

test.serial('kill -9 of the leader: a survivor leads and accepts writes well within one election timeout', async (t) => {
  const { cluster } = t.context;
  const leader = await waitForLeader(cluster, [1, 2, 3], 30_000);
  const survivors = [1, 2, 3].filter((id) => id !== leader);
  const s3 = s3Client(cluster.nodes.get(survivors[0]!)!.server, { maxAttempts: 1 });
  await s3.send(new CreateBucketCommand({ Bucket: 'failover' }));
  const killedAt = performance.now();
  await cluster.nodes.get(leader)!.server.kill();
  await eventually(
    async () => {
      try {
        await s3.send(new PutObjectCommand({ Bucket: 'failover', Key: 'after', Body: 'x' }));
        return true;
      } catch {
        return undefined;
      }
    },
    // Waited for longer than the bound it asserts, so a slow answer fails with its number.
    4 * ELECTION_TIMEOUT_MS,
    'a write acknowledged after the kill',
  );
  const elapsedMs = performance.now() - killedAt;
  // Typically ~0.2 s: 25x of headroom for a loaded CI, and still below what the timeout path takes.
  t.true(elapsedMs < ELECTION_TIMEOUT_MS, `first write ${elapsedMs} ms after the kill: the election timeout was waited out`);
  const next = await waitForLeader(cluster, survivors);
  t.true(survivors.includes(next));
  const told = survivors.some((id) => cluster.nodes.get(id)!.server.output.some((l) => l.includes('raft leader is gone')));
  t.true(told, 'a survivor logged that it saw the leader go');
  t.log(`new leader ${next}, first write ${Math.round(elapsedMs)} ms after the kill (election timeout ${ELECTION_TIMEOUT_MS} ms)`);
  await cluster.restart(leader);
  await waitForLeader(cluster);
});

test.serial('a frozen leader (SIGSTOP) is not mistaken for a dead one: the election waits for the timeout', async (t) => {
  const { cluster } = t.context;
  const leader = await waitForLeader(cluster, [1, 2, 3], 30_000);
  const survivors = [1, 2, 3].filter((id) => id !== leader);
  const { term } = await clusterStatus(cluster.nodes.get(leader)!.server.url);
  const proc = cluster.nodes.get(leader)!.server.proc;
  const linesBefore = new Map(survivors.map((id) => [id, cluster.nodes.get(id)!.server.output.length]));
  const stoppedAt = performance.now();
  proc.kill('SIGSTOP');
  try {
    const next = await eventually(
      async () => {
        const statuses = await Promise.all(survivors.map((id) => clusterStatus(cluster.nodes.get(id)!.server.url)));
        const lead = statuses[0]!.leader;
        return lead !== 0 && lead !== leader && statuses.every((s) => s.leader === lead && s.term > term) ? lead : undefined;
      },
      4 * ELECTION_TIMEOUT_MS,
      'a new leader among the survivors',
    );
    const elapsedMs = performance.now() - stoppedAt;
    // The crash detector did not fire: no survivor saw the frozen leader as gone.
    for (const id of survivors) {
      const said = cluster.nodes.get(id)!.server.output.slice(linesBefore.get(id));
      t.false(said.some((l) => l.includes('raft leader is gone')), `node ${id} took the frozen leader for a dead one`);
    }
    // And the election came from the timeout. The followers last heard from the leader a
    // heartbeat (100 ms) before the stop, or longer if a loaded machine delayed its last
    // heartbeats, hence half the timeout as the bound: the crash path elects in ~0.2 s.
    t.true(elapsedMs >= ELECTION_TIMEOUT_MS / 2, `elected after ${elapsedMs} ms: the timeout was not waited out`);
    t.log(`new leader ${next} after ${Math.round(elapsedMs)} ms`);
  } finally {
    proc.kill('SIGCONT');
  }
  // Awake again, the old leader learns the new term and follows.
  await eventually(
    async () => {
      const s = await clusterStatus(cluster.nodes.get(leader)!.server.url);
      return s.leader !== leader && s.leader !== 0 && s.term > term ? true : undefined;
    },
    ELECTION_TIMEOUT_MS,
    'the old leader follows the new one',
  );
  t.pass();
});
