#!/usr/bin/env bash
# deploy/images/compose-v2.sh: build Docker Compose v2 (the `docker compose` CLI plugin) from its Go module into
# ~/.docker/cli-plugins/docker-compose, for machines where only the Go module proxy is reachable (no release downloads).
# Skips the build when a plugin of that version is already there. `go install` of the module is refused (its go.mod has
# exclude directives), so it builds inside the downloaded module directory. 2 to 3 minutes cold on two cores.
#
#   deploy/images/compose-v2.sh            # build when missing
#   COMPOSE_VERSION=v2.40.3 deploy/images/compose-v2.sh --force
set -euo pipefail
export GOTOOLCHAIN=auto
version=${COMPOSE_VERSION:-v2.40.3}
dest=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose
if [ "${1:-}" != --force ] && [ -x "$dest" ] && "$dest" version --short 2>/dev/null | grep -qx "${version#v}"; then
  exit 0
fi
mkdir -p "$(dirname "$dest")"
# Outside any module, so our go.mod plays no part.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v2@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "compose-v2: go mod download gave no directory for $version" >&2; exit 1; }
cd "$dir"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$version" \
  -o "$dest.tmp" ./cmd
mv "$dest.tmp" "$dest"
