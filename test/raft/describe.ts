/**
 * Human-readable one-line renderings of Raft values for datadriven transcripts and debugging.
 * Format loosely follows etcd's raft/util.go (DescribeMessage, DescribeEntry, DescribeReady).
 */
import {
  ConfChangeType,
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  type Message,
  type Ready,
  type Snapshot,
} from '../../src/raft/index.ts';

const dec = new TextDecoder();

export function describeConfState(cs: ConfState): string {
  return `Voters:[${cs.voters.join(' ')}] Learners:[${cs.learners.join(' ')}]`;
}

export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    const verb = cc.type === ConfChangeType.AddNode ? 'v' : cc.type === ConfChangeType.AddLearnerNode ? 'l' : 'r';
    return `${e.term}/${e.index} EntryConfChange ${verb}${cc.nodeId}`;
  }
  return `${e.term}/${e.index} EntryNormal ${JSON.stringify(dec.decode(e.data))}`;
}

export function describeSnapshot(s: Snapshot): string {
  return `Index:${s.metadata.index} Term:${s.metadata.term} ConfState:${describeConfState(s.metadata.confState)} Data:${JSON.stringify(dec.decode(s.data))}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.context.byteLength > 0) s += ` Context:${JSON.stringify(dec.decode(m.context))}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.snapshot !== undefined) s += ` Snapshot:{${describeSnapshot(m.snapshot)}}`;
  return s;
}

/** Renders a Ready as indented lines (no blank lines: they delimit datadriven blocks). */
export function describeReady(rd: Ready, indent = '  '): string[] {
  const out: string[] = [];
  if (rd.softState !== undefined) out.push(`Lead:${rd.softState.lead} State:${rd.softState.raftState}`);
  if (rd.hardState !== undefined) {
    out.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote} Commit:${rd.hardState.commit}`);
  }
  if (rd.entries.length > 0) {
    out.push('Entries:');
    for (const e of rd.entries) out.push(`${indent}${describeEntry(e)}`);
  }
  if (rd.snapshot !== undefined) out.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.committedEntries.length > 0) {
    out.push('CommittedEntries:');
    for (const e of rd.committedEntries) out.push(`${indent}${describeEntry(e)}`);
  }
  if (rd.messages.length > 0) {
    out.push('Messages:');
    for (const m of rd.messages) out.push(`${indent}${describeMessage(m)}`);
  }
  if (rd.readStates.length > 0) {
    out.push('ReadStates:');
    for (const r of rd.readStates) out.push(`${indent}Index:${r.index} RequestCtx:${JSON.stringify(dec.decode(r.requestCtx))}`);
  }
  if (rd.mustSync) out.push('MustSync');
  return out;
}
