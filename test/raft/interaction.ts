/**
 * Datadriven interaction tests (etcd raft's rafttest/interaction_env): a tiny interpreter that runs
 * the commands of a test/raft/testdata/*.txt script against a TestCluster and renders a transcript.
 *
 * File format: blocks of
 *
 *   command arg key=value key=(1,2,3)
 *   ----
 *   expected output lines
 *   <blank line>
 *
 * Lines starting with '#' and blank lines between blocks are comments. `runScript` returns the
 * file with every output section regenerated; the test compares it to the file (REWRITE=1 writes
 * it back). Commands:
 *
 *   add-nodes <n> voters=(..) [learners=(..)] [prevote=true] [checkquorum=true] [lease=true]
 *             [max-inflight=N] [max-size=N] [forwarding=false]
 *             adds n nodes with the next ids; ids listed in voters/learners start from a bootstrap
 *             snapshot of that membership, others start empty (joining nodes)
 *   campaign <id>               | propose <id> <data>       | read-index <id> <ctx>
 *   propose-conf-change <id> add=<n>|learner=<n>|remove=<n>
 *   transfer-leader <id> to=<n> | tick <id> [n]              | tick-heartbeat <id>
 *   tick-election <id>          (ticks until the node's election timeout fires)
 *   process-ready <id>...       | deliver-msgs [id...]       | drop-msgs [from=<n>] [to=<n>]
 *   stabilize [id...]           (process-ready + deliver-msgs until quiet)
 *   partition (1) (2,3)         | heal
 *   compact <id>                (snapshot at the applied index and compact the log)
 *   report-snapshot <id> <peer> ok|fail  | report-unreachable <id> <peer>
 *   status <id>                 | raft-log <id>
 */
import {
  ConfChangeType,
  EMPTY_BYTES,
  MemoryStorage,
  type Message,
  type NodeId,
  type RaftConfig,
  ReadOnlyOption,
  StateType,
} from '../../src/raft/index.ts';
import { describeConfState, describeEntry, describeMessage, describeReady } from './describe.ts';
import { TestCluster } from './harness.ts';

const enc = new TextEncoder();

interface Command {
  name: string;
  positional: string[];
  kv: Map<string, string>;
  raw: string;
}

function parseCommand(line: string): Command {
  const tokens = line.trim().match(/\S+=\([^)]*\)|\([^)]*\)|\S+/g) ?? [];
  const [name = '', ...rest] = tokens;
  const positional: string[] = [];
  const kv = new Map<string, string>();
  for (const tok of rest) {
    const eq = tok.indexOf('=');
    if (eq > 0) kv.set(tok.slice(0, eq), tok.slice(eq + 1));
    else positional.push(tok);
  }
  return { name, positional, kv, raw: line };
}

function parseIds(s: string | undefined): NodeId[] {
  if (s === undefined) return [];
  const inner = s.replace(/^\(/, '').replace(/\)$/, '').trim();
  if (inner === '') return [];
  return inner.split(/[,\s]+/).map(Number);
}

function num(s: string | undefined, what: string): number {
  const n = Number(s);
  if (s === undefined || !Number.isFinite(n)) throw new Error(`${what}: expected a number, got ${s}`);
  return n;
}

/** Interpreter state for one script. */
export class InteractionEnv {
  readonly cluster = new TestCluster();

  run(cmd: Command): string[] {
    const c = this.cluster;
    const id = () => num(cmd.positional[0], `${cmd.name} id`);
    try {
      switch (cmd.name) {
        case 'add-nodes':
          return this.#addNodes(cmd);
        case 'campaign':
          c.raw(id()).campaign();
          return [];
        case 'propose':
          c.raw(id()).propose(enc.encode(cmd.positional[1] ?? ''));
          return [];
        case 'propose-conf-change': {
          const [type, node] = cmd.kv.has('add')
            ? [ConfChangeType.AddNode, cmd.kv.get('add')]
            : cmd.kv.has('learner')
              ? [ConfChangeType.AddLearnerNode, cmd.kv.get('learner')]
              : [ConfChangeType.RemoveNode, cmd.kv.get('remove')];
          c.raw(id()).proposeConfChange({ type, nodeId: num(node, 'conf change node'), context: EMPTY_BYTES });
          return [];
        }
        case 'read-index':
          c.raw(id()).readIndex(enc.encode(cmd.positional[1] ?? ''));
          return [];
        case 'transfer-leader':
          c.raw(id()).transferLeader(num(cmd.kv.get('to'), 'to'));
          return [];
        case 'tick':
          c.tick(id(), cmd.positional[1] === undefined ? 1 : num(cmd.positional[1], 'ticks'));
          return [];
        case 'tick-heartbeat':
          c.tick(id(), c.raw(id()).raft.heartbeatTimeout);
          return [];
        case 'tick-election': {
          const r = c.raw(id()).raft;
          const n = r.state === StateType.Leader ? r.electionTimeout : r.randomizedElectionTimeout - r.electionElapsed;
          c.tick(id(), Math.max(n, 1));
          return [];
        }
        case 'process-ready':
          return this.#processReady(cmd.positional.map(Number));
        case 'deliver-msgs':
          return this.#deliver(cmd.positional.length === 0 ? undefined : cmd.positional.map(Number));
        case 'drop-msgs': {
          const from = cmd.kv.get('from');
          const to = cmd.kv.get('to');
          const match = (m: Message) =>
            (from === undefined || m.from === Number(from)) && (to === undefined || m.to === Number(to));
          const dropped = c.queue.filter(match);
          c.queue = c.queue.filter((m) => !match(m));
          return dropped.map((m) => `dropped: ${describeMessage(m)}`);
        }
        case 'stabilize':
          return this.#stabilize(cmd.positional.length === 0 ? undefined : cmd.positional.map(Number));
        case 'partition': {
          const groups = cmd.positional.map(parseIds);
          c.heal();
          for (const g of groups) {
            for (const other of groups) {
              if (other === g) continue;
              for (const a of g) for (const b of other) c.blocked.add(`${a}->${b}`);
            }
          }
          return [];
        }
        case 'heal':
          c.heal();
          return [];
        case 'compact': {
          const tn = c.get(id());
          const applied = tn.node.status().appliedIndex;
          tn.storage.createSnapshot(applied, tn.confState, enc.encode(`snap@${applied}`));
          tn.storage.compact(applied);
          return [`node ${tn.id}: snapshot and compaction at ${applied}`];
        }
        case 'report-snapshot':
          c.raw(id()).reportSnapshot(num(cmd.positional[1], 'peer'), cmd.positional[2] === 'ok');
          return [];
        case 'report-unreachable':
          c.raw(id()).reportUnreachable(num(cmd.positional[1], 'peer'));
          return [];
        case 'status':
          return this.#status(id());
        case 'raft-log': {
          const s = c.get(id()).storage;
          const out = [`first=${s.firstIndex()} last=${s.lastIndex()}`];
          if (s.lastIndex() >= s.firstIndex()) {
            for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Number.POSITIVE_INFINITY)) out.push(describeEntry(e));
          }
          return out;
        }
        default:
          throw new Error(`unknown command ${cmd.name}`);
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (typeof code === 'string' && code.startsWith('RAFT_')) return [`error: ${code}`];
      throw err;
    }
  }

  #addNodes(cmd: Command): string[] {
    const n = num(cmd.positional[0], 'add-nodes count');
    const voters = parseIds(cmd.kv.get('voters'));
    const learners = parseIds(cmd.kv.get('learners'));
    const overrides: Partial<RaftConfig> = {};
    if (cmd.kv.get('prevote') === 'true') overrides.preVote = true;
    if (cmd.kv.get('checkquorum') === 'true') overrides.checkQuorum = true;
    if (cmd.kv.get('lease') === 'true') overrides.readOnlyOption = ReadOnlyOption.LeaseBased;
    if (cmd.kv.get('forwarding') === 'false') overrides.disableProposalForwarding = true;
    if (cmd.kv.has('max-inflight')) overrides.maxInflightMsgs = num(cmd.kv.get('max-inflight'), 'max-inflight');
    if (cmd.kv.has('max-size')) overrides.maxSizePerMsgBytes = num(cmd.kv.get('max-size'), 'max-size');
    const out: string[] = [];
    const start = this.cluster.nodes.size + 1;
    for (let id = start; id < start + n; id++) {
      const founding = voters.includes(id) || learners.includes(id);
      const storage = founding ? MemoryStorage.bootstrap({ voters, learners }) : new MemoryStorage();
      this.cluster.add(id, storage, overrides);
      const st = this.cluster.raw(id).status();
      out.push(
        `node ${id}: term=${st.hardState.term} commit=${st.hardState.commit} applied=${st.appliedIndex} ${describeConfState(st.confState)}`,
      );
    }
    return out;
  }

  #processReady(ids: NodeId[]): string[] {
    const out: string[] = [];
    for (const id of ids) {
      const rd = this.cluster.processReady(id);
      if (rd === undefined) {
        out.push(`> ${id}: no Ready`);
        continue;
      }
      out.push(`> ${id} handling Ready`);
      for (const line of describeReady(rd)) out.push(`  ${line}`);
    }
    return out;
  }

  #deliver(ids: NodeId[] | undefined): string[] {
    const out: string[] = [];
    const targets = ids ?? [...new Set(this.cluster.queue.map((m) => m.to))].sort((a, b) => a - b);
    for (const to of targets) {
      const msgs = this.cluster.queue.filter((m) => m.to === to);
      if (msgs.length === 0) continue;
      out.push(`> ${to} receiving messages`);
      for (const m of msgs) {
        const blocked = this.cluster.blocked.has(`${m.from}->${m.to}`);
        out.push(`  ${describeMessage(m)}${blocked ? ' (dropped: partitioned)' : ''}`);
      }
      const before = out.length;
      try {
        this.cluster.deliver((m) => m.to === to);
      } catch (err) {
        out.splice(before, 0, `  error: ${(err as Error).message}`);
      }
    }
    return out;
  }

  #stabilize(ids: NodeId[] | undefined): string[] {
    const all = () => ids ?? [...this.cluster.nodes.keys()].sort((a, b) => a - b);
    const out: string[] = [];
    for (let round = 0; round < 100; round++) {
      const ready = all().filter((id) => this.cluster.raw(id).hasReady());
      if (ready.length > 0) out.push(...this.#processReady(ready));
      const deliverTo = all().filter((id) => this.cluster.queue.some((m) => m.to === id));
      if (deliverTo.length > 0) out.push(...this.#deliver(deliverTo));
      if (ready.length === 0 && deliverTo.length === 0) return out;
    }
    throw new Error('stabilize did not converge in 100 rounds');
  }

  #status(id: NodeId): string[] {
    const st = this.cluster.raw(id).status();
    const out = [
      `node ${id}: ${st.softState.raftState} lead=${st.softState.lead} term=${st.hardState.term} vote=${st.hardState.vote} commit=${st.hardState.commit} applied=${st.appliedIndex} last=${st.lastIndex} ${describeConfState(st.confState)}`,
    ];
    for (const [peer, pr] of [...st.progress].sort(([a], [b]) => a - b)) {
      out.push(
        `  ${peer}: ${pr.state} match=${pr.match} next=${pr.next}${pr.isLearner ? ' learner' : ''}${pr.inflight > 0 ? ` inflight=${pr.inflight}` : ''}${pr.pendingSnapshot > 0 ? ` pendingSnapshot=${pr.pendingSnapshot}` : ''}`,
      );
    }
    return out;
  }
}

/** Runs a script and returns the file text with every output section regenerated. */
export function runScript(text: string): string {
  const env = new InteractionEnv();
  const lines = text.split('\n');
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (line.trim() === '' || line.startsWith('#')) {
      out.push(line);
      i++;
      continue;
    }
    out.push(line);
    i++;
    if ((lines[i] ?? '') !== '----') throw new Error(`line ${i + 1}: expected ---- after "${line}"`);
    out.push('----');
    i++;
    while (i < lines.length && (lines[i] ?? '') !== '') i++; // skip the old output
    const result = env.run(parseCommand(line));
    out.push(...(result.length === 0 ? ['ok'] : result));
    if (i < lines.length) {
      out.push('');
      i++;
    } else {
      out.push('');
    }
  }
  // Normalise: exactly one trailing newline.
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}
