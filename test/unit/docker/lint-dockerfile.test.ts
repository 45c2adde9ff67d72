/**
 * Goal: the Dockerfile lint (scripts/lint-dockerfile.ts, `npm run check:dockerfile`) passes the
 * repository's Dockerfile and catches each mistake it exists for.
 *
 * Method: the real Dockerfile and .dockerignore, then one mutation at a time (root user, shell
 * form, untagged base, ADD, no HEALTHCHECK, npm install, a start command other than npm start's,
 * a .dockerignore that lets node_modules in or keeps src out, a dev dependency imported by src/),
 * each expected to raise its rule id.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { dockerIgnored, type LintContext, lintDockerfile, parseDockerfile, repoContext, startCommand } from '../../../scripts/lint-dockerfile.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
const ctx = repoContext(ROOT);

const rules = (text: string, c: LintContext = ctx) => lintDockerfile(text, c).map((f) => f.rule);
const mutate = (from: RegExp | string, to: string) => {
  const out = dockerfile.replace(from, to);
  if (out === dockerfile) throw new Error(`mutation ${String(from)} changed nothing`);
  return out;
};

test('the repository Dockerfile passes, and starts the way npm start does', (t) => {
  t.deepEqual(lintDockerfile(dockerfile, ctx), []);
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: { start: string } };
  t.deepEqual(startCommand(dockerfile), pkg.scripts.start.split(' '));
  t.deepEqual(startCommand(dockerfile), ['node', 'src/main.ts']);
});

test('continuation lines join into one instruction at the line it starts', (t) => {
  const ins = parseDockerfile('FROM a:1\n# c\nRUN x \\\n  # inner comment\n  && y\nUSER 1\n');
  t.deepEqual(ins, [
    { keyword: 'FROM', args: 'a:1', line: 1 },
    { keyword: 'RUN', args: 'x && y', line: 3 },
    { keyword: 'USER', args: '1', line: 6 },
  ]);
});

test('each broken Dockerfile raises its rule', (t) => {
  const cases: [string, string][] = [
    [mutate('USER 10001:10001', 'USER root'), 'DL3002'],
    [mutate('USER 10001:10001\n', ''), 'TS3GW-04'],
    [mutate('ENTRYPOINT ["node", "src/main.ts"]', 'ENTRYPOINT node src/main.ts'), 'DL3025'],
    [mutate('ENTRYPOINT ["node", "src/main.ts"]', 'ENTRYPOINT ["node", "src/other.ts"]'), 'TS3GW-07'],
    [mutate('FROM node:24-slim AS deps', 'FROM node AS deps'), 'DL3006'],
    [mutate('FROM node:24-slim AS deps', 'FROM node:latest AS deps'), 'DL3007'],
    [mutate(/FROM node:24-slim\nENV/, 'FROM node:22-slim\nENV'), 'TS3GW-02'],
    [mutate('COPY src ./src', 'ADD src ./src'), 'DL3020'],
    [mutate('COPY --from=deps', 'COPY --from=build'), 'DL3022'],
    [mutate(/HEALTHCHECK[^\n]*\\\n[^\n]*\n/, ''), 'TS3GW-05'],
    [mutate('STOPSIGNAL SIGTERM', 'STOPSIGNAL SIGKILL'), 'TS3GW-06'],
    [mutate('npm ci --omit=dev', 'npm install --omit=dev'), 'TS3GW-03'],
    [mutate('npm ci --omit=dev', 'npm ci'), 'TS3GW-03'],
    [mutate('VOLUME ["/data"]', 'VOLUME ["/var/lib/ts3gw"]'), 'TS3GW-08'],
    [mutate('WORKDIR /app\nCOPY --from', 'WORKDIR app\nCOPY --from'), 'DL3000'],
    [mutate('COPY src ./src', 'COPY lib ./lib'), 'TS3GW-09'],
    [mutate('RUN groupadd', 'RUN cd /tmp && groupadd'), 'DL3003'],
    [mutate('RUN groupadd', 'RUN apt-get update && apt-get install curl && groupadd'), 'DL3015'],
    [mutate('RUN groupadd', 'RUN getent passwd | grep -q x; groupadd'), 'DL4006'],
  ];
  for (const [text, rule] of cases) t.true(rules(text).includes(rule), `${rule} expected, got ${JSON.stringify(lintDockerfile(text, ctx))}`);
  t.true(rules('FROM node:24-slim\nUSER 1\n').includes('TS3GW-01'), 'single stage');
});

test('the build context: .dockerignore must keep out node_modules, .git and data, and let src in', (t) => {
  const ignore = ctx.dockerignore!;
  t.false(dockerIgnored(ignore, 'src/main.ts'));
  t.false(dockerIgnored(ignore, 'package-lock.json'));
  t.true(dockerIgnored(ignore, 'node_modules/fastify/package.json'));
  t.true(dockerIgnored(ignore, '.git/HEAD'));
  t.true(dockerIgnored(ignore, 'src/s3/x.test.ts'));
  t.true(rules(dockerfile, { ...ctx, dockerignore: '.git\n' }).includes('TS3GW-09'), 'node_modules let in');
  t.true(rules(dockerfile, { ...ctx, dockerignore: `${ignore}\nsrc\n` }).includes('TS3GW-09'), 'src kept out');
  t.true(rules(dockerfile, { ...ctx, dockerignore: undefined }).includes('TS3GW-09'), 'no .dockerignore');
});

test('src/ importing a package npm ci --omit=dev leaves out breaks the image', (t) => {
  t.true(ctx.srcImports.includes('fastify'), 'the import scan sees src/');
  const findings = lintDockerfile(dockerfile, { ...ctx, srcImports: [...ctx.srcImports, 'fast-check'] });
  t.deepEqual(findings.map((f) => f.rule), ['TS3GW-10']);
  t.regex(findings[0]!.message, /fast-check/);
});
