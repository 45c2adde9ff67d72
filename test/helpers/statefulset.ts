/**
 * Runs the chart's StatefulSet on loopback: renders helm/ts3gw, works out the environment the
 * kubelet would give pod N (downward API fields, Secret and ConfigMap references, envFrom, and
 * `$(VAR)` expansion, in Kubernetes' order), and starts the image's start command with it. Pod N's
 * headless-Service DNS name stands for a loopback address of its own (127.0.0.<11+N>), the way a
 * pod has an IP of its own; every pod listens on the same ports, on its own address.
 *
 * The only changes to what the chart renders are those one host forces: a DNS name becomes that
 * pod's address, a listen address of 0.0.0.0 (all of the pod's own network namespace) becomes the
 * pod's address, and /data (its PVC) becomes a directory of its own. Anything in the pod spec this
 * emulation does not understand throws, so a chart change cannot silently bypass it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startCommand } from '../../scripts/lint-dockerfile.ts';
import { type K8sObject, kubeletEnv, ROOT, renderChart, type RenderOptions } from '../../scripts/helm-tools.ts';

type Obj = Record<string, unknown>;

/** Loopback address that stands for pod `ordinal`. */
export const podAddress = (ordinal: number): string => `127.0.0.${11 + ordinal}`;

/** A port free on every given address (bound and released on each). */
export async function portFreeOn(addresses: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(
      addresses.map(
        (host) =>
          new Promise<boolean>((resolve) => {
            const srv = createServer();
            srv.once('error', () => resolve(false));
            srv.listen(port, host, () => srv.close(() => resolve(true)));
          }),
      ),
    );
    if (free.every(Boolean)) return port;
  }
  throw new Error(`no port free on all of ${addresses.join(', ')}`);
}

/** The rendered chart and what the pods are made of. */
export interface RenderedStatefulSet {
  objects: K8sObject[];
  statefulSet: K8sObject;
  namespace: string;
  replicas: number;
  /** The ts3gw container of the pod template. */
  container: Obj;
}

/** Renders the chart and picks out the StatefulSet. */
export async function renderStatefulSet(options: RenderOptions & { namespace: string }): Promise<RenderedStatefulSet> {
  const objects = await renderChart(options);
  const statefulSet = objects.find((o) => o.kind === 'StatefulSet');
  if (!statefulSet) throw new Error('the chart rendered no StatefulSet');
  const spec = statefulSet['spec'] as Obj;
  const podSpec = (spec['template'] as Obj)['spec'] as Obj;
  const containers = podSpec['containers'] as Obj[];
  if (containers.length !== 1 || podSpec['initContainers'] !== undefined) throw new Error('the emulation runs exactly one container and no init containers');
  return { objects, statefulSet, namespace: options.namespace, replicas: spec['replicas'] as number, container: containers[0]! };
}

/** Replaces every pod's headless DNS name with its loopback address, in every value. */
export function mapPodHosts(r: RenderedStatefulSet, env: Record<string, string>, ordinals: number): Record<string, string> {
  const headless = (r.statefulSet['spec'] as Obj)['serviceName'] as string;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    out[k] = v.replace(new RegExp(`\\b(${r.statefulSet.metadata.name})-(\\d+)\\.${headless}\\.${r.namespace}\\.svc\\.[a-z0-9.-]+`, 'g'), (m, _set: string, n: string) => {
      if (Number(n) >= ordinals) throw new Error(`${m} names a pod beyond the ${ordinals} emulated`);
      return podAddress(Number(n));
    });
  }
  return out;
}

/** One emulated pod. */
export interface SimPod {
  ordinal: number;
  /** Its PVC. */
  dataDir: string;
  env: Record<string, string>;
  proc: ChildProcess | undefined;
  output: string[];
  /** http://<pod address>:<s3 port>, what the Service and the kubelet's probes reach. */
  url: string;
}

/** The environment the pod's process gets on this host (see the header for the three mappings). */
export function podProcessEnv(r: RenderedStatefulSet, ordinal: number, dataDir: string): Record<string, string> {
  const env = mapPodHosts(r, kubeletEnv(r, ordinal), r.replicas);
  for (const k of ['TS3GW_S3_HOST', 'TS3GW_RAFT_HOST']) if (env[k] === '0.0.0.0') env[k] = podAddress(ordinal);
  const mounts = (r.container['volumeMounts'] ?? []) as Obj[];
  if (env['TS3GW_DATA_DIR'] !== '/data' || !mounts.some((m) => m['mountPath'] === '/data')) throw new Error('the chart no longer keeps data on the /data volume');
  env['TS3GW_DATA_DIR'] = dataDir;
  return env;
}

/** Creates pod `ordinal` (not started). */
export async function createPod(r: RenderedStatefulSet, ordinal: number): Promise<SimPod> {
  const dataDir = await mkdtemp(join(tmpdir(), `ts3gw-sts-${ordinal}-`));
  const env = podProcessEnv(r, ordinal, dataDir);
  return { ordinal, dataDir, env, proc: undefined, output: [], url: `http://${podAddress(ordinal)}:${env['TS3GW_S3_PORT']}` };
}

/**
 * Starts the pod's container: the image's start command (Dockerfile ENTRYPOINT + CMD, i.e. `node
 * src/main.ts`) with the container's args, in the repository (the image's /app), with exactly the
 * pod's environment plus PATH. Resolves once it serves S3.
 */
export async function startPod(r: RenderedStatefulSet, pod: SimPod, timeoutMs = 30_000): Promise<void> {
  const command = startCommand(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  if (command?.[0] !== 'node') throw new Error(`the image's start command ${JSON.stringify(command)} is not a node command`);
  const args = [...command.slice(1), ...((r.container['args'] ?? []) as string[])];
  if (r.container['command'] !== undefined) throw new Error('the chart overrides the image command');
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...pod.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  pod.proc = proc;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pod ${pod.ordinal} did not start:\n${pod.output.slice(-30).join('\n')}`)), timeoutMs);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      pod.output.push(line);
      if (line.includes('ts3gw is serving S3')) {
        clearTimeout(timer);
        resolve();
      }
    });
    createInterface({ input: proc.stderr! }).on('line', (line) => pod.output.push(line));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`pod ${pod.ordinal} exited with ${code} before serving:\n${pod.output.slice(-30).join('\n')}`));
    });
  });
}

/** Stops the pod as the kubelet does: SIGTERM, SIGKILL after the grace period. Resolves with the exit code. */
export async function stopPod(r: RenderedStatefulSet, pod: SimPod): Promise<number | null> {
  const proc = pod.proc;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
  const graceS = ((r.statefulSet['spec'] as Obj)['template'] as { spec: { terminationGracePeriodSeconds?: number } }).spec.terminationGracePeriodSeconds ?? 30;
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceS * 1000);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** GETs one of the probe paths the way the kubelet's httpGet probe does; true on 2xx/3xx. */
export async function probe(pod: SimPod, path: string): Promise<boolean> {
  try {
    const res = await fetch(`${pod.url}${path}`, { signal: AbortSignal.timeout(3_000) });
    await res.arrayBuffer();
    return res.status >= 200 && res.status < 400;
  } catch {
    // Connection refused or timed out: the probe fails, as the kubelet's would.
    return false;
  }
}
