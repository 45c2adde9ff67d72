/**
 * ts3ctl decommission / is-safe-to-remove: the client side of the admin API's decommission
 * workflow (src/membership/decommission.ts). `--wait` follows the drain with a progress bar and
 * an ETA until the node is removed, asking a node other than the leaving one (which stops
 * hearing the log once removed), riding out leader changes (503s are retried) and moving on to
 * another node when the one it asks dies (FailoverTarget). The record in the log changes once
 * per maintenance pass; between reports, progress comes live from the draining node's own
 * maintenance view (what it dropped after confirmed moves since its last report).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DecommissionRecord } from '../meta/types.ts';
import { type AdminTarget, adminRequest, FailoverTarget } from './admin-client.ts';
import { EtaEstimator, formatBytes, formatDuration, ProgressPrinter, progressBar } from './format.ts';

/** Poll interval of --wait. */
const WAIT_POLL_MS = 1_000;

interface NodesBody {
  nodes: Array<{ nodeId: number; s3Url?: string }>;
}

/** The draining node's maintenance counters that show moves within a pass. */
interface LiveCounters {
  ts3gw_rebalance_dropped_chunks_total: number;
  ts3gw_rebalance_dropped_bytes_total: number;
}

/** The record with what the draining node moved since it last reported (clamped to what was left). */
export function withLiveProgress(r: DecommissionRecord, live: LiveCounters | undefined): DecommissionRecord {
  if (r.state !== 'draining' || live === undefined || r.remainingChunks === undefined || r.droppedChunksAtReport === undefined || r.droppedBytesAtReport === undefined) return r;
  // Counters restart at 0 with the process: a smaller value than at the report means nothing known.
  const chunks = Math.max(0, live.ts3gw_rebalance_dropped_chunks_total - r.droppedChunksAtReport);
  const bytes = Math.max(0, live.ts3gw_rebalance_dropped_bytes_total - r.droppedBytesAtReport);
  return { ...r, remainingChunks: Math.max(0, r.remainingChunks - chunks), remainingBytes: Math.max(0, (r.remainingBytes ?? 0) - bytes) };
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
  const printer = new ProgressPrinter(options.json, out);
  const observer = await FailoverTarget.discover(target, nodeId, (from, to, why) => {
    if (!options.json) out(`${printer.tty ? '\n' : ''}${from} stopped answering (${why}); following through ${to}`);
  });
  const eta = new EtaEstimator();
  const deadline = options.timeoutSeconds ? Date.now() + options.timeoutSeconds * 1000 : Number.POSITIVE_INFINITY;
  let leavingUrl: string | undefined;
  if (!options.json) out(`decommissioning node ${nodeId} (following through ${observer.endpoint})`);
  while (Date.now() < deadline) {
    let record: DecommissionRecord | undefined;
    try {
      const res = await observer.request<DecommissionRecord>('GET', '/decommission', { id: nodeId });
      if (res.status === 200) record = res.body;
      leavingUrl ??= await urlOfNode(observer, nodeId);
    } catch {
      // No node answered this time (an election, restarts): try again on the next tick.
    }
    if (record) {
      record = withLiveProgress(record, leavingUrl ? await liveCounters(observer.at(leavingUrl)) : undefined);
      const line = progressLine(record, eta);
      printer.show(line, record);
      if (record.state === 'removed') {
        printer.endLine();
        if (!options.json) out(`node ${nodeId} is removed from the cluster: stop it; its data directory can be deleted`);
        return 0;
      }
    }
    await sleep(WAIT_POLL_MS);
  }
  printer.endLine();
  process.stderr.write(`ts3ctl: node ${nodeId} was not removed within ${options.timeoutSeconds} s (it keeps draining; run again with --wait to follow)\n`);
  return 1;
}

/** One status line: state, bar over bytes moved, chunks, ETA. */
export function progressLine(r: DecommissionRecord, eta: EtaEstimator): string {
  if (r.state === 'removed') {
    const moved = r.totalChunks === undefined ? '' : `  ${formatBytes(r.totalBytes ?? 0)} / ${formatBytes(r.totalBytes ?? 0)}  ${r.totalChunks}/${r.totalChunks} chunks moved`;
    return `node ${r.nodeId}: removed  ${progressBar(1)}${moved}`;
  }
  if (r.remainingChunks === undefined) return `node ${r.nodeId}: ${r.state}, measuring what it holds…`;
  const total = r.totalBytes ?? 0;
  const done = total - (r.remainingBytes ?? 0);
  const fraction = r.state === 'drained' ? 1 : total > 0 ? done / total : 0;
  const left = r.state === 'drained' ? 0 : eta.update(Date.now(), done, total);
  const chunks = `${(r.totalChunks ?? 0) - r.remainingChunks}/${r.totalChunks ?? 0} chunks`;
  return `node ${r.nodeId}: ${r.state.padEnd(8)} ${progressBar(fraction)}  ${formatBytes(done)} / ${formatBytes(total)}  ${chunks}  ETA ${r.state === 'drained' ? 'removing' : formatDuration(left)}`;
}

/** The S3 URL of a registered node, as the cluster knows it. */
async function urlOfNode(observer: FailoverTarget, nodeId: number): Promise<string | undefined> {
  const res = await observer.request<NodesBody>('GET', '/nodes');
  return res.status === 200 ? res.body.nodes.find((n) => n.nodeId === nodeId)?.s3Url : undefined;
}

/** A node's maintenance counters, or undefined when it does not answer (then the record alone shows progress). */
async function liveCounters(target: AdminTarget): Promise<LiveCounters | undefined> {
  try {
    const res = await adminRequest<LiveCounters>(target, 'GET', '/maintenance');
    return res.status === 200 && typeof res.body.ts3gw_rebalance_dropped_bytes_total === 'number' ? res.body : undefined;
  } catch {
    // The draining node restarting or gone: the record's per-pass numbers still show progress.
    return undefined;
  }
}

/** Prints whether removing `nodeId` now is safe; exit 0 when safe, 1 when not. */
export async function isSafeToRemove(target: AdminTarget, nodeId: number, json: boolean, out: (s: string) => void): Promise<number> {
  const res = await adminRequest<{ safe: boolean; problems: string[]; message?: string }>(target, 'GET', '/safe-to-remove', { id: nodeId });
  if (res.status !== 200) throw new Error(`safe-to-remove: ${res.status} ${res.body.message ?? JSON.stringify(res.body)}`);
  if (json) out(JSON.stringify(res.body));
  else out(res.body.safe ? `node ${nodeId}: safe to remove` : `node ${nodeId}: NOT safe to remove\n${res.body.problems.map((p) => `  - ${p}`).join('\n')}`);
  return res.body.safe ? 0 : 1;
}
