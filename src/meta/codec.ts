/**
 * Wire encoding of metadata commands: UTF-8 JSON with a version field. JSON keeps the log
 * readable in a debugger; the version lets a later encoding coexist with entries already in logs.
 */
import { StoreError } from '../util/errors.ts';
import { META_ERR_BAD_COMMAND } from './errors.ts';
import type { MetaCommand } from './types.ts';

/** Encodes a command for the log. */
export function encodeCommand(cmd: MetaCommand): Uint8Array {
  return Buffer.from(JSON.stringify(cmd), 'utf8');
}

/** Decodes a command from the log; throws META_ERR_BAD_COMMAND for bytes it cannot read. */
export function decodeCommand(bytes: Uint8Array): MetaCommand {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new StoreError(META_ERR_BAD_COMMAND, 'command is not valid JSON', {}, { cause: err });
  }
  if (typeof value !== 'object' || value === null || (value as { v?: unknown }).v !== 1) {
    throw new StoreError(META_ERR_BAD_COMMAND, 'unknown command version');
  }
  return value as MetaCommand;
}
