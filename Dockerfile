# redis2d in a container: Debian 12 (bookworm) with Node 20.
#   docker build -t redis2d .
#   docker run --rm --network host redis2d          # Redis on the host's 127.0.0.1:6379
#   docker run --rm -p 8080:8080 -v $PWD/my.conf:/etc/redis2d/nginx.conf:ro redis2d
# The config (contrib/docker/nginx.conf by default) runs in the foreground
# (-g 'daemon off;'), logs to stderr/stdout, listens on 8080.

# build: compile and pack exactly what `npm publish` would ship
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json README.md LICENSE ./
COPY bin/ bin/
COPY lib/ lib/
COPY conf/ conf/
COPY tools/bundle.mjs tools/
COPY logs/.keep logs/
RUN npm ci --ignore-scripts --no-audit --no-fund
RUN npm pack --silent && mv redis2d-*.tgz redis2d.tgz

# run: the packed module installed globally, its runtime dependencies only
FROM node:20-bookworm-slim
COPY --from=build /src/redis2d.tgz /tmp/redis2d.tgz
RUN npm install --global --omit=dev --no-audit --no-fund /tmp/redis2d.tgz && rm /tmp/redis2d.tgz
COPY conf/mime.types contrib/docker/nginx.conf /etc/redis2d/
RUN redis2d -t -q -e stderr -c /etc/redis2d/nginx.conf -g 'daemon off;'
# root inside the container, as the official nginx image's master: it opens
# /dev/stdout for the access log, which a pipe created by root refuses to others
EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["redis2d", "-e", "stderr", "-c", "/etc/redis2d/nginx.conf", "-g", "daemon off;"]
