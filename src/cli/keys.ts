/**
 * ts3ctl keys list|create|delete|disable|enable|allow|revoke: access-key management over the admin
 * API. A new key's secret is printed once, by `create`; nothing can show it again. `allow KEY
 * BUCKET read|write|owner` and `revoke KEY BUCKET` set a key's per-bucket permissions; a key given
 * one is scoped: it may use only the buckets it was allowed.
 */
import { type AdminTarget, adminRequest } from './admin-client.ts';
import { table } from './format.ts';

interface KeyShown {
  accessKeyId: string;
  status: string;
  admin: boolean;
  createdMs: number;
  description?: string;
  secretAccessKey?: string;
  buckets?: Record<string, string>;
}

/** Runs one `keys` subcommand; returns the exit status. */
export async function keys(target: AdminTarget, args: string[], options: { json: boolean; admin: boolean; description?: string }, out: (s: string) => void): Promise<number> {
  const [sub, id, bucket, permission] = args;
  const fail = (res: { status: number; body: { message?: string } }) => {
    process.stderr.write(`ts3ctl: ${res.status} ${res.body.message ?? JSON.stringify(res.body)}\n`);
    return 1;
  };
  switch (sub) {
    case 'list': {
      const res = await adminRequest<{ root: string; keys: KeyShown[]; message?: string }>(target, 'GET', '/keys');
      if (res.status !== 200) return fail(res);
      if (options.json) out(JSON.stringify(res.body, null, 2));
      else {
        const scope = (k: KeyShown) => (k.buckets ? Object.entries(k.buckets).map(([b, p]) => `${b}:${p}`).join(',') || '(none)' : 'own + ACLs');
        const rows = [
          [res.body.root, 'active', 'yes (root)', 'all', '-', 'configured root key'],
          ...res.body.keys.map((k) => [k.accessKeyId, k.status, k.admin ? 'yes' : 'no', k.admin ? 'all' : scope(k), new Date(k.createdMs).toISOString(), k.description ?? '']),
        ];
        out(table(['ACCESS KEY', 'STATUS', 'ADMIN', 'BUCKETS', 'CREATED', 'DESCRIPTION'], rows));
      }
      return 0;
    }
    case 'create': {
      const query: Record<string, string> = { ...(options.admin ? { admin: 'true' } : {}), ...(options.description ? { description: options.description } : {}) };
      const res = await adminRequest<KeyShown & { message?: string }>(target, 'POST', '/keys', query);
      if (res.status !== 201) return fail(res);
      if (options.json) out(JSON.stringify(res.body));
      else out(`AWS_ACCESS_KEY_ID=${res.body.accessKeyId}\nAWS_SECRET_ACCESS_KEY=${res.body.secretAccessKey}\n(the secret is shown this once; it is stored sealed)`);
      return 0;
    }
    case 'delete':
    case 'disable':
    case 'enable': {
      if (!id) throw new Error(`keys ${sub} needs an access key id`);
      const res =
        sub === 'delete'
          ? await adminRequest<{ message?: string }>(target, 'DELETE', '/keys', { id })
          : await adminRequest<{ message?: string }>(target, 'PUT', '/keys', { id, status: sub === 'disable' ? 'disabled' : 'active' });
      if (res.status !== 200) return fail(res);
      out(options.json ? JSON.stringify(res.body) : `${id}: ${sub === 'delete' ? 'deleted' : sub === 'disable' ? 'disabled' : 'active'}`);
      return 0;
    }
    case 'allow':
    case 'revoke': {
      if (!id || !bucket) throw new Error(`keys ${sub} needs an access key id and a bucket`);
      if (sub === 'allow' && permission !== 'read' && permission !== 'write' && permission !== 'owner') throw new Error('keys allow needs read, write or owner');
      const res = await adminRequest<KeyShown & { message?: string }>(target, 'PUT', '/keys', { id, bucket, permission: sub === 'allow' ? permission! : 'none' });
      if (res.status !== 200) return fail(res);
      out(options.json ? JSON.stringify(res.body) : `${id}: ${sub === 'allow' ? `${permission} on ${bucket}` : `nothing on ${bucket}`}`);
      return 0;
    }
    default:
      throw new Error(`keys needs list, create, delete, disable, enable, allow or revoke, got "${sub ?? ''}"`);
  }
}
