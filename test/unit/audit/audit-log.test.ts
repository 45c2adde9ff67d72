/**
 * Goal: the audit log is a hash chain that survives restarts and torn writes, and verification
 * names the line and the kind of every tampering: an edited line (hash kept or recomputed), a
 * deleted one, two lines swapped.
 * Method: a real file in a temp directory, appended through AuditLog, then changed by hand the way
 * an intruder would, and checked with verifyAuditLog.
 */
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { AUDIT_GENESIS_HASH, type AuditEntry, auditHash, AuditLog } from '../../../src/audit/audit-log.ts';
import { accessKeyIdOf, adminEvent, denialEvent } from '../../../src/audit/events.ts';
import { verifyAuditLog } from '../../../src/audit/verify.ts';

async function logOf(n: number): Promise<{ path: string; lines: string[]; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-audit-'));
  const path = join(dir, 'audit', 'audit.log');
  const log = await AuditLog.open(path);
  for (let i = 1; i <= n; i++) await log.append({ kind: 'admin', action: `POST /keys`, actor: 'ROOT', status: 201, n: i });
  await log.close();
  const lines = (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  return { path, lines, dir };
}

test('appends chain each line to the one before; a reopened log continues the chain', async (t) => {
  const { path, lines, dir } = await logOf(3);
  try {
    const entries = lines.map((l) => JSON.parse(l) as AuditEntry);
    t.deepEqual(entries.map((e) => e.seq), [1, 2, 3]);
    t.is(entries[0]!.prev, AUDIT_GENESIS_HASH);
    t.is(entries[1]!.prev, entries[0]!.hash);
    for (const e of entries) t.is(auditHash(e), e.hash);
    const again = await AuditLog.open(path);
    await again.append({ kind: 'denied', action: 'GET /b/k', actor: 'X', status: 403 });
    await again.close();
    const verdict = verifyAuditLog(await readFile(path, 'utf8'));
    t.true(verdict.ok, JSON.stringify(verdict.problems));
    t.is(verdict.entries, 4);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a torn last line (a crash mid-append) is cut at open and the chain goes on intact', async (t) => {
  const { path, dir } = await logOf(2);
  try {
    await appendFile(path, '{"seq":3,"timeMs":1,"pr');
    const log = await AuditLog.open(path);
    await log.append({ kind: 'admin', action: 'DELETE /keys', actor: 'ROOT', status: 200 });
    await log.close();
    const verdict = verifyAuditLog(await readFile(path, 'utf8'));
    t.true(verdict.ok, JSON.stringify(verdict.problems));
    t.is(verdict.entries, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an edited line is found, whether or not its hash was recomputed', async (t) => {
  const { lines, dir } = await logOf(5);
  try {
    const edited = [...lines];
    edited[2] = edited[2]!.replace('"actor":"ROOT"', '"actor":"SOMEONE"');
    t.deepEqual(verifyAuditLog(`${edited.join('\n')}\n`).problems.map((p) => [p.line, p.kind]), [[3, 'edited']]);

    const rehashed = [...lines];
    const entry = JSON.parse(rehashed[2]!) as AuditEntry;
    entry.event.actor = 'SOMEONE';
    entry.hash = auditHash(entry);
    rehashed[2] = JSON.stringify(entry);
    t.deepEqual(verifyAuditLog(`${rehashed.join('\n')}\n`).problems.map((p) => [p.line, p.kind]), [[4, 'rechained']]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('deleted lines are found, in the middle and at the start', async (t) => {
  const { lines, dir } = await logOf(5);
  try {
    const middle = lines.filter((_, i) => i !== 2);
    const verdict = verifyAuditLog(`${middle.join('\n')}\n`);
    t.false(verdict.ok);
    t.deepEqual(verdict.problems.map((p) => [p.line, p.kind]), [[3, 'deleted']]);
    t.regex(verdict.problems[0]!.message, /1 line deleted before line 3: seq 2 is followed by seq 4/);
    t.deepEqual(verifyAuditLog(`${lines.slice(1).join('\n')}\n`).problems.map((p) => [p.line, p.kind]), [[1, 'deleted']]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('swapped lines are reported as out of order, not as deletions', async (t) => {
  const { lines, dir } = await logOf(5);
  try {
    const swapped = [...lines];
    [swapped[1], swapped[3]] = [swapped[3]!, swapped[1]!];
    const verdict = verifyAuditLog(`${swapped.join('\n')}\n`);
    t.false(verdict.ok);
    t.true(verdict.problems.every((p) => p.kind === 'reordered'), JSON.stringify(verdict.problems));
    t.is(verdict.problems[0]!.line, 2);
    t.deepEqual(verifyAuditLog('not json\n').problems.map((p) => p.kind), ['malformed']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('events carry key ids, never signatures or secrets; reads and refusals are not admin events', async (t) => {
  const signature = 'f'.repeat(64);
  const headers = { authorization: `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${signature}` };
  const denied = denialEvent({ id: 'r1', method: 'PUT', url: '/b/k?x-id=PutObject', ip: '127.0.0.1', headers }, 403);
  t.is(denied.actor, 'AKIDEXAMPLE');
  t.is(denied.action, 'PUT /b/k');
  t.false(JSON.stringify(denied).includes(signature));
  t.is(accessKeyIdOf({ url: `/b/k?X-Amz-Credential=AKIDQ%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=${signature}`, headers: {} }), 'AKIDQ');
  t.is(accessKeyIdOf({ url: '/b/k', headers: { authorization: `AWS AKID2:${signature}` } }), 'AKID2');
  const query = new URLSearchParams({ admin: 'true' });
  const created = adminEvent({ method: 'POST', path: '/keys', query, accessKeyId: 'ROOT' }, { status: 201, body: { accessKeyId: 'NEWKEY', secretAccessKey: 'shh-secret' } });
  t.like(created, { kind: 'admin', action: 'POST /keys', actor: 'ROOT', status: 201, accessKeyId: 'NEWKEY' });
  t.false(JSON.stringify(created).includes('shh-secret'));
  t.is(adminEvent({ method: 'GET', path: '/keys', query, accessKeyId: 'ROOT' }, { status: 200 }), undefined);
  t.is(adminEvent({ method: 'POST', path: '/keys', query, accessKeyId: 'X' }, { status: 403 }), undefined);
});

test('appends after close are dropped and counted, not written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ts3gw-audit-'));
  try {
    const path = join(dir, 'a.log');
    const log = await AuditLog.open(path);
    await log.append({ kind: 'admin', action: 'POST /x', actor: '', status: 200 });
    await log.close();
    await log.append({ kind: 'admin', action: 'POST /y', actor: '', status: 200 });
    t.deepEqual(log.stats(), { ts3gw_audit_entries_total: 1, ts3gw_audit_dropped_total: 1 });
    t.is(verifyAuditLog(await readFile(path, 'utf8')).entries, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
