// Fails fast when npm scripts run under a Node older than 24: the project brings its own Node 24
// (the `node` dev dependency puts it first on PATH inside npm scripts), so an older one here means
// `npm ci` was skipped or the script was started without npm.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(`ts3gw needs Node.js >= 24, found ${process.version}; run it through npm (npm ci && npm start).`);
  process.exit(1);
}
