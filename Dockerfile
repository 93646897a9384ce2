# verbose-sync: multi-stage build; the final image holds the compiled code and production dependencies only.
# Build: docker build -t verbose-sync .   Run: see docs/operations.md (config, secrets, state volume, probes).
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the embedded PostgreSQL (an optional dependency, for the demo) stays out.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim
# The heap sized for the default max_pending_contacts (20000: about 60 MB live at most) with room to collect;
# without a limit V8 lets garbage grow to several times the live heap. Raise it with max_pending_contacts
# (the daemon warns at start when it looks too small). `npm run bench` runs the daemon with these flags.
ENV NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=8" \
    NODE_ENV=production \
    VERBOSE_SYNC_CONFIG=/etc/verbose-sync/sync.yaml \
    VERBOSE_SYNC_STATE_DIR=/var/lib/verbose-sync
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json sync.example.yaml ./
COPY config ./config
# The config is mounted read-only at /etc/verbose-sync/sync.yaml; secrets come from the environment.
RUN mkdir -p /etc/verbose-sync /var/lib/verbose-sync && chown node:node /var/lib/verbose-sync
VOLUME ["/var/lib/verbose-sync"]
USER node
EXPOSE 9464
STOPSIGNAL SIGTERM
# No curl in slim images: node itself asks /healthz. Set HEALTH_PORT when http.port is not 9464.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Run with `docker run --init` (or tini) so signals reach node as PID 1 expects; node handles SIGTERM itself.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["run"]
