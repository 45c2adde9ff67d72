/**
 * DedupTable: the answers of recently applied commands, by request id, so that a command retried
 * with the same request id gets its first answer instead of running twice. A request id is
 * remembered for DEDUP_WINDOW_ENTRIES indexes exactly: an entry applied at index i answers a
 * retry at index j when i >= j - DEDUP_WINDOW_ENTRIES, however the entries were batched.
 *
 * Layout: one LevelDB record per fixed range of DEDUP_GROUP_ENTRIES log indexes,
 *
 *   'D' 0x00 groupStart(16 hex) → (index 0x00 requestId 0x00 resultJson 0x00)*   (ascending index)
 *
 * plus an in-memory index requestId → index, rebuilt from these records at open. The groups are
 * fixed by index, not by apply batch, so every replica holds byte-identical records at equal
 * applied indexes: a batch rewrites the group(s) it touches in full, in the same LevelDB batch as
 * the commands' effects and the applied index (crash-safe: all or nothing). A group is deleted
 * once its last index is more than the window behind the applied index, a function of the applied
 * index alone. Compared with a record per request id plus a prune-queue record (4 LevelDB writes
 * per command over its life), this costs about one record write per batch.
 *
 * Request ids are keyed as well-formed strings: LevelDB stores UTF-8, which replaces lone
 * surrogates with U+FFFD, and the in-memory index must agree with what a reload finds. JSON
 * escapes NUL (and lone surrogates), and request ids never contain NUL, so NUL separates fields.
 * Memory: about 100 bytes per remembered request id (10 MB at a full 100k window).
 */
import { assert } from '../util/assert.ts';
import type { ApplyResult } from './types.ts';

/** How many applied indexes a request id is remembered for deduplication. */
export const DEDUP_WINDOW_ENTRIES = 100_000;
/** Indexes per dedup record; a batch rewrites at most the partly filled group it starts in. */
export const DEDUP_GROUP_ENTRIES = 64;

const GROUP_TAG = 'D';

/** Range bounds covering every dedup group record. */
export function dedupGroupRange(): { gte: Buffer; lt: Buffer } {
  return { gte: Buffer.from(`${GROUP_TAG}\0`, 'latin1'), lt: Buffer.from(`${GROUP_TAG}\x01`, 'latin1') };
}

/** Key of the dedup group starting at `start`, as a latin1 (= ASCII) string of its bytes. */
export function dedupGroupKey(start: number): string {
  assert(Number.isSafeInteger(start) && start >= 0 && start % DEDUP_GROUP_ENTRIES === 0, 'bad dedup group start');
  return `${GROUP_TAG}\0${start.toString(16).padStart(16, '0')}`;
}

function groupStartOf(index: number): number {
  return index - (index % DEDUP_GROUP_ENTRIES);
}

function startOfGroupKey(key: Buffer): number {
  assert(key.length === 18 && key[0] === GROUP_TAG.charCodeAt(0) && key[1] === 0, 'bad dedup group key');
  const start = Number.parseInt(key.toString('latin1', 2), 16);
  assert(Number.isSafeInteger(start) && start % DEDUP_GROUP_ENTRIES === 0, 'bad dedup group key');
  return start;
}

function encodeEntry(index: number, requestId: string, resultJson: string): string {
  return `${index}\0${requestId}\0${resultJson}\0`;
}

/** Parses a group record into its entries, asserting they belong to the group and ascend. */
function parseGroup(start: number, text: string): { index: number; requestId: string; resultJson: string }[] {
  const fields = text.split('\0');
  assert(fields.length % 3 === 1 && fields[fields.length - 1] === '', 'corrupt dedup group');
  const out: { index: number; requestId: string; resultJson: string }[] = [];
  for (let i = 0; i + 1 < fields.length; i += 3) {
    const index = Number(fields[i]);
    assert(Number.isSafeInteger(index) && groupStartOf(index) === start, 'dedup entry outside its group');
    assert(out.length === 0 || index > out[out.length - 1]!.index, 'dedup entries out of order');
    out.push({ index, requestId: fields[i + 1]!, resultJson: fields[i + 2]! });
  }
  return out;
}

interface Group {
  start: number;
  requestIds: string[];
  indexes: number[];
}

/** One LevelDB write the table wants in the apply batch: latin1 key → value, null deletes. */
export type DedupWrite = [key: string, value: string | null];

/**
 * The dedup table of one LevelMetaStore. Commands of a batch are recorded with `record()`; the
 * store adds `writes()` to its LevelDB batch and calls `commit()` once that batch is written (or
 * `abort()` when it failed), so memory never runs ahead of the database.
 */
export class DedupTable {
  readonly #get: (key: Buffer) => Promise<string | undefined>;
  /** Committed: request id → the index it was applied at. */
  readonly #byRequest = new Map<string, number>();
  /** Committed group records, oldest first. */
  readonly #groups: Group[] = [];
  /** Committed text of the newest group (the last of #groups), which a batch may extend. */
  #tailText = '';
  /** This batch's entries, in index order, and the newest of them per request id. */
  #added: { index: number; requestId: string; resultJson: string }[] = [];
  #addedById = new Map<string, { index: number; resultJson: string }>();
  /** What writes() prepared for commit(). */
  #prepared: { replacesLast: boolean; groups: Group[]; pruned: number; tailText: string } | undefined;

  private constructor(get: (key: Buffer) => Promise<string | undefined>) {
    this.#get = get;
  }

  /** Loads the table from a database's group records (`entries`: the dedupGroupRange, ascending). */
  static async load(entries: AsyncIterable<[Buffer, string]>, get: (key: Buffer) => Promise<string | undefined>): Promise<DedupTable> {
    const table = new DedupTable(get);
    for await (const [key, text] of entries) {
      const start = startOfGroupKey(key);
      assert(table.#groups.length === 0 || start > table.#groups[table.#groups.length - 1]!.start, 'dedup groups out of order');
      const group: Group = { start, requestIds: [], indexes: [] };
      for (const e of parseGroup(start, text)) {
        group.requestIds.push(e.requestId);
        group.indexes.push(e.index);
        table.#byRequest.set(e.requestId, e.index);
      }
      table.#groups.push(group);
      table.#tailText = text;
    }
    return table;
  }

  /** How many request ids are remembered, expired or not (for tests and metrics). */
  get size(): number {
    return this.#byRequest.size;
  }

  /**
   * The answer recorded for `requestId` if it was applied within the window of `index`, else
   * undefined. Sees this batch's records too. The answer is a fresh copy (parsed from JSON).
   */
  async find(requestId: string, index: number): Promise<ApplyResult | undefined> {
    const id = requestId.toWellFormed();
    const added = this.#addedById.get(id);
    if (added !== undefined && added.index >= index - DEDUP_WINDOW_ENTRIES) return JSON.parse(added.resultJson) as ApplyResult;
    const at = this.#byRequest.get(id);
    // An entry older than the window counts as forgotten whether or not its group is deleted yet.
    if (at === undefined || at < index - DEDUP_WINDOW_ENTRIES) return undefined;
    const start = groupStartOf(at);
    const last = this.#groups[this.#groups.length - 1];
    const text = last?.start === start ? this.#tailText : await this.#get(Buffer.from(dedupGroupKey(start), 'latin1'));
    assert(text !== undefined, `dedup group ${start} missing for index ${at}`);
    const entry = parseGroup(start, text).find((e) => e.index === at);
    assert(entry !== undefined && entry.requestId === id, `dedup entry ${at} missing`);
    return JSON.parse(entry.resultJson) as ApplyResult;
  }

  /** Remembers the answer of the command applied at `index` (this batch, ascending indexes). */
  record(index: number, requestId: string, result: ApplyResult): void {
    assert(this.#prepared === undefined, 'dedup record() after writes()');
    const previous = this.#added[this.#added.length - 1];
    assert(previous === undefined || previous.index < index, 'dedup records out of order');
    const last = this.#groups[this.#groups.length - 1];
    assert(last === undefined || last.indexes[last.indexes.length - 1]! < index, 'dedup record at an old index');
    const id = requestId.toWellFormed();
    const resultJson = JSON.stringify(result);
    this.#added.push({ index, requestId: id, resultJson });
    this.#addedById.set(id, { index, resultJson });
  }

  /**
   * The LevelDB writes of this batch, which ends at `lastIndex`: the groups it added entries to,
   * rewritten whole, and the groups that fell out of the window, deleted.
   */
  writes(lastIndex: number): DedupWrite[] {
    assert(this.#prepared === undefined, 'dedup writes() twice');
    const out: DedupWrite[] = [];
    const last = this.#groups[this.#groups.length - 1];
    const groups: Group[] = [];
    let replacesLast = false;
    let text = '';
    for (const e of this.#added) {
      const start = groupStartOf(e.index);
      let group = groups[groups.length - 1];
      if (group?.start !== start) {
        if (group) out.push([dedupGroupKey(group.start), text]);
        if (groups.length === 0 && last?.start === start) {
          // The batch starts inside the newest stored group: rewrite it with the new entries.
          replacesLast = true;
          group = { start, requestIds: [...last.requestIds], indexes: [...last.indexes] };
          text = this.#tailText;
        } else {
          group = { start, requestIds: [], indexes: [] };
          text = '';
        }
        groups.push(group);
      }
      group.requestIds.push(e.requestId);
      group.indexes.push(e.index);
      text += encodeEntry(e.index, e.requestId, e.resultJson);
    }
    const newest = groups[groups.length - 1];
    if (newest) out.push([dedupGroupKey(newest.start), text]);
    // Delete, oldest first, the groups whose every index is out of the window of any later
    // command (indexes above lastIndex): a function of lastIndex alone, so replicas agree.
    const below = lastIndex - DEDUP_WINDOW_ENTRIES;
    const kept = replacesLast ? this.#groups.length - 1 : this.#groups.length;
    let pruned = 0;
    for (let i = 0; i < kept + groups.length; i++) {
      const g = i < kept ? this.#groups[i]! : groups[i - kept]!;
      if (g.start + DEDUP_GROUP_ENTRIES - 1 >= below) break;
      out.push([dedupGroupKey(g.start), null]);
      pruned++;
    }
    const remaining = kept + groups.length - pruned;
    this.#prepared = { replacesLast, groups, pruned, tailText: remaining === 0 ? '' : newest ? text : this.#tailText };
    return out;
  }

  /** The batch's writes are in the database: make them the committed state. */
  commit(): void {
    const prepared = this.#prepared;
    assert(prepared !== undefined, 'dedup commit() without writes()');
    if (prepared.replacesLast) this.#groups.pop();
    this.#groups.push(...prepared.groups);
    for (const e of this.#added) this.#byRequest.set(e.requestId, e.index);
    for (const g of this.#groups.splice(0, prepared.pruned)) {
      for (const [i, id] of g.requestIds.entries()) if (this.#byRequest.get(id) === g.indexes[i]) this.#byRequest.delete(id);
    }
    this.#tailText = prepared.tailText;
    this.abort();
  }

  /** The batch was not written (or is done): forget what it recorded. */
  abort(): void {
    this.#added = [];
    this.#addedById = new Map();
    this.#prepared = undefined;
  }
}

/**
 * The batch that converts a store written before DedupTable (a record per request id,
 * 'R' 0x00 requestId → {index, result}, plus a prune-queue record 'Q' 0x00 index 0x00 requestId)
 * into group records, deleting the old ones; empty when there are none. Run at open, before
 * load(), and written atomically: a crash leaves the old layout or the new one.
 */
export async function legacyDedupMigration(
  iterate: (range: { gte: Buffer; lt: Buffer }) => AsyncIterable<[Buffer, string]>,
): Promise<{ type: 'put' | 'del'; key: Buffer; value?: string }[]> {
  const ops: { type: 'put' | 'del'; key: Buffer; value?: string }[] = [];
  const entries: { index: number; requestId: string; resultJson: string }[] = [];
  for await (const [key, value] of iterate({ gte: Buffer.from('R\0', 'latin1'), lt: Buffer.from('R\x01', 'latin1') })) {
    const record = JSON.parse(value) as { index: number; result: ApplyResult };
    assert(Number.isSafeInteger(record.index) && record.index > 0, 'corrupt legacy dedup record');
    entries.push({ index: record.index, requestId: key.toString('utf8', 2), resultJson: JSON.stringify(record.result) });
    ops.push({ type: 'del', key });
  }
  for await (const [key] of iterate({ gte: Buffer.from('Q\0', 'latin1'), lt: Buffer.from('Q\x01', 'latin1') })) ops.push({ type: 'del', key });
  entries.sort((a, b) => a.index - b.index);
  let start = -1;
  let text = '';
  const flush = () => {
    if (text !== '') ops.push({ type: 'put', key: Buffer.from(dedupGroupKey(start), 'latin1'), value: text });
  };
  for (const e of entries) {
    if (groupStartOf(e.index) !== start) {
      flush();
      start = groupStartOf(e.index);
      text = '';
    }
    text += encodeEntry(e.index, e.requestId, e.resultJson);
  }
  flush();
  return ops;
}
