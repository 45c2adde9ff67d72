/**
 * The node's book of access keys: the root key (credentials.json or TS3GW_ROOT_*) and the keys
 * created through the admin API, which live in the log with their secrets sealed.
 *
 * S3 authentication asks for a secret synchronously on every request, so the book keeps the
 * unsealed keys in memory and reloads them whenever the applied index moved (at most every
 * RELOAD_INTERVAL_MS): a key created or deleted through one node takes effect on the others as
 * soon as they applied it, within a fraction of a second (IAM, too, is eventually consistent).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { AccessKeyRecord, KeyBucketPermission } from '../meta/types.ts';

/** How often the book checks whether the log moved. */
const RELOAD_INTERVAL_MS = 100;

/** A usable key as the book holds it. */
interface LiveKey {
  secret: string;
  status: AccessKeyRecord['status'];
  admin: boolean;
  /** Per-bucket permissions of a scoped key; undefined for an unscoped one. */
  buckets: ReadonlyMap<string, KeyBucketPermission> | undefined;
}

/** Seals and opens secrets with a key derived from the cluster secret. */
export class SecretSealer {
  readonly #key: Buffer;

  constructor(clusterSecret: string) {
    this.#key = Buffer.from(hkdfSync('sha256', clusterSecret, 'ts3gw', 'access-key secrets v1', 32));
  }

  seal(secret: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** The secret, or undefined when it was sealed with another cluster secret (or tampered with). */
  open(sealed: string): string | undefined {
    const raw = Buffer.from(sealed, 'base64');
    if (raw.length < 28) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      // Wrong key or a corrupt record: the key is unusable, which the reload logs once.
      return undefined;
    }
  }
}

/** What the book reads. */
export interface KeyBookDeps {
  root: { accessKeyId: string; secretAccessKey: string };
  sealer: SecretSealer;
  appliedIndex(): number;
  listAccessKeys(): Promise<AccessKeyRecord[]>;
  logger: { warn(obj: object, msg: string): void };
}

/** Access keys for authentication and the admin API. */
export class KeyBook {
  readonly #deps: KeyBookDeps;
  #keys = new Map<string, LiveKey>();
  #loadedAt = -1;
  #timer: NodeJS.Timeout | undefined;
  #loading = false;

  constructor(deps: KeyBookDeps) {
    this.#deps = deps;
  }

  /** Loads the keys, then keeps them current. */
  async start(): Promise<void> {
    await this.reload();
    this.#timer = setInterval(() => {
      if (this.#deps.appliedIndex() !== this.#loadedAt) void this.reload();
    }, RELOAD_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Re-reads the keys from the store (also after this node changed them). */
  async reload(): Promise<void> {
    if (this.#loading) return;
    this.#loading = true;
    try {
      const at = this.#deps.appliedIndex();
      const keys = new Map<string, LiveKey>();
      for (const record of await this.#deps.listAccessKeys()) {
        const secret = this.#deps.sealer.open(record.sealedSecret);
        if (secret === undefined) {
          this.#deps.logger.warn({ accessKeyId: record.accessKeyId }, 'access key sealed with another cluster secret: unusable');
          continue;
        }
        const buckets = record.buckets ? new Map(Object.entries(record.buckets)) : undefined;
        keys.set(record.accessKeyId, { secret, status: record.status, admin: record.admin, buckets });
      }
      this.#keys = keys;
      this.#loadedAt = at;
    } catch (err) {
      this.#deps.logger.warn({ err: String(err) }, 'could not reload access keys');
    } finally {
      this.#loading = false;
    }
  }

  /** The secret of an active key, for SigV4/SigV2; undefined for unknown or disabled keys. */
  secretOf(accessKeyId: string): string | undefined {
    if (accessKeyId === this.#deps.root.accessKeyId) return this.#deps.root.secretAccessKey;
    const key = this.#keys.get(accessKeyId);
    return key?.status === 'active' ? key.secret : undefined;
  }

  /** The bucket permissions of a scoped key; undefined for unscoped keys (the root key among them). */
  scopeOf(accessKeyId: string): ReadonlyMap<string, KeyBucketPermission> | undefined {
    if (accessKeyId === this.#deps.root.accessKeyId) return undefined;
    return this.#keys.get(accessKeyId)?.buckets;
  }

  /** True for the root key and active admin keys. */
  isAdmin(accessKeyId: string): boolean {
    if (accessKeyId === this.#deps.root.accessKeyId) return true;
    const key = this.#keys.get(accessKeyId);
    return key?.status === 'active' && key.admin;
  }
}

/** A new key id and secret in AWS's shape (20 upper-case characters, 40 of base64url). */
export function newKeyPair(): { accessKeyId: string; secretAccessKey: string } {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = Array.from(randomBytes(16), (b) => alphabet[b % 32]).join('');
  return { accessKeyId: `TS3K${id}`, secretAccessKey: randomBytes(30).toString('base64url') };
}
