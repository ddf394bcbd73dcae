#!/bin/sh
# Prints the GOFLAGS the Dockerfile builds the shipped binary with, so `make build` and .ci/scan build the same binary.
set -eu
sed -n 's/^ENV GOFLAGS="\(.*\)"$/\1/p' "$(dirname "$0")/../../Dockerfile"
