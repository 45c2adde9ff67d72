/**
 * Goal: the chart check (scripts/check-helm.ts, `npm run check:helm`) fails on a broken chart
 * configuration, through each of its layers, and passes the chart's defaults.
 *
 * Method: deliberately broken values files, written to a temp dir, checked with the same
 * functions CI runs and once through the CLI itself: a values.schema.json violation (helm lint
 * --strict and helm template refuse it), a misspelt field inside a free-form value that renders
 * into the StatefulSet (only the unknown-field walk sees it; kubernetes-models lets it through),
 * a wrong type (kubernetes-models catches it), a broken bootstrap invariant, and pod environments
 * ts3gw's own configuration loader refuses or partly ignores.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { checkValueSet } from '../../../scripts/check-helm.ts';
import { loadConfig, parsePeers } from '../../../src/config/config.ts';
import { kubeletEnv, ROOT, renderChart, validateObjects } from '../../../scripts/helm-tools.ts';

const test = anyTest as TestFn<{ dir: string }>;

test.before(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'ts3gw-helm-'));
});

test.after.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true });
});

async function valuesFile(dir: string, name: string, yaml: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, yaml);
  return file;
}

test('the default values pass lint, render, schema and invariant checks', async (t) => {
  t.deepEqual(await checkValueSet({ name: 'default', valuesFiles: [] }), []);
});

test('a values.schema.json violation fails helm lint --strict and the render', async (t) => {
  const file = await valuesFile(t.context.dir, 'schema', 'replicas: three\nreplikas: 3\n');
  const problems = await checkValueSet({ name: 'schema', valuesFiles: [file] });
  t.true(problems.some((p) => p.startsWith('helm lint --strict failed') && p.includes("'/replicas': got string, want integer")), problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('helm template failed') && p.includes("'replikas' not allowed")), problems.join('\n'));
});

test('a misspelt field in a free-form value is caught as an unknown field of the rendered StatefulSet', async (t) => {
  const file = await valuesFile(
    t.context.dir,
    'typo',
    'securityContext:\n  runAsNonRoot: true\n  allowPrivilegeEscalation: false\n  readOnlyRootFilesytem: true\n  capabilities:\n    drop: [ALL]\n',
  );
  const problems = await checkValueSet({ name: 'typo', valuesFiles: [file] });
  t.true(problems.includes('StatefulSet/ts3gw: /spec/template/spec/containers/0/securityContext/readOnlyRootFilesytem: unknown field'), problems.join('\n'));
  // Helm merges it over the defaults, so the real field is still true: only the walk sees the typo.
  t.is(problems.length, 1, problems.join('\n'));
});

test('a wrong type in a free-form value is caught by the kubernetes-models schemas', async (t) => {
  const file = await valuesFile(t.context.dir, 'type', 'resources:\n  requests:\n    memory: [1Gi]\n');
  const problems = await checkValueSet({ name: 'type', valuesFiles: [file] });
  t.true(problems.some((p) => p.startsWith('StatefulSet/ts3gw: /spec/template/spec/containers/0/resources/requests/memory:')), problems.join('\n'));
});

test('the unknown-field walk follows arrays, maps and unions without flagging what the schema has', async (t) => {
  const objects = await renderChart({ valuesFiles: [join(ROOT, 'helm/ts3gw/ci/tls-values.yaml')] });
  t.deepEqual(await validateObjects(objects), []);
  type Ingress = {
    metadata: { annotations: Record<string, string> };
    spec: { tls: Record<string, unknown>[]; rules: { http: { paths: { backend: { service: { port: Record<string, unknown> } } }[] } }[] };
  };
  const ingress = structuredClone(objects.find((o) => o.kind === 'Ingress')!) as unknown as Ingress;
  ingress.spec.rules[0]!.http.paths[0]!.backend.service.port['numbr'] = 9000;
  ingress.metadata.annotations['any.key/is-fine'] = 'yes';
  ingress.spec.tls[0]!['hostz'] = ['x'];
  t.deepEqual(await validateObjects([ingress as never]), [
    'Ingress/ts3gw: /spec/tls/0/hostz: unknown field',
    'Ingress/ts3gw: /spec/rules/0/http/paths/0/backend/service/port/numbr: unknown field',
  ]);
});

test('the CLI exits 1 on a broken values file and 0 on a good one', async (t) => {
  const bad = await valuesFile(t.context.dir, 'cli-bad', 'podDisruptionBudget:\n  maxUnavailable: 3\n');
  const run = (file: string) => spawnSync(process.execPath, ['scripts/check-helm.ts', '--values', file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  const failed = run(bad);
  t.is(failed.status, 1, failed.stdout + failed.stderr);
  t.regex(failed.stdout, /FAIL .*cli-bad\.yaml/);
  t.regex(failed.stdout, /maxUnavailable/);
  const good = run(join(ROOT, 'helm/ts3gw/ci/five-replicas-values.yaml'));
  t.is(good.status, 0, good.stdout + good.stderr);
});

test('values that render valid objects but break an invariant the cluster relies on fail the check', async (t) => {
  // A user affinity replaces the generated one: valid Kubernetes, but no anti-affinity left.
  const file = await valuesFile(t.context.dir, 'invariant', 'placement:\n  affinity:\n    nodeAffinity: {}\n');
  t.deepEqual(await checkValueSet({ name: 'invariant', valuesFiles: [file] }), ['pod: no podAntiAffinity']);
});

test('each pod\'s environment must load as a ts3gw configuration, with only settings ts3gw reads', async (t) => {
  // A misspelt setting is ignored by ts3gw without a word; a bad flag stops every pod.
  const file = await valuesFile(t.context.dir, 'pod-config', 'config:\n  extra:\n    TS3GW_RAFT_TICK: "50"\nextraArgs: ["--bogus"]\n');
  const problems = await checkValueSet({ name: 'pod-config', valuesFiles: [file] });
  for (const pod of [0, 1, 2]) {
    t.true(problems.includes(`pod ${pod}: TS3GW_RAFT_TICK is not a ts3gw setting (it would be ignored)`), problems.join('\n'));
    t.true(problems.some((p) => p.startsWith(`pod ${pod}: invalid configuration:`) && p.includes('--bogus')), problems.join('\n'));
  }
  t.is(problems.length, 6, problems.join('\n'));
});

test('the five-replica rendering gives pods 0-4 node ids 1-5 from one peer list', async (t) => {
  const objects = await renderChart({ valuesFiles: [join(ROOT, 'helm/ts3gw/ci/five-replicas-values.yaml')], namespace: 'prod' });
  const statefulSet = objects.find((o) => o.kind === 'StatefulSet')!;
  const container = (statefulSet['spec'] as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec.containers[0]!;
  const envs = [0, 1, 2, 3, 4].map((i) => kubeletEnv({ objects, statefulSet, namespace: 'prod', container }, i));
  const configs = envs.map((env) => loadConfig({ env, argv: [] }));
  t.deepEqual(configs.map((c) => c.nodeId), [1, 2, 3, 4, 5]);
  t.is(new Set(configs.map((c) => c.peers)).size, 1, 'one founding peer list');
  t.is(configs[3]!.advertiseUrl, 'http://ts3gw-3.ts3gw-headless.prod.svc.cluster.local:9000');
  t.is(parsePeers(configs[0]!.peers!).find((p) => p.id === 5)!.raftAddress, 'ts3gw-4.ts3gw-headless.prod.svc.cluster.local:9001');
});

test('more replicas than founders renders pods that join (the founders keep their list); fewer is refused until decommissioned', async (t) => {
  // founders stands in for what an upgrade reads back from the release's bootstrap ConfigMap.
  // Pods 3 and 4 are not named by the founders' list: they join through it (valid configs).
  t.deepEqual(await checkValueSet({ name: 'scale-up', valuesFiles: [], set: ['founders=3', 'replicas=5'] }), []);
  const shrink = await checkValueSet({ name: 'scale-down', valuesFiles: [], set: ['founders=5', 'replicas=3'] });
  t.true(shrink.some((p) => p.includes('replicas 3 < 5 running or founded') && p.includes('ts3ctl decommission')), shrink.join('\n'));
});
