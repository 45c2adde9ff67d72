/**
 * Wire mapping between the Raft core's plain messages and the generated protobuf types. The only
 * place that knows both shapes; a proto change stops here.
 */
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  makeMessage,
  type SnapshotMetadata,
} from '../raft/index.ts';
import * as pb from '../gen/ts3gw/raft/v1/raft.ts';

const TO_PB: Record<string, pb.MessageType> = {
  [MessageType.Prop]: pb.MessageType.MSG_PROP,
  [MessageType.App]: pb.MessageType.MSG_APP,
  [MessageType.AppResp]: pb.MessageType.MSG_APP_RESP,
  [MessageType.Vote]: pb.MessageType.MSG_VOTE,
  [MessageType.VoteResp]: pb.MessageType.MSG_VOTE_RESP,
  [MessageType.PreVote]: pb.MessageType.MSG_PRE_VOTE,
  [MessageType.PreVoteResp]: pb.MessageType.MSG_PRE_VOTE_RESP,
  [MessageType.Snap]: pb.MessageType.MSG_SNAP,
  [MessageType.Heartbeat]: pb.MessageType.MSG_HEARTBEAT,
  [MessageType.HeartbeatResp]: pb.MessageType.MSG_HEARTBEAT_RESP,
  [MessageType.TransferLeader]: pb.MessageType.MSG_TRANSFER_LEADER,
  [MessageType.TimeoutNow]: pb.MessageType.MSG_TIMEOUT_NOW,
  [MessageType.ReadIndex]: pb.MessageType.MSG_READ_INDEX,
  [MessageType.ReadIndexResp]: pb.MessageType.MSG_READ_INDEX_RESP,
};
const FROM_PB = new Map<number, MessageType>(Object.entries(TO_PB).map(([k, v]) => [v, k as MessageType]));

/** Core message → protobuf. Local-only message types never reach the wire (throws TypeError). */
export function messageToWire(m: Message): pb.Message {
  const type = TO_PB[m.type];
  if (type === undefined) throw new TypeError(`message type ${m.type} is local-only`);
  return {
    type,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryToWire),
    commit: m.commit,
    ...(m.snapshot ? { snapshot: metadataToWire(m.snapshot.metadata) } : {}),
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
  };
}

/** Protobuf → core message; TypeError for a type this version does not know. */
export function messageFromWire(w: pb.Message): Message {
  const type = FROM_PB.get(w.type);
  if (type === undefined) throw new TypeError(`unknown wire message type ${w.type}`);
  return makeMessage({
    type,
    to: w.to,
    from: w.from,
    term: w.term,
    logTerm: w.logTerm,
    index: w.index,
    entries: w.entries.map(entryFromWire),
    commit: w.commit,
    reject: w.reject,
    rejectHint: w.rejectHint,
    context: w.context,
    ...(w.snapshot ? { snapshot: { metadata: metadataFromWire(w.snapshot), data: new Uint8Array(0) } } : {}),
  });
}

function entryToWire(e: Entry): pb.Entry {
  return { term: e.term, index: e.index, type: e.type === EntryType.ConfChange ? pb.EntryType.ENTRY_TYPE_CONF_CHANGE : pb.EntryType.ENTRY_TYPE_NORMAL, data: e.data };
}

function entryFromWire(e: pb.Entry): Entry {
  return { term: e.term, index: e.index, type: e.type === pb.EntryType.ENTRY_TYPE_CONF_CHANGE ? EntryType.ConfChange : EntryType.Normal, data: e.data };
}

function metadataToWire(m: SnapshotMetadata): pb.SnapshotMetadata {
  return { index: m.index, term: m.term, confState: { voters: m.confState.voters, learners: m.confState.learners } };
}

function metadataFromWire(m: pb.SnapshotMetadata): SnapshotMetadata {
  const cs: ConfState = { voters: m.confState?.voters ?? [], learners: m.confState?.learners ?? [] };
  return { index: m.index, term: m.term, confState: cs };
}
