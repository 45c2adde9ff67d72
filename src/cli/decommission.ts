/**
 * ts3ctl decommission / is-safe-to-remove: the client side of the admin API's decommission
 * workflow (src/membership/decommission.ts). `--wait` follows the drain with a progress bar and
 * an ETA until the node is removed, asking a node other than the leaving one (which stops
 * hearing the log once removed) and riding out leader changes (503s are retried).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DecommissionRecord } from '../meta/types.ts';
import { type AdminTarget, adminRequest } from './admin-client.ts';
import { EtaEstimator, formatBytes, formatDuration, progressBar } from './format.ts';

/** Poll interval of --wait. */
const WAIT_POLL_MS = 1_000;

interface NodesBody {
  nodes: Array<{ nodeId: number; s3Url?: string }>;
}

/** Starts (or joins) the decommission of `nodeId`; with `wait`, follows it to the end. */
export async function decommission(target: AdminTarget, nodeId: number, options: { wait: boolean; json: boolean; timeoutSeconds?: number }, out: (s: string) => void): Promise<number> {
  const started = await adminRequest<DecommissionRecord & { message?: string; problems?: string[] }>(target, 'POST', '/decommission', { id: nodeId });
  if (started.status === 409) {
    process.stderr.write(`ts3ctl: node ${nodeId} cannot be decommissioned now:\n${(started.body.problems ?? [started.body.message]).map((p) => `  - ${p}`).join('\n')}\n`);
    return 1;
  }
  if (started.status !== 200 && started.status !== 202) throw new Error(`decommission: ${started.status} ${started.body.message ?? JSON.stringify(started.body)}`);
  if (!options.wait) {
    out(options.json ? JSON.stringify(started.body) : `node ${nodeId}: ${started.body.state} (follow with: ts3ctl decommission ${nodeId} --wait)`);
    return 0;
  }
  // Follow through another node: the leaving one stops hearing the log once it is removed.
  const observer = await otherNode(target, nodeId);
  const eta = new EtaEstimator();
  const deadline = options.timeoutSeconds ? Date.now() + options.timeoutSeconds * 1000 : Number.POSITIVE_INFINITY;
  const tty = process.stdout.isTTY === true && !options.json;
  let lastLine = '';
  if (!options.json) out(`decommissioning node ${nodeId} (following through ${observer.endpoint})`);
  while (Date.now() < deadline) {
    let record: DecommissionRecord | undefined;
    try {
      const res = await adminRequest<DecommissionRecord>(observer, 'GET', '/decommission', { id: nodeId });
      if (res.status === 200) record = res.body;
    } catch {
      // A node restarting, an election: try again on the next tick.
    }
    if (record) {
      const line = progressLine(record, eta);
      if (options.json) {
        if (line !== lastLine) out(JSON.stringify(record));
      } else if (tty) {
        process.stdout.write(`\r${line}\u001b[K`);
      } else if (line !== lastLine) {
        out(line);
      }
      lastLine = line;
      if (record.state === 'removed') {
        if (tty) process.stdout.write('\n');
        if (!options.json) out(`node ${nodeId} is removed from the cluster: stop it; its data directory can be deleted`);
        return 0;
      }
    }
    await sleep(WAIT_POLL_MS);
  }
  if (tty) process.stdout.write('\n');
  process.stderr.write(`ts3ctl: node ${nodeId} was not removed within ${options.timeoutSeconds} s (it keeps draining; run again with --wait to follow)\n`);
  return 1;
}

/** One status line: state, bar over bytes moved, chunks, ETA. */
export function progressLine(r: DecommissionRecord, eta: EtaEstimator): string {
  if (r.state === 'removed') return `node ${r.nodeId}: removed ${progressBar(1)}`;
  if (r.remainingChunks === undefined) return `node ${r.nodeId}: ${r.state}, measuring what it holds…`;
  const total = r.totalBytes ?? 0;
  const done = total - (r.remainingBytes ?? 0);
  const fraction = r.state === 'drained' ? 1 : total > 0 ? done / total : 0;
  const left = r.state === 'drained' ? 0 : eta.update(Date.now(), done, total);
  const chunks = `${(r.totalChunks ?? 0) - r.remainingChunks}/${r.totalChunks ?? 0} chunks`;
  return `node ${r.nodeId}: ${r.state.padEnd(8)} ${progressBar(fraction)}  ${formatBytes(done)} / ${formatBytes(total)}  ${chunks}  ETA ${r.state === 'drained' ? 'removing' : formatDuration(left)}`;
}

/** The admin target of a registered node other than `nodeId` (the endpoint itself if it is one). */
async function otherNode(target: AdminTarget, nodeId: number): Promise<AdminTarget> {
  const res = await adminRequest<NodesBody>(target, 'GET', '/nodes');
  const here = res.status === 200 ? res.body.nodes : [];
  const other = here.find((n) => n.nodeId !== nodeId && n.s3Url);
  const endpointIsLeaving = here.find((n) => n.nodeId === nodeId)?.s3Url === new URL(target.endpoint).origin;
  return endpointIsLeaving && other?.s3Url ? { ...target, endpoint: other.s3Url } : target;
}

/** Prints whether removing `nodeId` now is safe; exit 0 when safe, 1 when not. */
export async function isSafeToRemove(target: AdminTarget, nodeId: number, json: boolean, out: (s: string) => void): Promise<number> {
  const res = await adminRequest<{ safe: boolean; problems: string[]; message?: string }>(target, 'GET', '/safe-to-remove', { id: nodeId });
  if (res.status !== 200) throw new Error(`safe-to-remove: ${res.status} ${res.body.message ?? JSON.stringify(res.body)}`);
  if (json) out(JSON.stringify(res.body));
  else out(res.body.safe ? `node ${nodeId}: safe to remove` : `node ${nodeId}: NOT safe to remove\n${res.body.problems.map((p) => `  - ${p}`).join('\n')}`);
  return res.body.safe ? 0 : 1;
}
