/**
 * ts3gw command-line entry: `ts3gw [--data-dir DIR] [--s3-port N] …` (see README). Loads the
 * configuration, starts the node, and shuts it down gracefully on SIGTERM/SIGINT. The only
 * place that calls process.exit.
 */
import pino from 'pino';
import { loadConfig } from './config/config.ts';
import { startNode } from './node/node.ts';
import { errorCode } from './util/errors.ts';

/** How long a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 20_000;

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig({ env: process.env, argv: process.argv.slice(2) });
  } catch (err) {
    if (errorCode(err) !== 'CONFIG_ERR_INVALID') throw err;
    console.error((err as Error).message);
    process.exit(2);
  }
  const logger = pino({ level: config.logLevel, base: { pid: process.pid } });
  let node: Awaited<ReturnType<typeof startNode>>;
  try {
    node = await startNode(config, logger);
  } catch (err) {
    // Refusals an operator must act on get one clear line, not a stack trace.
    const code = errorCode(err) ?? '';
    if (!code.startsWith('MEMBERSHIP_ERR_') && code !== 'NODE_ERR_IDENTITY') throw err;
    logger.fatal({ code }, (err as Error).message);
    console.error(`ts3gw: ${(err as Error).message}`);
    process.exit(1);
  }
  // A plain line for people and scripts (test harnesses wait for it), whatever the log level.
  process.stdout.write(`ts3gw is serving S3 at ${node.s3Url} (data in ${config.dataDir})\n`);
  if (node.generatedCredentials) {
    // Printed once, on the start that created them; they stay in <dataDir>/credentials.json.
    process.stdout.write(
      `\nGenerated root credentials (stored in ${config.dataDir}/credentials.json):\n` +
        `  AWS_ACCESS_KEY_ID=${node.credentials.accessKeyId}\n  AWS_SECRET_ACCESS_KEY=${node.credentials.secretAccessKey}\n\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // In-flight requests get time to finish; a shutdown that hangs (a stuck client, an
    // unreachable peer) must not keep the process alive forever.
    setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'graceful shutdown timed out; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    node.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
