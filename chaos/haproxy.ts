/**
 * HAProxy (Debian package `haproxy`, installed when missing) in front of a local cluster, as
 * users deploy ts3gw: HTTP mode, round robin per request, health checks on /health/ready so
 * a node without a leader (a minority, a paused or killed node) is taken out of rotation.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import type { ClusterState } from '../cluster/local-cluster.ts';
import { systemBinary, waitUntil } from '../cluster/local-cluster.ts';
import { ensureTool } from './faults.ts';

/** A running load balancer. */
export interface LoadBalancer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts HAProxy on 127.0.0.1 in front of every node; resolves once it accepts connections. */
export async function startHaproxy(state: ClusterState, dir: string): Promise<LoadBalancer> {
  ensureTool('haproxy', 'haproxy');
  const port = await freePort();
  const config = [
    'global',
    '  maxconn 1024',
    '  nbthread 1',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 10s',
    '  timeout server 10s',
    'frontend s3',
    `  bind 127.0.0.1:${port}`,
    '  default_backend nodes',
    'backend nodes',
    '  balance roundrobin',
    '  option httpchk GET /health/ready',
    '  http-check expect status 200',
    '  default-server inter 250ms fall 2 rise 2',
    ...state.nodes.map((n) => `  server n${n.id} ${n.address}:${n.s3Port} check`),
    '',
  ].join('\n');
  const configFile = join(dir, 'haproxy.cfg');
  writeFileSync(configFile, config);
  const child: ChildProcess = spawn(systemBinary('haproxy')!, ['-db', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 10_000) stderr += d.toString();
  });
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  await waitUntil(
    async () => {
      if (exited) throw new Error(`haproxy exited: ${stderr.trim().split('\n').slice(-2).join(' ')}`);
      return accepts();
    },
    10_000,
    'haproxy to listen',
    50,
  );
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3_000))]);
      if (!exited) child.kill('SIGKILL');
      await gone;
    },
  };
}
