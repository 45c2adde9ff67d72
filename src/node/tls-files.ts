/**
 * TLS material from files: the S3 endpoint's certificate and key, and the CA that signs the
 * nodes' certificates. Certificates are rotated by replacing the files (cert-manager, a renewed
 * Kubernetes secret), so the S3 endpoint watches them and swaps its secure context without a
 * restart: connections already open keep theirs, new ones get the new certificate.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { Agent, setGlobalDispatcher } from 'undici';

/** How often the watched files are polled (fs.watch misses the symlink swaps of Kubernetes secrets). */
export const TLS_FILES_POLL_MS = 1_000;

/** The S3 endpoint's certificate and key, or undefined when S3 TLS is off. */
export async function readS3Tls(config: { s3TlsCert: string | undefined; s3TlsKey: string | undefined }): Promise<{ cert: Buffer; key: Buffer } | undefined> {
  if (config.s3TlsCert === undefined || config.s3TlsKey === undefined) return undefined;
  const [cert, key] = await Promise.all([readFile(config.s3TlsCert), readFile(config.s3TlsKey)]);
  return { cert, key };
}

/**
 * Calls `reload` whenever one of `paths` changes (size or mtime), one reload at a time; returns
 * the function that stops watching. A failed reload (a half-written pair: a new certificate with
 * the old key) is logged and the next change tries again; the old context stays in use meanwhile.
 */
export function watchTlsFiles(paths: string[], reload: () => Promise<void>, logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }): () => void {
  let running: Promise<void> | undefined;
  let again = false;
  const run = () => {
    if (running) {
      again = true;
      return;
    }
    running = reload()
      .then(
        () => logger.info({ files: paths }, 'reloaded the S3 TLS certificate'),
        (err: unknown) => logger.warn({ files: paths, err: (err as Error).message }, 'could not reload the S3 TLS certificate; still serving the previous one'),
      )
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };
  const listener = (now: { mtimeMs: number; size: number }, before: { mtimeMs: number; size: number }) => {
    if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) run();
  };
  for (const path of paths) watchFile(path, { interval: TLS_FILES_POLL_MS, persistent: false }, listener);
  return () => {
    for (const path of paths) unwatchFile(path, listener);
  };
}

/**
 * Makes this process trust `ca` (besides the public roots) for HTTPS to peers: the join request
 * (fetch) and the chunk clients' pools go through undici's global dispatcher.
 */
export function trustPeerCa(ca: Buffer): void {
  setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, ca.toString('utf8')] } }));
}

/** This node's mutual TLS material for the Raft port, or undefined when mutual TLS is off. */
export async function readPeerTls(config: { tlsCa: string | undefined; tlsCert: string | undefined; tlsKey: string | undefined }): Promise<{ ca: Buffer; cert: Buffer; key: Buffer } | undefined> {
  if (config.tlsCa === undefined || config.tlsCert === undefined || config.tlsKey === undefined) return undefined;
  const [ca, cert, key] = await Promise.all([readFile(config.tlsCa), readFile(config.tlsCert), readFile(config.tlsKey)]);
  return { ca, cert, key };
}
