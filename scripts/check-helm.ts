/**
 * CI check of the Helm chart without a Kubernetes cluster (`npm run check:helm`): for each value
 * set (the defaults and every helm/ts3gw/ci/*-values.yaml) it runs a real `helm lint --strict`,
 * renders the chart with `helm template`, validates every object against the Kubernetes schemas
 * (types, required fields and unknown fields; see helm-tools.ts) and checks what the cluster's
 * bootstrap relies on (ordinal peers, headless DNS, probes, PDB, security context), and loads each
 * pod's environment with ts3gw's own configuration loader.
 *
 *   node scripts/check-helm.ts                    the chart's own value sets
 *   node scripts/check-helm.ts --values my.yaml   one value set made of the given files
 *
 * Exits 1 listing every problem found.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { configEnvNames, loadConfig } from '../src/config/config.ts';
import { CHART_DIR, type K8sObject, kubeletEnv, lintChart, renderChart, validateObjects } from './helm-tools.ts';

/** One value set to check. */
export interface ValueSet {
  name: string;
  valuesFiles: string[];
  set?: string[];
}

/** The chart's CI value sets: defaults, then helm/ts3gw/ci/*-values.yaml. */
export function chartValueSets(): ValueSet[] {
  const ciDir = join(CHART_DIR, 'ci');
  const files = readdirSync(ciDir).filter((f) => f.endsWith('-values.yaml')).sort();
  return [{ name: 'default', valuesFiles: [] }, ...files.map((f) => ({ name: f.replace(/-values\.yaml$/, ''), valuesFiles: [join(ciDir, f)] }))];
}

type Obj = Record<string, unknown>;
const get = (o: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((v, k) => (v === null || typeof v !== 'object' ? undefined : (v as Obj)[k]), o);

/** What the bootstrap and the safety of upgrades rely on, checked on one rendering. */
export function checkInvariants(objects: K8sObject[], namespace: string, externalSecrets: string[] = []): string[] {
  const problems: string[] = [];
  const find = (kind: string) => objects.filter((o) => o.kind === kind);
  const [sts, ...moreSts] = find('StatefulSet');
  if (!sts || moreSts.length > 0) return ['expected exactly one StatefulSet'];
  const spec = sts.spec as Obj;
  const replicas = spec['replicas'] as number;
  const name = sts.metadata.name;
  if (spec['podManagementPolicy'] !== 'Parallel') problems.push('StatefulSet: podManagementPolicy must be Parallel (founders start together)');
  const headless = find('Service').find((s) => s.metadata.name === spec['serviceName']);
  if (!headless) problems.push(`StatefulSet: serviceName ${String(spec['serviceName'])} is not a rendered Service`);
  else {
    if (get(headless, 'spec', 'clusterIP') !== 'None') problems.push('headless Service: clusterIP must be None');
    if (get(headless, 'spec', 'publishNotReadyAddresses') !== true) problems.push('headless Service: publishNotReadyAddresses must be true');
  }
  const podLabels = (get(spec, 'template', 'metadata', 'labels') ?? {}) as Record<string, string>;
  const selects = (sel: unknown) => Object.entries((sel ?? {}) as Record<string, string>).every(([k, v]) => podLabels[k] === v) && Object.keys((sel ?? {}) as Obj).length > 0;
  if (!selects(get(spec, 'selector', 'matchLabels'))) problems.push('StatefulSet: selector does not match the pod labels');
  for (const svc of find('Service')) if (!selects(get(svc, 'spec', 'selector'))) problems.push(`Service ${svc.metadata.name}: selector does not match the pods`);
  const pdbs = find('PodDisruptionBudget');
  if (pdbs.length !== 1) problems.push('expected one PodDisruptionBudget');
  for (const pdb of pdbs) {
    if (get(pdb, 'spec', 'maxUnavailable') !== 1) problems.push('PodDisruptionBudget: maxUnavailable must be 1');
    if (!selects(get(pdb, 'spec', 'selector', 'matchLabels'))) problems.push('PodDisruptionBudget: selector does not match the pods');
  }

  const containers = (get(spec, 'template', 'spec', 'containers') ?? []) as Obj[];
  const container = containers.find((c) => c['name'] === 'ts3gw');
  if (!container) return [...problems, 'StatefulSet: no ts3gw container'];
  const env = new Map(((container['env'] ?? []) as Obj[]).map((e) => [e['name'] as string, e]));
  const value = (n: string) => env.get(n)?.['value'] as string | undefined;
  if (value('TS3GW_NODE_ID') !== 'ordinal') problems.push('TS3GW_NODE_ID must be "ordinal" (node id = pod ordinal + 1)');
  if (get(env.get('TS3GW_POD_NAME'), 'valueFrom', 'fieldRef', 'fieldPath') !== 'metadata.name') problems.push('TS3GW_POD_NAME must come from metadata.name');
  const names = [...env.keys()];
  if (names.indexOf('TS3GW_POD_NAME') > names.indexOf('TS3GW_ADVERTISE_URL')) problems.push('TS3GW_POD_NAME must come before TS3GW_ADVERTISE_URL ($(VAR) expands only earlier variables)');
  const headlessName = headless?.metadata.name ?? '?';
  const raftPort = ((container['ports'] ?? []) as Obj[]).find((p) => p['name'] === 'raft')?.['containerPort'];
  const peers = (value('TS3GW_PEERS') ?? '').split(',');
  const hostRe = new RegExp(`^(\\d+)@${name}-(\\d+)\\.${headlessName}\\.${namespace}\\.svc\\.[a-z0-9.-]+:(\\d+)$`);
  peers.forEach((p, i) => {
    const m = hostRe.exec(p);
    if (!m || Number(m[1]) !== i + 1 || Number(m[2]) !== i || Number(m[3]) !== raftPort) problems.push(`TS3GW_PEERS entry ${i} "${p}" is not ${i + 1}@${name}-${i}.${headlessName}.${namespace}.svc.<domain>:${String(raftPort)}`);
  });
  const bootstrap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === `${name}-bootstrap`);
  const founders = Number(get(bootstrap, 'data', 'founders'));
  if (!(founders >= 1 && founders <= replicas)) problems.push(`bootstrap ConfigMap: founders ${String(get(bootstrap, 'data', 'founders'))} must be 1..replicas (${replicas})`);
  if (peers.length !== founders) problems.push(`TS3GW_PEERS names ${peers.length} nodes, the cluster has ${founders} founders`);
  if (!/^https?:\/\/\$\(TS3GW_POD_NAME\)\./.test(value('TS3GW_ADVERTISE_URL') ?? '')) problems.push('TS3GW_ADVERTISE_URL must be the pod\'s headless DNS name');
  if (value('TS3GW_DATA_DIR') !== '/data') problems.push('TS3GW_DATA_DIR must be /data');
  const mounts = (container['volumeMounts'] ?? []) as Obj[];
  const claims = ((spec['volumeClaimTemplates'] ?? []) as Obj[]).map((c) => get(c, 'metadata', 'name'));
  const dataMount = mounts.find((m) => m['mountPath'] === '/data');
  if (!dataMount || !claims.includes(dataMount['name'])) problems.push('/data must be mounted from a volumeClaimTemplate');

  for (const [probe, path] of [['startupProbe', '/health/live'], ['livenessProbe', '/health/live'], ['readinessProbe', '/health/ready']] as const) {
    if (get(container, probe, 'httpGet', 'path') !== path) problems.push(`${probe} must GET ${path}`);
  }
  const sc = (container['securityContext'] ?? {}) as Obj;
  const podSc = (get(spec, 'template', 'spec', 'securityContext') ?? {}) as Obj;
  if (sc['readOnlyRootFilesystem'] !== true) problems.push('container: readOnlyRootFilesystem must be true');
  if (sc['allowPrivilegeEscalation'] !== false) problems.push('container: allowPrivilegeEscalation must be false');
  if (!((get(sc, 'capabilities', 'drop') ?? []) as string[]).includes('ALL')) problems.push('container: capabilities must drop ALL');
  if (sc['runAsNonRoot'] !== true && podSc['runAsNonRoot'] !== true) problems.push('pod: runAsNonRoot must be true');
  if (!get(spec, 'template', 'spec', 'affinity', 'podAntiAffinity')) problems.push('pod: no podAntiAffinity');
  if (((get(spec, 'template', 'spec', 'topologySpreadConstraints') ?? []) as Obj[]).length === 0) problems.push('pod: no topologySpreadConstraints');
  if (!get(container, 'resources', 'requests')) problems.push('container: no resource requests');

  // References: a Secret or ConfigMap the pod needs must be rendered, unless it is given.
  const rendered = (kind: string, n: string) => objects.some((o) => o.kind === kind && o.metadata.name === n);
  for (const e of env.values()) {
    const secret = get(e, 'valueFrom', 'secretKeyRef', 'name') as string | undefined;
    if (secret !== undefined && !rendered('Secret', secret) && !externalSecrets.includes(secret)) problems.push(`env ${String(e['name'])}: Secret ${secret} is not rendered`);
  }
  for (const from of (container['envFrom'] ?? []) as Obj[]) {
    const cm = get(from, 'configMapRef', 'name') as string | undefined;
    if (cm !== undefined && !rendered('ConfigMap', cm)) problems.push(`envFrom: ConfigMap ${cm} is not rendered`);
  }
  for (const cm of find('ConfigMap')) {
    for (const [k, v] of Object.entries((cm['data'] ?? {}) as Obj)) {
      if (k.endsWith('.json')) {
        try {
          JSON.parse(v as string);
        } catch (err) {
          problems.push(`ConfigMap ${cm.metadata.name}: ${k} is not JSON: ${(err as Error).message}`);
        }
      }
    }
  }
  return problems;
}

/**
 * What each pod's ts3gw makes of the environment the kubelet gives it: every TS3GW_* variable must
 * be one ts3gw reads (it ignores others silently), and the configuration must load (the same
 * loadConfig the process runs) with node id ordinal + 1. A Secret the values name as existing
 * gets placeholder values of the right shape.
 */
export function checkPodConfigs(objects: K8sObject[], namespace: string, externalSecrets: string[] = []): string[] {
  const statefulSet = objects.find((o) => o.kind === 'StatefulSet');
  const container = (get(statefulSet, 'spec', 'template', 'spec', 'containers', 0) ?? undefined) as Obj | undefined;
  if (!statefulSet || !container) return ['no StatefulSet container to check'];
  const known = new Set(configEnvNames());
  const placeholder: Record<string, string> = { 'cluster-secret': 'placeholder-cluster-secret-0123456789', 'root-access-key': 'PLACEHOLDERKEY', 'root-secret-key': 'placeholder-secret-key' };
  const external = (kind: 'Secret' | 'ConfigMap', name: string) => (kind === 'Secret' && externalSecrets.includes(name) ? placeholder : undefined);
  const problems: string[] = [];
  const replicas = get(statefulSet, 'spec', 'replicas') as number;
  for (let ordinal = 0; ordinal < replicas; ordinal++) {
    let env: Record<string, string>;
    try {
      env = kubeletEnv({ objects, statefulSet, namespace, container }, ordinal, { external });
    } catch (err) {
      return [...problems, `pod ${ordinal}: ${(err as Error).message}`];
    }
    for (const name of Object.keys(env)) if (name.startsWith('TS3GW_') && !known.has(name)) problems.push(`pod ${ordinal}: ${name} is not a ts3gw setting (it would be ignored)`);
    try {
      const config = loadConfig({ env, argv: (container['args'] ?? []) as string[] });
      if (config.nodeId !== ordinal + 1) problems.push(`pod ${ordinal}: node id ${config.nodeId}, expected ${ordinal + 1}`);
    } catch (err) {
      problems.push(`pod ${ordinal}: ${(err as Error).message.replace(/\n\s*/g, ' ')}`);
    }
  }
  return problems;
}

/** Every problem of one value set: lint, render, schema validation, invariants, pod configurations. */
export async function checkValueSet(vs: ValueSet, namespace = 'ts3gw-check'): Promise<string[]> {
  const options = { valuesFiles: vs.valuesFiles, set: vs.set ?? [], namespace };
  const lint = await lintChart(options);
  const problems: string[] = [];
  if (!lint.ok) problems.push(`helm lint --strict failed:\n${(lint.stdout + lint.stderr).trim()}`);
  let objects: K8sObject[];
  try {
    objects = await renderChart(options);
  } catch (err) {
    return [...problems, (err as Error).message];
  }
  // A Secret the values say exists already (auth.existingSecret) is not the chart's to render.
  const external = vs.valuesFiles.map((f) => get(parse(readFileSync(f, 'utf8')), 'auth', 'existingSecret')).filter((n): n is string => typeof n === 'string' && n !== '');
  problems.push(...(await validateObjects(objects)), ...checkInvariants(objects, namespace, external), ...checkPodConfigs(objects, namespace, external));
  return problems;
}

async function main(): Promise<void> {
  const files = parseArgs({ options: { values: { type: 'string', multiple: true } } }).values.values ?? [];
  const sets = files.length > 0 ? [{ name: files.join('+'), valuesFiles: files }] : chartValueSets();
  let failed = 0;
  for (const vs of sets) {
    const started = Date.now();
    const problems = await checkValueSet(vs);
    if (problems.length === 0) {
      console.log(`ok   ${vs.name} (${Date.now() - started} ms)`);
      continue;
    }
    failed++;
    console.log(`FAIL ${vs.name}:\n  - ${problems.join('\n  - ')}`);
  }
  if (failed > 0) {
    console.error(`check:helm: ${failed} of ${sets.length} value sets failed`);
    process.exit(1);
  }
  console.log(`check:helm: ${sets.length} value sets passed lint, render, schema and invariant checks`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
