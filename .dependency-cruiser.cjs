/**
 * The module dependency direction from ../shared/ARCHITECTURE.md, checked in CI.
 * Each rule names a module and what it may NOT import; node/ and main.ts may import everything.
 */
const only = (from, allowed) => ({
  name: `${from}-imports`,
  severity: 'error',
  comment: `src/${from}/ may import only ${allowed.join(', ') || 'nothing else'} (ARCHITECTURE.md)`,
  from: { path: `^src/${from}/` },
  to: {
    path: '^src/',
    pathNot: [`^src/${from}/`, ...allowed.map((m) => `^src/${m}/`)],
  },
});

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    only('util', []),
    only('raft', ['util']),
    only('placement', ['util']),
    only('meta', ['util']),
    only('consensus', ['raft', 'meta', 'util']),
    only('chunks', ['placement', 'util']),
    only('objects', ['consensus', 'meta', 'chunks', 'placement', 'util', 'forward']),
    only('s3', ['objects', 'util', 'metrics']),
    only('rpc', ['util', 'gen', 'consensus', 'chunks', 'meta', 'raft', 'placement', 'membership']),
    only('forward', ['util']),
    only('membership', ['consensus', 'placement', 'chunks', 'util', 'raft', 'meta']),
    only('config', ['util']),
    only('cache', []),
    only('metrics', []),
    only('cli', ['s3', 'meta', 'util', 'audit']),
    only('audit', ['util']),
    only('faults', ['util']),
    {
      name: 'only-rpc-imports-gen',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/rpc/', '^src/gen/'] },
      to: { path: '^src/gen/' },
    },
    {
      name: 'raft-is-pure',
      severity: 'error',
      comment: 'src/raft/ does no I/O: no node builtins, no npm packages',
      from: { path: '^src/raft/' },
      to: { dependencyTypes: ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
