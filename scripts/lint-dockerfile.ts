/**
 * Lints the Dockerfile where no container builder exists (`npm run check:dockerfile`): a subset
 * of hadolint's rules (same DLxxxx ids; hadolint itself ships on no registry these machines
 * reach) plus the image contract of this project (TS3GW-xx): multi-stage on node:24-slim,
 * production dependencies only, non-root, HEALTHCHECK on /health/live, STOPSIGNAL SIGTERM, data on
 * the /data volume, and a start command that is exactly `npm start`'s, the one the StatefulSet
 * simulation test runs. Also checks .dockerignore lets in what the COPY lines need and keeps out
 * node_modules, .git and data, and that src/ imports only production dependencies.
 *
 *   node scripts/lint-dockerfile.ts            lints ./Dockerfile; exits 1 listing findings
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;

/** One instruction: keyword, arguments (continuations joined), first line number. */
export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** A lint finding. */
export interface Finding {
  rule: string;
  line: number;
  message: string;
}

/** What the project contributes to the lint: package.json, .dockerignore text, files in src/. */
export interface LintContext {
  packageJson: { scripts?: Record<string, string>; bin?: Record<string, string>; dependencies?: Record<string, string> };
  dockerignore: string | undefined;
  /** Does a repository path exist (for COPY sources)? */
  exists: (path: string) => boolean;
  /** Bare module specifiers imported by src/ (package names). */
  srcImports: string[];
}

/** Parses a Dockerfile into instructions (comments dropped, backslash continuations joined). */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!.trim();
    if (first === '' || first.startsWith('#')) continue;
    const start = i + 1;
    let joined = lines[i]!;
    while (/\\\s*$/.test(joined) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (next.trim().startsWith('#')) continue;
      joined = `${joined.replace(/\s*\\\s*$/, '')} ${next.trim()}`;
    }
    const m = /^\s*(\S+)\s*(.*)$/.exec(joined)!;
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
  }
  return out;
}

/** The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD, or undefined for the shell form. */
function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    // Not JSON: Docker runs it through a shell, which is the finding the caller reports.
    return undefined;
  }
}

/** The instructions of each stage (a stage starts at FROM). */
function stages(instructions: Instruction[]): { from: Instruction; name: string | undefined; body: Instruction[] }[] {
  const out: { from: Instruction; name: string | undefined; body: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /\s+AS\s+(\S+)\s*$/i.exec(ins.args);
      out.push({ from: ins, name: m?.[1]?.toLowerCase(), body: [] });
    } else out.at(-1)?.body.push(ins);
  }
  return out;
}

/** The argv the final stage starts with: ENTRYPOINT followed by CMD (exec forms only). */
export function startCommand(text: string): string[] | undefined {
  const last = stages(parseDockerfile(text)).at(-1);
  if (!last) return undefined;
  const entry = last.body.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
  const cmd = last.body.filter((i) => i.keyword === 'CMD').at(-1);
  const e = entry ? execForm(entry.args) : [];
  const c = cmd ? execForm(cmd.args) : [];
  if (e === undefined || c === undefined) return undefined;
  return [...e, ...c];
}

/** Regular expressions of the glob tokens Docker's .dockerignore knows. */
const GLOB_PARTS: Record<string, string> = { '**/': '(?:.*/)?', '**': '.*', '*': '[^/]*', '?': '[^/]' };

/** Whether a .dockerignore (Docker's rules: last matching pattern wins, `!` re-includes) keeps a path out. */
export function dockerIgnored(dockerignore: string, path: string): boolean {
  let ignored = false;
  for (const raw of dockerignore.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = (negate ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
    const re = new RegExp(
      `^${pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) => GLOB_PARTS[part] ?? part.replace(/[.+^${}()|[\]\\]/g, '\\$&'))
        .join('')}(?:/.*)?$`,
    );
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

/** Lints a Dockerfile; an empty result means it passes. */
export function lintDockerfile(text: string, ctx: LintContext): Finding[] {
  const findings: Finding[] = [];
  const add = (rule: string, line: number, message: string) => findings.push({ rule, line, message });
  const instructions = parseDockerfile(text);
  const all = stages(instructions);
  const names = new Set<string>();
  let pipefail = false;
  for (const ins of instructions) {
    const a = ins.args;
    switch (ins.keyword) {
      case 'FROM': {
        const image = a.split(/\s+/).filter((w) => !w.startsWith('--'))[0] ?? '';
        if (!names.has(image.toLowerCase()) && image !== 'scratch') {
          if (!/[:@]/.test(image.replace(/^[^/]*:\d+\//, ''))) add('DL3006', ins.line, `always tag the image version explicitly: ${image}`);
          if (/:latest$/.test(image)) add('DL3007', ins.line, `using latest is prone to errors: ${image}`);
        }
        const m = /\s+AS\s+(\S+)\s*$/i.exec(a);
        if (m) names.add(m[1]!.toLowerCase());
        break;
      }
      case 'MAINTAINER':
        add('DL4000', ins.line, 'MAINTAINER is deprecated (use a LABEL)');
        break;
      case 'WORKDIR':
        if (!a.startsWith('/') && !a.startsWith('$')) add('DL3000', ins.line, `use absolute WORKDIR: ${a}`);
        break;
      case 'ADD':
        if (!/https?:\/\//.test(a) && !/\.(tar|tgz|tar\.gz|tar\.xz)\b/.test(a)) add('DL3020', ins.line, 'use COPY instead of ADD for files and folders');
        break;
      case 'COPY': {
        const from = /--from=(\S+)/.exec(a)?.[1]?.toLowerCase();
        if (from !== undefined && !names.has(from) && !/^\d+$/.test(from) && !from.includes(':')) add('DL3022', ins.line, `COPY --from should reference a previously defined FROM alias: ${from}`);
        break;
      }
      case 'SHELL':
        pipefail = /pipefail/.test(a);
        break;
      case 'CMD':
      case 'ENTRYPOINT':
        if (execForm(a) === undefined) add('DL3025', ins.line, `use the JSON (exec) form for ${ins.keyword}, so signals reach the process`);
        break;
      case 'RUN': {
        if (/(^|[;&|]\s*)sudo\s/.test(a)) add('DL3004', ins.line, 'do not use sudo');
        if (/(^|[;&|]\s*)cd\s/.test(a)) add('DL3003', ins.line, 'use WORKDIR to switch to a directory');
        if (/[^|]\|[^|]/.test(a) && !pipefail) add('DL4006', ins.line, 'set SHELL ["/bin/bash", "-o", "pipefail", "-c"] before RUN with a pipe');
        if (/apt-get\s+(\S+\s+)*install/.test(a)) {
          if (!/--no-install-recommends/.test(a)) add('DL3015', ins.line, 'avoid additional packages: apt-get install --no-install-recommends');
          if (!/\s-y\b|--yes|--assume-yes/.test(a)) add('DL3014', ins.line, 'use the -y switch with apt-get install');
          if (!/rm -rf \/var\/lib\/apt\/lists/.test(a)) add('DL3009', ins.line, 'delete the apt-get lists after installing something');
        }
        if (/\bapt\s+install\b/.test(a)) add('DL3027', ins.line, 'do not use apt, use apt-get');
        if (/\bnpm\s+(install|i)\b/.test(a)) add('TS3GW-03', ins.line, 'install from the lock file with npm ci, not npm install');
        break;
      }
    }
  }

  // The project's image contract.
  if (all.length < 2) add('TS3GW-01', 1, 'multi-stage build expected: a dependency stage and a runtime stage');
  const final = all.at(-1);
  if (!final) return [...findings, { rule: 'TS3GW-01', line: 1, message: 'no FROM' }];
  const finalImage = final.from.args.split(/\s+/)[0] ?? '';
  if (!/^node:24(\.\d+)*-slim$/.test(finalImage)) add('TS3GW-02', final.from.line, `runtime stage must be node:24-slim (Node 24 runs the .ts sources), got ${finalImage}`);
  if (!instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args) && /--omit=dev\b/.test(i.args))) add('TS3GW-03', 1, 'production dependencies only: npm ci --omit=dev');
  const user = final.body.filter((i) => i.keyword === 'USER').at(-1);
  if (!user) add('TS3GW-04', final.from.line, 'runtime stage must switch to a non-root USER');
  else if (/^(root|0)(:|$)/.test(user.args)) add('DL3002', user.line, 'last USER should not be root');
  const health = final.body.filter((i) => i.keyword === 'HEALTHCHECK').at(-1);
  if (!health || !/\/health\/live/.test(health.args)) add('TS3GW-05', health?.line ?? final.from.line, 'HEALTHCHECK must probe /health/live');
  else if (!/CMD\s+\[/.test(health.args)) add('DL3025', health.line, 'use the JSON (exec) form for HEALTHCHECK CMD');
  const stop = final.body.filter((i) => i.keyword === 'STOPSIGNAL').at(-1);
  if (stop?.args !== 'SIGTERM') add('TS3GW-06', stop?.line ?? final.from.line, 'STOPSIGNAL SIGTERM (main.ts drains on it)');
  const start = startCommand(text);
  const npmStart = ctx.packageJson.scripts?.['start']?.split(/\s+/);
  const bin = ctx.packageJson.bin?.['ts3gw'];
  if (!start || !npmStart || start.join(' ') !== npmStart.join(' ')) add('TS3GW-07', 1, `start command ${JSON.stringify(start)} must be npm start's ${JSON.stringify(npmStart)}`);
  else if (bin === undefined || start[1] !== bin) add('TS3GW-07', 1, `start command must run the ts3gw bin (${bin})`);
  const volumes = final.body.filter((i) => i.keyword === 'VOLUME').map((i) => i.args);
  if (!volumes.some((v) => /(^|["\s[])\/data(["\s\]]|$)/.test(v))) add('TS3GW-08', final.from.line, 'data must live on VOLUME /data');
  if (!final.body.some((i) => i.keyword === 'ENV' && /TS3GW_DATA_DIR=\/data\b/.test(i.args))) add('TS3GW-08', final.from.line, 'ENV TS3GW_DATA_DIR=/data in the runtime stage');

  // What goes into the build context.
  if (ctx.dockerignore === undefined) add('TS3GW-09', 1, 'no .dockerignore');
  else {
    for (const p of ['node_modules/fastify/package.json', '.git/HEAD', 'data/meta/CURRENT', 'test/unit/x.test.ts']) {
      if (!dockerIgnored(ctx.dockerignore, p)) add('TS3GW-09', 1, `.dockerignore must keep out ${p.split('/')[0]}/`);
    }
  }
  for (const ins of instructions.filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))) {
    const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
    for (const src of words.slice(0, -1)) {
      if (!ctx.exists(src)) add('TS3GW-09', ins.line, `COPY source ${src} does not exist`);
      else if (ctx.dockerignore !== undefined && dockerIgnored(ctx.dockerignore, src === 'src' ? 'src/main.ts' : src)) add('TS3GW-09', ins.line, `COPY source ${src} is excluded by .dockerignore`);
    }
  }
  const deps = new Set(Object.keys(ctx.packageJson.dependencies ?? {}));
  for (const name of ctx.srcImports) if (!deps.has(name)) add('TS3GW-10', 1, `src/ imports ${name}, which npm ci --omit=dev does not install (not in dependencies)`);
  return findings.sort((x, y) => x.line - y.line);
}

/** Package names src/ imports (bare specifiers other than node: built-ins), type-only imports excluded. */
export function sourceImports(dir = join(ROOT, 'src')): string[] {
  const names = new Set<string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ts$/.test(e.name) && !/\.d\.ts$/.test(e.name)) {
        for (const m of readFileSync(p, 'utf8').matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'".][^'"]*)['"]/gm)) {
          const spec = m[1]!;
          if (spec.startsWith('node:')) continue;
          names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
  };
  walk(dir);
  return [...names].sort();
}

/** The context of this repository. */
export function repoContext(root = ROOT): LintContext {
  const ignorePath = join(root, '.dockerignore');
  return {
    packageJson: JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as LintContext['packageJson'],
    dockerignore: existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : undefined,
    exists: (p) => existsSync(join(root, p)),
    srcImports: sourceImports(join(root, 'src')),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = join(ROOT, 'Dockerfile');
  const findings = lintDockerfile(readFileSync(file, 'utf8'), repoContext());
  for (const f of findings) console.log(`${relative(process.cwd(), file)}:${f.line} ${f.rule} ${f.message}`);
  if (findings.length > 0) {
    console.error(`check:dockerfile: ${findings.length} finding(s)`);
    process.exit(1);
  }
  console.log(`check:dockerfile: Dockerfile and .dockerignore pass (start command: ${startCommand(readFileSync(file, 'utf8'))!.join(' ')})`);
}
