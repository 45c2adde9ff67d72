/**
 * Public surface of the pure Raft core. Hosts import from here.
 */
export { decodeConfChange, encodeConfChange, isValidNodeId } from './conf-change.ts';
export { isRaftError, RaftError, RaftErrorCode } from './errors.ts';
export { validateConfig } from './raft.ts';
export { RawNode } from './raw-node.ts';
export { type InitialState, MemoryStorage, type RaftStorage } from './storage.ts';
export * from './types.ts';
export { entrySizeBytes, isEmptySnapshot } from './util.ts';
