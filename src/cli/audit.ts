/**
 * ts3ctl audit verify [--file PATH]: checks a node's audit log (src/audit/) on this machine and
 * says where its hash chain breaks: which line was edited, where lines were deleted, which are
 * out of order. Reads the file directly (no admin API, no credentials): run it on the node or on
 * a copy. The default file is the node's, under TS3GW_DATA_DIR (./data).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AUDIT_FILE } from '../audit/audit-log.ts';
import { verifyAuditLog } from '../audit/verify.ts';

/** Runs one `audit` subcommand; returns the exit status (0 intact, 1 broken or unreadable, 2 usage). */
export async function audit(args: string[], options: { file?: string; json: boolean }, out: (s: string) => void): Promise<number> {
  const [sub] = args;
  if (sub !== 'verify') {
    process.stderr.write('usage: ts3ctl audit verify [--file PATH] [--json]\n');
    return 2;
  }
  const file = options.file ?? join(process.env['TS3GW_DATA_DIR'] ?? './data', AUDIT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    process.stderr.write(`ts3ctl: cannot read ${file}: ${(err as Error).message}\n`);
    return 1;
  }
  const verdict = verifyAuditLog(text);
  if (options.json) out(JSON.stringify({ file, ...verdict }, null, 2));
  else if (verdict.ok) out(`${file}: intact, ${verdict.entries} entries, head ${verdict.head}`);
  else {
    out(`${file}: TAMPERED (${verdict.problems.length} problem${verdict.problems.length === 1 ? '' : 's'} in ${verdict.entries} entries)`);
    for (const p of verdict.problems) out(`  line ${p.line}: ${p.kind}: ${p.message}`);
  }
  return verdict.ok ? 0 : 1;
}
