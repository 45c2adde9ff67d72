/**
 * Remembers, per peer node id, the incarnation (a random id a node picks when its data directory
 * is created) it has seen. A node whose disk was wiped comes back with a new incarnation and an
 * empty log; letting it vote again could elect a leader without committed entries, so its
 * traffic is refused until an operator removes it and adds it back as a new member.
 * Kept in `<raftDir>/incarnations.json` (temp + fsync + rename) so the memory survives restarts.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '../util/errors.ts';

/** The incarnation book of one node. */
export class Incarnations {
  readonly #path: string;
  readonly #known: Map<number, string>;
  #saving: Promise<void> = Promise.resolve();

  private constructor(path: string, known: Map<number, string>) {
    this.#path = path;
    this.#known = known;
  }

  static async load(dir: string): Promise<Incarnations> {
    const path = join(dir, 'incarnations.json');
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
      return new Incarnations(path, new Map(Object.entries(saved).map(([id, inc]) => [Number(id), inc])));
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      return new Incarnations(path, new Map());
    }
  }

  /** True when `incarnation` is the one known for `nodeId` (the first one seen is learned). */
  check(nodeId: number, incarnation: string): boolean {
    const known = this.#known.get(nodeId);
    if (known === undefined) {
      this.#known.set(nodeId, incarnation);
      this.#saving = this.#saving.then(() => this.#save());
      return true;
    }
    return known === incarnation;
  }

  /** The incarnation known for `nodeId`, if any traffic came from it. */
  get(nodeId: number): string | undefined {
    return this.#known.get(nodeId);
  }

  /** Forgets a node (after it was removed), so it may come back as a new incarnation. */
  forget(nodeId: number): void {
    if (this.#known.delete(nodeId)) this.#saving = this.#saving.then(() => this.#save());
  }

  async #save(): Promise<void> {
    const handle = await open(`${this.#path}.tmp`, 'w');
    try {
      await handle.writeFile(JSON.stringify(Object.fromEntries(this.#known)));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(`${this.#path}.tmp`, this.#path);
  }
}
