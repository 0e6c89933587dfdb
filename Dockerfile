# syntax=docker/dockerfile:1
# One image for every Gambit process (docs/deploy.md): `scheduler`, `worker`, `estimator` or
# `gambit <command>` (the CLI) as the first argument. Multi-stage: the build stage installs every
# dependency from the lockfile and compiles the workspace; the runtime stage installs production
# dependencies only, takes the compiled output and data files, and runs as the unprivileged
# `node` user (uid 1000). test/operate/deploy.test.ts checks that every path copied here exists
# and that the entry points exist after a build.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS base
ENV PNPM_HOME=/pnpm PATH=/pnpm:$PATH CI=true
RUN npm install -g pnpm@12.4.2 && pnpm --version
WORKDIR /app
# Manifests first: the dependency layers are rebuilt only when a manifest or the lockfile changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY packages/shared/package.json packages/shared/
COPY packages/replay/package.json packages/replay/
COPY packages/testkit/package.json packages/testkit/
COPY packages/cli/package.json packages/cli/
COPY packages/console/package.json packages/console/
COPY services/scheduler/package.json services/scheduler/
COPY services/worker/package.json services/worker/
COPY services/estimator/package.json services/estimator/

FROM base AS build
RUN pnpm install --frozen-lockfile
COPY turbo.json tsconfig.base.json ./
COPY infra/copy-assets.mjs infra/
COPY packages/shared/tsconfig.json packages/shared/
COPY packages/shared/src packages/shared/src
COPY packages/shared/data packages/shared/data
COPY packages/replay/tsconfig.json packages/replay/
COPY packages/replay/src packages/replay/src
COPY packages/replay/data packages/replay/data
COPY packages/testkit/tsconfig.json packages/testkit/
COPY packages/testkit/src packages/testkit/src
COPY packages/cli/tsconfig.json packages/cli/
COPY packages/cli/src packages/cli/src
COPY packages/console/tsconfig.json packages/console/vite.config.ts packages/console/index.html packages/console/
COPY packages/console/src packages/console/src
COPY services/scheduler/tsconfig.json services/scheduler/
COPY services/scheduler/src services/scheduler/src
COPY services/worker/tsconfig.json services/worker/
COPY services/worker/src services/worker/src
COPY services/estimator/tsconfig.json services/estimator/
COPY services/estimator/src services/estimator/src
RUN pnpm exec turbo run build --output-logs=errors-only

FROM base AS prod-deps
RUN pnpm install --frozen-lockfile --prod

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production OPS_HOST=0.0.0.0 OPS_PORT=9464 HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY --from=prod-deps /app /app
COPY --from=build /app/packages/shared/dist packages/shared/dist
COPY --from=build /app/packages/shared/data packages/shared/data
COPY --from=build /app/packages/replay/dist packages/replay/dist
COPY --from=build /app/packages/replay/data packages/replay/data
COPY --from=build /app/packages/testkit/dist packages/testkit/dist
COPY --from=build /app/packages/cli/dist packages/cli/dist
COPY --from=build /app/packages/console/dist packages/console/dist
COPY --from=build /app/services/scheduler/dist services/scheduler/dist
COPY --from=build /app/services/worker/dist services/worker/dist
COPY --from=build /app/services/estimator/dist services/estimator/dist
COPY --chmod=0755 infra/docker/entrypoint.sh /usr/local/bin/gambit-entrypoint
USER node
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/gambit-entrypoint"]
CMD ["scheduler"]
