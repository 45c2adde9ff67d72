/**
 * Pending ReadIndex requests on the leader (Raft thesis §6.4, etcd read_only.go).
 *
 * A request records the commit index when it arrived. The leader then sends a heartbeat round
 * carrying the request's context; once a quorum acknowledges a heartbeat with that context, the
 * leader knows it was still leader when the request arrived, so the recorded commit index is safe
 * to read at. Acknowledging a later request also confirms every earlier one (FIFO queue).
 */
import { assert } from '../util/assert.ts';
import type { Message, NodeId, ReadOnlyOption } from './types.ts';
import { bytesKey } from './util.ts';

/** One pending ReadIndex request. */
export interface ReadIndexStatus {
  /** The original MsgReadIndex (from = NONE or self for local requests). */
  req: Message;
  /** Commit index at arrival: the read index. */
  index: number;
  /** Voters that confirmed leadership after the request arrived. */
  acks: Set<NodeId>;
}

/** FIFO of pending ReadIndex requests keyed by context. */
export class ReadOnly {
  readonly option: ReadOnlyOption;
  #pending = new Map<string, ReadIndexStatus>();
  #queue: string[] = [];

  constructor(option: ReadOnlyOption) {
    this.option = option;
  }

  /** Adds a request with read index `index`. Duplicate contexts are ignored (contexts must be unique). */
  addRequest(index: number, m: Message): void {
    assert(m.context.byteLength > 0, 'ReadIndex context must not be empty');
    assert(index >= 0, 'read index must be non-negative');
    const key = bytesKey(m.context);
    if (this.#pending.has(key)) return;
    this.#pending.set(key, { req: m, index, acks: new Set() });
    this.#queue.push(key);
  }

  /** Records a heartbeat ack from `id` for `ctx`; returns the acks so far, or undefined if unknown. */
  recvAck(id: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.#pending.get(bytesKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /** Removes and returns every request up to and including the one with context `ctx`. */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = bytesKey(ctx);
    const i = this.#queue.indexOf(key);
    if (i < 0) return [];
    const keys = this.#queue.slice(0, i + 1);
    this.#queue = this.#queue.slice(i + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of keys) {
      const rs = this.#pending.get(k);
      assert(rs !== undefined, 'read index queue and map out of sync');
      this.#pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  /** Context of the newest pending request (sent with heartbeats), if any. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.#queue[this.#queue.length - 1];
    if (key === undefined) return undefined;
    return this.#pending.get(key)?.req.context;
  }

  pendingCount(): number {
    return this.#queue.length;
  }
}
