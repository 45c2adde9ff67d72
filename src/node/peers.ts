/**
 * Peer addresses learned from committed membership changes, kept in `<raftDir>/peers.json`
 * (temp + fsync + rename) so a restart can reach nodes whose joining entry was compacted away.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '../util/errors.ts';

/** Loads saved addresses (none on first start). */
export async function loadPeers(dir: string): Promise<[number, string][]> {
  try {
    const saved = JSON.parse(await readFile(join(dir, 'peers.json'), 'utf8')) as Record<string, string>;
    return Object.entries(saved).map(([id, address]) => [Number(id), address]);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw err;
  }
}

/** Saves the addresses atomically. */
export async function savePeers(dir: string, peers: Map<number, string>): Promise<void> {
  const path = join(dir, 'peers.json');
  const handle = await open(`${path}.tmp`, 'w');
  try {
    await handle.writeFile(JSON.stringify(Object.fromEntries(peers)));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(`${path}.tmp`, path);
}
