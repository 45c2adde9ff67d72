/**
 * Verification of an audit log (format in audit-log.ts): walks the lines in order and reports
 * the first line where the chain breaks and how:
 *
 *   edited     the line's hash is not the hash of its content
 *   deleted    seq jumps forward (lines before it are gone), or the first line is not seq 1
 *   reordered  seq goes backwards or repeats
 *   rechained  the hash is right but `prev` is not the hash of the line before (an edit whose
 *              author recomputed that line's hash, or a line spliced in from elsewhere)
 *
 * What a hash chain cannot show on its own: lines cut off the end (the file simply looks
 * shorter). Compare `entries`/`head` with a copy shipped elsewhere for that.
 */
import { AUDIT_GENESIS_HASH, type AuditEntry, auditHash } from './audit-log.ts';

/** One break in the chain. */
export interface AuditProblem {
  /** 1-based line number in the file. */
  line: number;
  kind: 'malformed' | 'edited' | 'deleted' | 'reordered' | 'rechained';
  message: string;
}

/** The outcome of verifying a log. */
export interface AuditVerdict {
  ok: boolean;
  /** Lines read. */
  entries: number;
  /** Hash of the last line (the chain's head) when the log verified. */
  head: string;
  /** Every break found, in file order (each later line is checked against its own predecessor). */
  problems: AuditProblem[];
}

/** Verifies the text of an audit log. */
export function verifyAuditLog(text: string): AuditVerdict {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const problems: AuditProblem[] = [];
  let prevHash = AUDIT_GENESIS_HASH;
  let prevSeq = 0;
  const entries = lines.map((raw, i): AuditEntry | AuditProblem => {
    const line = i + 1;
    let entry: AuditEntry;
    try {
      entry = JSON.parse(raw) as AuditEntry;
    } catch {
      return { line, kind: 'malformed', message: `line ${line} is not JSON` };
    }
    if (!Number.isSafeInteger(entry?.seq) || typeof entry.prev !== 'string' || typeof entry.hash !== 'string' || typeof entry.event !== 'object' || entry.event === null) {
      return { line, kind: 'malformed', message: `line ${line} is not an audit entry` };
    }
    return entry;
  });
  // Where each seq is, so a gap can be told apart from a line moved further down.
  const present = new Set(entries.flatMap((e) => ('hash' in e ? [e.seq] : [])));
  entries.forEach((entry, i) => {
    const line = i + 1;
    if (!('hash' in entry)) {
      problems.push(entry);
      return;
    }
    if (auditHash(entry) !== entry.hash) {
      problems.push({ line, kind: 'edited', message: `line ${line} (seq ${entry.seq}) was edited: its hash does not match its content` });
    } else if (entry.seq > prevSeq + 1) {
      let gone = 0;
      for (let s = prevSeq + 1; s < entry.seq; s++) if (!present.has(s)) gone++;
      if (gone > 0) problems.push({ line, kind: 'deleted', message: `${gone} line${gone === 1 ? '' : 's'} deleted before line ${line}: seq ${prevSeq} is followed by seq ${entry.seq}` });
      else problems.push({ line, kind: 'reordered', message: `line ${line} is out of order: seq ${entry.seq} comes before seq ${prevSeq + 1}` });
    } else if (entry.seq <= prevSeq) {
      problems.push({ line, kind: 'reordered', message: `line ${line} is out of order: seq ${entry.seq} after seq ${prevSeq}` });
    } else if (entry.prev !== prevHash) {
      problems.push({ line, kind: 'rechained', message: `line ${line} (seq ${entry.seq}) does not follow the line before it: its prev hash differs (edited and rehashed, or spliced in)` });
    }
    prevHash = entry.hash;
    prevSeq = entry.seq;
  });
  return { ok: problems.length === 0, entries: lines.length, head: prevHash, problems };
}
