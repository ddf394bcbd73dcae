# Every target runs the Go toolchain pinned in go.mod (go1.26.11); the
# machine's own Go may be older and is told to fetch it.
export GOTOOLCHAIN := auto

.PHONY: demo test build bench
demo: ## run a complete gateway with built-in demo services (no config file needed)
	go run ./cmd/drawbridge demo

test: ## install what the tests need, then run every check and test
	./.ci/test

build: ## build bin/drawbridge the way the image does
	CGO_ENABLED=0 GOFLAGS="$$(deploy/images/goflags.sh)" go build -ldflags "-s -w" -o bin/drawbridge ./cmd/drawbridge
