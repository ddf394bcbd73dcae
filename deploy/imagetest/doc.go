// Package imagetest checks the drawbridge image built from the repository's Dockerfile. It holds tests only.
//
// Without Docker, it checks that Dockerfile.buildkit is what the Dockerfile generates (regenerate with
// `go test ./deploy/imagetest -run TestDockerfileBuildkit -update`) and that the Dockerfile stays buildable by the
// classic builder.
//
// With DRAWBRIDGE_DOCKER_TESTS=1 and a reachable Docker engine, it builds the image and checks its budgets: at most
// 24 MB, at least 90% smaller than a naive single-stage build, a rebuild after a one-file change that reuses the module
// layer and takes at most half the cold build's time, a file system of nothing but the binary, CA certificates,
// passwd/group and the state directory (no shell, no setuid or setgid file), a numeric non-root user, an exec-form
// HEALTHCHECK, and a build context of Go sources only. The base images must exist (deploy/images/bootstrap.sh).
// It takes several minutes: run it with -timeout 60m.
package imagetest
