/**
 * Typed configuration from defaults, an optional JSON file, TS3GW_* environment variables and
 * command-line flags (later sources win). validate() reports every problem at once, so an
 * operator fixes a bad config in one round instead of one error per restart.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { StoreError } from '../util/errors.ts';

/** The whole configuration of one node. */
export interface Config {
  /** Directory for metadata, chunks and credentials. */
  dataDir: string;
  s3Host: string;
  s3Port: number;
  /** Region this endpoint serves; SigV4 credential scopes must name it. */
  region: string;
  /** Base domain for virtual-hosted-style requests; unset means path-style only. */
  domain: string | undefined;
  rootAccessKey: string | undefined;
  rootSecretKey: string | undefined;
  chunkSizeBytes: number;
  inlineMaxBytes: number;
  objectSizeBytesMax: number;
  logLevel: string;
}

/** Configuration problems; `problems` lists every one found. */
export const CONFIG_ERR_INVALID = 'CONFIG_ERR_INVALID';

type Field = keyof Config;

/** Each setting: its env variable, flag, type and default. */
const FIELDS: Record<Field, { env: string; flag: string; type: 'string' | 'int' | 'optional'; default: string | number | undefined }> = {
  dataDir: { env: 'TS3GW_DATA_DIR', flag: 'data-dir', type: 'string', default: './data' },
  s3Host: { env: 'TS3GW_S3_HOST', flag: 's3-host', type: 'string', default: '0.0.0.0' },
  s3Port: { env: 'TS3GW_S3_PORT', flag: 's3-port', type: 'int', default: 9000 },
  region: { env: 'TS3GW_REGION', flag: 'region', type: 'string', default: 'us-east-1' },
  domain: { env: 'TS3GW_DOMAIN', flag: 'domain', type: 'optional', default: undefined },
  rootAccessKey: { env: 'TS3GW_ROOT_ACCESS_KEY', flag: 'root-access-key', type: 'optional', default: undefined },
  rootSecretKey: { env: 'TS3GW_ROOT_SECRET_KEY', flag: 'root-secret-key', type: 'optional', default: undefined },
  chunkSizeBytes: { env: 'TS3GW_CHUNK_SIZE_BYTES', flag: 'chunk-size-bytes', type: 'int', default: 4 * 1024 * 1024 },
  inlineMaxBytes: { env: 'TS3GW_INLINE_MAX_BYTES', flag: 'inline-max-bytes', type: 'int', default: 64 * 1024 },
  objectSizeBytesMax: { env: 'TS3GW_OBJECT_SIZE_BYTES_MAX', flag: 'object-size-bytes-max', type: 'int', default: 5 * 1024 ** 3 },
  logLevel: { env: 'TS3GW_LOG_LEVEL', flag: 'log-level', type: 'string', default: 'info' },
};

/** Where configuration comes from; injected so tests need no process globals. */
export interface ConfigSources {
  env: Record<string, string | undefined>;
  argv: string[];
}

/** Loads and validates the configuration; throws CONFIG_ERR_INVALID listing every problem. */
export function loadConfig(sources: ConfigSources): Config {
  const problems: string[] = [];
  const options = Object.fromEntries(Object.values(FIELDS).map((f) => [f.flag, { type: 'string' as const }]));
  let flags: Record<string, string | boolean | undefined> = {};
  try {
    flags = parseArgs({ args: sources.argv, options: { ...options, config: { type: 'string' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    problems.push((err as Error).message);
  }
  const configFile = (flags['config'] as string | undefined) ?? sources.env['TS3GW_CONFIG'];
  let file: Record<string, unknown> = {};
  if (configFile !== undefined) {
    try {
      file = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      problems.push(`config file ${configFile}: ${(err as Error).message}`);
    }
    for (const name of Object.keys(file)) if (!(name in FIELDS)) problems.push(`config file ${configFile}: unknown setting "${name}"`);
  }

  const config: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(FIELDS) as [Field, (typeof FIELDS)[Field]][]) {
    const flag = flags[field.flag];
    const raw = typeof flag === 'string' ? flag : (sources.env[field.env] ?? file[name] ?? field.default);
    const origin = typeof flag === 'string' ? `--${field.flag}` : sources.env[field.env] !== undefined ? field.env : name;
    if (field.type === 'int') {
      const n = typeof raw === 'number' ? raw : Number(raw);
      if (!Number.isSafeInteger(n) || n < 0) problems.push(`${origin}: expected a non-negative integer, got "${String(raw)}"`);
      config[name] = n;
    } else {
      if (raw !== undefined && typeof raw !== 'string') problems.push(`${origin}: expected a string`);
      config[name] = raw === '' ? undefined : raw;
    }
  }
  const c = config as unknown as Config;
  problems.push(...validate(c));
  if (problems.length > 0) {
    throw new StoreError(CONFIG_ERR_INVALID, `invalid configuration:\n  - ${problems.join('\n  - ')}`, { problems });
  }
  return c;
}

/** Every problem of an assembled configuration. */
export function validate(c: Config): string[] {
  const problems: string[] = [];
  if (!c.dataDir) problems.push('dataDir must not be empty');
  if (!(c.s3Port >= 0 && c.s3Port <= 65535)) problems.push(`s3Port ${c.s3Port} is not a TCP port`);
  if (!/^[a-z0-9-]+$/.test(c.region ?? '')) problems.push(`region "${c.region}" is not a region name`);
  if ((c.rootAccessKey === undefined) !== (c.rootSecretKey === undefined)) {
    problems.push('TS3GW_ROOT_ACCESS_KEY and TS3GW_ROOT_SECRET_KEY must be set together');
  }
  if (c.rootAccessKey !== undefined && !/^[A-Za-z0-9_-]{3,128}$/.test(c.rootAccessKey)) problems.push('root access key must be 3-128 characters of [A-Za-z0-9_-]');
  if (c.rootSecretKey !== undefined && c.rootSecretKey.length < 8) problems.push('root secret key must be at least 8 characters');
  if (c.chunkSizeBytes < 64 * 1024 || c.chunkSizeBytes > 16 * 1024 * 1024) problems.push('chunkSizeBytes must be between 64 KiB and 16 MiB');
  if (c.inlineMaxBytes > c.chunkSizeBytes) problems.push('inlineMaxBytes must not exceed chunkSizeBytes');
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(c.logLevel)) problems.push(`logLevel "${c.logLevel}" is not a pino level`);
  return problems;
}
