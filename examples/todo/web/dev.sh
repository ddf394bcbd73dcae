#!/bin/sh
# dev.sh [ADDR]: the development server (the Dockerfile's dev target). esbuild watches src/ (bind-mounted), rebuilds
# on every change and serves public/ plus the bundle from memory on ADDR (127.0.0.1:8080: behind the web sidecar,
# which the edge reaches over mutual TLS). After each rebuild it sends a "change" event on /esbuild, an SSE stream the
# page listens to (src/main.jsx), so the open page reloads by itself, through the gateway.
#
# React comes from Debian's packages through node_modules -> /usr/share/nodejs (the image makes that link), with
# --preserve-symlinks so that react-dom's own require('react') resolves there too. Not NODE_PATH: esbuild 0.17.0
# forgets it on the rebuilds its server triggers.
set -eu
cd "$(dirname "$0")"
addr=${1:-127.0.0.1:8080}
[ -e node_modules ] || ln -s /usr/share/nodejs node_modules
exec esbuild src/main.jsx --bundle --jsx=automatic --preserve-symlinks --sourcemap --target=es2020 \
  --define:process.env.NODE_ENV='"development"' --define:LIVE_RELOAD=true \
  --outdir=public/assets --servedir=public --serve="$addr" --watch=forever
