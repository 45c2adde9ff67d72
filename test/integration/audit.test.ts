/**
 * Goal: a node records admin actions and permission denials in its hash-chained audit log, and
 * `ts3ctl audit verify` says intact for the real file and names the line of an edit, a deletion
 * and a reordering in tampered copies.
 * Method: a real server process; a key created with the real ts3ctl, an S3 request signed with
 * a wrong secret (403), then the log read from the data directory and checked with the real
 * ts3ctl (child processes), once as written and once per tampering.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { removeDir, s3Client, startServer, TEST_ACCESS_KEY, TEST_SECRET_KEY } from '../helpers/server.ts';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

async function ts3ctl(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['src/cli/ts3ctl.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('admin actions and 403s are chained in the audit log; ts3ctl audit verify finds edits, deletions and reorderings', async (t) => {
  const server = await startServer();
  try {
    const root = { AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: TEST_SECRET_KEY };
    const created = await ts3ctl(['keys', 'create', '--json', '--endpoint', server.url], root);
    t.is(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { accessKeyId: string; secretAccessKey: string };
    const wrong = s3Client(server, { credentials: { accessKeyId: TEST_ACCESS_KEY, secretAccessKey: 'not-the-secret-key-0123456789' } });
    await t.throwsAsync(wrong.send(new ListBucketsCommand({})));
    // A non-admin key asking the admin API is a denial too.
    t.is((await ts3ctl(['keys', 'list', '--endpoint', server.url], { AWS_ACCESS_KEY_ID: key.accessKeyId, AWS_SECRET_ACCESS_KEY: key.secretAccessKey })).code, 1);
    t.is((await ts3ctl(['keys', 'delete', key.accessKeyId, '--endpoint', server.url], root)).code, 0);

    const file = join(server.dataDir, 'audit', 'audit.log');
    const deadline = performance.now() + 10_000;
    let lines: string[] = [];
    // Denials are appended after their answer left: wait for all four events.
    while (lines.length < 4 && performance.now() < deadline) {
      lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
      if (lines.length < 4) await new Promise((r) => setTimeout(r, 50));
    }
    const events = lines.map((l) => (JSON.parse(l) as { event: { kind: string; action: string; actor: string; status: number; accessKeyId?: string } }).event);
    t.like(events.find((e) => e.action === 'POST /keys'), { kind: 'admin', actor: TEST_ACCESS_KEY, status: 201, accessKeyId: key.accessKeyId });
    t.like(events.find((e) => e.action === 'DELETE /keys'), { kind: 'admin', actor: TEST_ACCESS_KEY });
    t.like(events.find((e) => e.action === 'GET /'), { kind: 'denied', actor: TEST_ACCESS_KEY, status: 403 });
    t.like(events.find((e) => e.action === 'GET /_ts3gw/admin/keys'), { kind: 'denied', actor: key.accessKeyId, status: 403 });
    const text = await readFile(file, 'utf8');
    t.false(text.includes(key.secretAccessKey), 'no secret in the audit log');
    t.false(text.includes(TEST_SECRET_KEY));

    const intact = await ts3ctl(['audit', 'verify'], { TS3GW_DATA_DIR: server.dataDir });
    t.is(intact.code, 0, intact.stdout + intact.stderr);
    t.regex(intact.stdout, new RegExp(`intact, ${lines.length} entries`));

    const tampered = async (name: string, changed: string[]) => {
      const copy = join(server.dataDir, `${name}.log`);
      await writeFile(copy, `${changed.join('\n')}\n`);
      return ts3ctl(['audit', 'verify', '--file', copy]);
    };
    const edited = await tampered('edited', lines.map((l, i) => (i === 1 ? l.replace('"status":403', '"status":200').replace('"status":201', '"status":200') : l)));
    t.is(edited.code, 1);
    t.regex(edited.stdout, /TAMPERED/);
    t.regex(edited.stdout, /line 2: edited/);
    const deleted = await tampered('deleted', lines.filter((_, i) => i !== 1));
    t.is(deleted.code, 1);
    t.regex(deleted.stdout, /line 2: deleted: 1 line deleted before line 2/);
    const reordered = await tampered('reordered', [lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]);
    t.is(reordered.code, 1);
    t.regex(reordered.stdout, /line 2: reordered/);
    t.regex(reordered.stdout, /line 3: reordered/);
    t.is((await ts3ctl(['audit', 'verify', '--file', join(server.dataDir, 'nope.log')])).code, 1);
    t.is((await ts3ctl(['audit'])).code, 2);
  } finally {
    await server.stop();
    await removeDir(server.dataDir);
  }
});
