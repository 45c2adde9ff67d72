/**
 * ts3ctl replace: the client side of the admin API's replacement workflow
 * (src/membership/replace.ts). Asking is refused with the reasons while the node still answers
 * or too few other voters answer; else the cluster waits for a new node on an empty disk started
 * with the dead node's id. `--wait` follows it (through any node that answers, never the one
 * replaced) until the new node has caught up and refilled its chunks, showing its log lag and
 * the refill of its maintenance pass as it goes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplacementRecord } from '../meta/types.ts';
import { type AdminTarget, adminRequest, FailoverTarget } from './admin-client.ts';
import { formatBytes, ProgressPrinter } from './format.ts';

/** Poll interval of --wait. */
const WAIT_POLL_MS = 1_000;

interface NodesBody {
  leader: number;
  nodes: Array<{ nodeId: number; role: string; s3Url?: string; raftAddress?: string; lagEntries?: number }>;
}

/** The new node's maintenance view as far as the refill shows in it. */
interface RefillView {
  phase?: string;
  repairExamined?: number;
  repairTotal?: number;
  ts3gw_repair_fetched_chunks_total?: number;
  ts3gw_repair_fetched_bytes_total?: number;
}

/** Asks for `nodeId`'s place to be given to a new node; with `wait`, follows it to the end. */
export async function replace(target: AdminTarget, nodeId: number, options: { wait: boolean; json: boolean; timeoutSeconds?: number }, out: (s: string) => void): Promise<number> {
  const asked = await adminRequest<ReplacementRecord & { message?: string; problems?: string[] }>(target, 'POST', '/replace', { id: nodeId });
  if (asked.status === 409) {
    process.stderr.write(`ts3ctl: node ${nodeId} cannot be replaced now:\n${(asked.body.problems ?? [asked.body.message]).map((p) => `  - ${p}`).join('\n')}\n`);
    return 1;
  }
  if (asked.status !== 200 && asked.status !== 202) throw new Error(`replace: ${asked.status} ${asked.body.message ?? JSON.stringify(asked.body)}`);
  if (!options.json) {
    out(
      asked.body.state === 'waiting'
        ? `node ${nodeId}: waiting for its replacement: start a new node on an empty data directory with TS3GW_NODE_ID=${nodeId}, TS3GW_JOIN=<any member's Raft address> and the cluster secret`
        : `node ${nodeId}: replacement ${asked.body.state}`,
    );
  }
  if (!options.wait) {
    if (options.json) out(JSON.stringify(asked.body));
    return 0;
  }
  const printer = new ProgressPrinter(options.json, out);
  const observer = await FailoverTarget.discover(target, nodeId, (from, to, why) => {
    if (!options.json) out(`${printer.tty ? '\n' : ''}${from} stopped answering (${why}); following through ${to}`);
  });
  const deadline = options.timeoutSeconds ? Date.now() + options.timeoutSeconds * 1000 : Number.POSITIVE_INFINITY;
  while (Date.now() < deadline) {
    let record: ReplacementRecord | undefined;
    let line: string | undefined;
    try {
      const res = await observer.request<ReplacementRecord>('GET', '/replace', { id: nodeId });
      if (res.status === 200) record = res.body;
      if (record) line = await replacementLine(record, observer);
    } catch {
      // No node answered this time (an election, restarts): try again on the next tick.
    }
    if (record && line !== undefined) {
      printer.show(line, record);
      if (record.state === 'done') {
        printer.endLine();
        if (!options.json) out(`node ${nodeId} is replaced: the new node holds its share of the chunks`);
        return 0;
      }
    }
    await sleep(WAIT_POLL_MS);
  }
  printer.endLine();
  process.stderr.write(`ts3ctl: node ${nodeId}'s replacement did not finish within ${options.timeoutSeconds} s (it goes on; run again with --wait to follow)\n`);
  return 1;
}

/** One status line: the state, and for a joined node its role, log lag and refill so far. */
async function replacementLine(r: ReplacementRecord, observer: FailoverTarget): Promise<string> {
  if (r.state === 'waiting') return `node ${r.nodeId}: waiting for a new node to start as node ${r.nodeId}`;
  if (r.state === 'done') {
    const refill = `${r.refilledChunks ?? 0} chunks (${formatBytes(r.refilledBytes ?? 0)}) refilled`;
    return `node ${r.nodeId}: done, ${refill}${(r.unavailableChunks ?? 0) > 0 ? `, ${r.unavailableChunks} had no readable copy anywhere` : ''}`;
  }
  const nodes = await observer.request<NodesBody>('GET', '/nodes');
  const self = nodes.status === 200 ? nodes.body.nodes.find((n) => n.nodeId === r.nodeId) : undefined;
  const lag = self?.lagEntries === undefined ? '' : `, ${self.lagEntries} entries behind`;
  let refill = '';
  if (self?.s3Url) {
    try {
      const m = await adminRequest<RefillView>(observer.at(self.s3Url), 'GET', '/maintenance');
      if (m.status === 200) {
        const fetched = `${m.body.ts3gw_repair_fetched_chunks_total ?? 0} chunks (${formatBytes(m.body.ts3gw_repair_fetched_bytes_total ?? 0)}) fetched`;
        const pass = m.body.phase === 'repair' && m.body.repairTotal ? `, repair ${m.body.repairExamined ?? 0}/${m.body.repairTotal}` : '';
        refill = `, ${fetched}${pass}`;
      }
    } catch {
      // The new node is still starting: its log position (above) is what there is to show.
    }
  }
  return `node ${r.nodeId}: joined as ${self?.role ?? 'member'}${lag}${refill}`;
}
