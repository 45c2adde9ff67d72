/**
 * Goal: replication settings mean what they say on clusters smaller and larger than R.
 * Method: a table of (settings, node count) → (effective R, effective W), plus validation cases.
 */
import test from 'ava';
import {
  DEFAULT_REPLICATION_SETTINGS,
  effectiveR,
  effectiveW,
  majority,
  REPLICATION_FACTOR_MAX,
  type ReplicationSettings,
  validateReplicationSettings,
} from '../../../src/placement/index.ts';

test('majority of n', (t) => {
  t.deepEqual([1, 2, 3, 4, 5, 6, 7].map(majority), [1, 2, 2, 3, 3, 4, 4]);
  t.throws(() => majority(0), { instanceOf: TypeError });
});

test('defaults: R = 3 capped at the node count, W = majority of the effective R', (t) => {
  const d = DEFAULT_REPLICATION_SETTINGS;
  t.deepEqual(validateReplicationSettings(d), []);
  t.true(Object.isFrozen(d));
  const table: [number, number, number][] = [
    // nodes, R, W
    [1, 1, 1],
    [2, 2, 2],
    [3, 3, 2],
    [5, 3, 2],
    [16, 3, 2],
  ];
  for (const [nodes, r, w] of table) {
    t.is(effectiveR(d, nodes), r, `${nodes} nodes: R`);
    t.is(effectiveW(d, nodes), w, `${nodes} nodes: W`);
  }
});

test('an explicit W is a durability request: honoured, capped at the effective R', (t) => {
  const table: [ReplicationSettings, number, number, number][] = [
    // settings, nodes, R, W
    [{ replicationFactor: 3, writeQuorum: 3 }, 5, 3, 3],
    [{ replicationFactor: 3, writeQuorum: 3 }, 2, 2, 2],
    [{ replicationFactor: 3, writeQuorum: 1 }, 3, 3, 1],
    [{ replicationFactor: 5, writeQuorum: 3 }, 3, 3, 3],
    [{ replicationFactor: 5 }, 4, 4, 3],
    [{ replicationFactor: 5 }, 9, 5, 3],
  ];
  for (const [s, nodes, r, w] of table) {
    t.is(effectiveR(s, nodes), r, `${JSON.stringify(s)} on ${nodes}: R`);
    t.is(effectiveW(s, nodes), w, `${JSON.stringify(s)} on ${nodes}: W`);
  }
});

test('invalid settings are refused with every problem listed', (t) => {
  t.deepEqual(validateReplicationSettings({ replicationFactor: 2, writeQuorum: 2 }), []);
  t.is(validateReplicationSettings({ replicationFactor: 0 }).length, 1);
  t.is(validateReplicationSettings({ replicationFactor: REPLICATION_FACTOR_MAX + 1 }).length, 1);
  t.is(validateReplicationSettings({ replicationFactor: 2.5, writeQuorum: 0 }).length, 2);
  t.is(validateReplicationSettings({ replicationFactor: 3, writeQuorum: 4 }).length, 1);
  t.throws(() => effectiveR({ replicationFactor: 0 }, 3), { instanceOf: TypeError });
  t.throws(() => effectiveW({ replicationFactor: 3 }, 0), { instanceOf: TypeError });
});

test('the settings stored in the log (writeQuorum always present) are accepted as they are', (t) => {
  // meta/ stores { replicationFactor, writeQuorum } with both fields required.
  const stored: { replicationFactor: number; writeQuorum: number } = { replicationFactor: 3, writeQuorum: 2 };
  t.is(effectiveW(stored, 3), 2);
});
