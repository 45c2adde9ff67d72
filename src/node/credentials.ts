/**
 * Root credentials: from the configuration when given, else generated on first start and kept
 * in `<dataDir>/credentials.json` (mode 0600, written temp + fsync + rename). Anonymous access is
 * never allowed, so a node always has at least this key.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '../util/errors.ts';

/** An access key pair. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Loads or creates the root credentials; `generated` is true only when this call made them. */
export async function loadRootCredentials(
  dataDir: string,
  configured: { accessKey: string | undefined; secretKey: string | undefined },
): Promise<{ credentials: Credentials; generated: boolean }> {
  if (configured.accessKey !== undefined && configured.secretKey !== undefined) {
    return { credentials: { accessKeyId: configured.accessKey, secretAccessKey: configured.secretKey }, generated: false };
  }
  const path = join(dataDir, 'credentials.json');
  try {
    return { credentials: JSON.parse(await readFile(path, 'utf8')) as Credentials, generated: false };
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
  const credentials: Credentials = {
    accessKeyId: `TS3${randomBytes(9).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  await mkdir(dataDir, { recursive: true });
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(credentials, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  return { credentials, generated: true };
}
