/**
 * Runs s3rver in its own process for the benchmark, so its CPU is not the load generator's (the
 * same way ts3gw runs as `node src/main.ts`). Usage: `node test/bench/s3rver-runner.ts DIR`.
 * Prints one line `s3rver is serving S3 at http://127.0.0.1:PORT` once listening; stops on
 * SIGTERM/SIGINT.
 */
import S3rver from 's3rver';

const directory = process.argv[2];
if (!directory) {
  console.error('usage: s3rver-runner.ts DIR');
  process.exit(2);
}
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
const address = await server.run();
process.stdout.write(`s3rver is serving S3 at http://127.0.0.1:${address.port}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(1), 5_000);
  timer.unref();
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The bench holds our stdin open; if it dies without signalling us, do not linger.
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
