# syntax=docker/dockerfile:1
# ts3gw image: Node 24 runs the TypeScript sources directly (type stripping), so there is no build
# step; the first stage only installs the production dependencies from the lock file.
#   docker build -t ts3gw .
#   docker run -p 9000:9000 -v ts3gw-data:/data --read-only --tmpfs /tmp ts3gw
# Checked without a container builder by `npm run check:dockerfile` (scripts/lint-dockerfile.ts).

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. No install scripts: classic-level loads its bundled prebuilt
# binary at run time, and nothing else needs one.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production \
    TS3GW_DATA_DIR=/data \
    TS3GW_S3_HOST=0.0.0.0 \
    TS3GW_S3_PORT=9000 \
    TS3GW_RAFT_HOST=0.0.0.0 \
    TS3GW_RAFT_PORT=9001
# A fixed non-root uid/gid (the chart's runAsUser/fsGroup) owning only the data directory; the
# application files stay root-owned and read-only, so the root filesystem can be mounted read-only.
RUN groupadd --system --gid 10001 ts3gw \
    && useradd --system --uid 10001 --gid ts3gw --home-dir /data --no-create-home --shell /usr/sbin/nologin ts3gw \
    && mkdir -p /data \
    && chown ts3gw:ts3gw /data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
USER 10001:10001
VOLUME ["/data"]
EXPOSE 9000 9001
# main.ts drains on SIGTERM (stops taking S3 requests, finishes in-flight ones, closes Raft).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.TS3GW_S3_PORT || 9000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The same start command as on bare metal (package.json "start" and bin "ts3gw").
ENTRYPOINT ["node", "src/main.ts"]
