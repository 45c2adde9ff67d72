/**
 * Encoding of single-server membership changes inside `confChange` log entries.
 *
 * Format (version 1): [u8 version=1][u8 type][f64 big-endian nodeId][context bytes...].
 * The core must decode conf-change entries itself (e.g. to refuse campaigning while one is
 * unapplied), so the codec lives here rather than in the host's protobuf layer.
 */
import { assert } from '../util/assert.ts';
import { type ConfChange, ConfChangeType, EMPTY_BYTES, type NodeId } from './types.ts';

const VERSION = 1;
const HEADER_BYTES = 10;
const TYPE_CODES: readonly ConfChangeType[] = [
  ConfChangeType.AddNode,
  ConfChangeType.AddLearnerNode,
  ConfChangeType.RemoveNode,
];

/** Returns true for a valid node id: a positive safe integer. */
export function isValidNodeId(id: NodeId): boolean {
  return Number.isSafeInteger(id) && id > 0;
}

/** Encodes a conf change into entry data. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  assert(isValidNodeId(cc.nodeId), `conf change node id ${cc.nodeId} invalid`);
  const code = TYPE_CODES.indexOf(cc.type);
  assert(code >= 0, `conf change type ${cc.type} unknown`);
  const out = new Uint8Array(HEADER_BYTES + cc.context.byteLength);
  const view = new DataView(out.buffer);
  view.setUint8(0, VERSION);
  view.setUint8(1, code);
  view.setFloat64(2, cc.nodeId, false);
  out.set(cc.context, HEADER_BYTES);
  return out;
}

/** Decodes entry data written by encodeConfChange. Throws TypeError on malformed input. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength < HEADER_BYTES) throw new TypeError('conf change too short');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint8(0) !== VERSION) throw new TypeError(`conf change version ${view.getUint8(0)}`);
  const type = TYPE_CODES[view.getUint8(1)];
  if (type === undefined) throw new TypeError(`conf change type code ${view.getUint8(1)}`);
  const nodeId = view.getFloat64(2, false);
  if (!isValidNodeId(nodeId)) throw new TypeError(`conf change node id ${nodeId}`);
  const context = data.byteLength === HEADER_BYTES ? EMPTY_BYTES : data.slice(HEADER_BYTES);
  return { type, nodeId, context };
}
