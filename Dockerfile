# The drawbridge image.
#
#   docker build -t drawbridge --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) .
#   docker build -t drawbridge:dev --target dev .
#   docker run --rm -v "$PWD:/src:ro" -v /path/to/config:/etc/drawbridge:ro -p 127.0.0.1:9090:9090 drawbridge:dev
#
# Stages:
#   deps     modules only (go.mod, go.sum): a source change reuses this layer
#   imports  the list of packages cmd/drawbridge uses from outside this module (standard library and modules)
#   warm     compiles that list into the Go build cache; reused while the list is unchanged, so a source change
#            recompiles only our own packages, even with the classic builder, which has no cache mounts
#   build    the binary: static (CGO off), -trimpath, stripped, version and commit stamped into main.version, main.commit
#   rootfs   CA certificates, passwd/group with the numeric non-root user 65532, the state directory it owns
#   dev      (--target dev) rebuilds and restarts on every source change of a checkout bind-mounted at /src
#            (deploy/images/dev-watch.sh; ports and config come from the compose file or docker run)
#   final    (the default) FROM scratch: only the binary, CA certificates, passwd/group and the empty state directory
#
# Builders: this file builds with the classic builder (plain `docker build`, docker-compose v1) and with BuildKit.
# Dockerfile.buildkit is generated from it: each "# buildkit:" comment becomes flags of the RUN below it (a persistent Go
# build cache mount). The classic builder rejects RUN --mount, so one file cannot carry both. Regenerate after an edit:
#   go test ./deploy/imagetest -run TestDockerfileBuildkit -update
# Base images: the public ones (nothing is pulled with --pull). Without a registry, deploy/images/bootstrap.sh builds
# local stand-ins with the same tags.

ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS deps
# GOTOOLCHAIN=auto: an older Go in the base image switches to the toolchain go.mod pins (it carries security fixes).
ENV CGO_ENABLED=0 GOTOOLCHAIN=auto
# The build flags of the shipped binary (`make build` and .ci/scan read this line through deploy/images/goflags.sh).
# Besides -trimpath: the image budget (20 MB) is met by compiling cold library code (ACME, DNS, the OTLP exporters
# and protobuf, gRPC, zap, YAML, templates) without inlining, which costs nothing on the request path, and by leaving
# out gRPC's x/net/trace debug pages (grpcnotrace). Our packages, net/http and crypto keep full optimisation.
ENV GOFLAGS="-trimpath -buildvcs=false -tags=grpcnotrace -gcflags=google.golang.org/...=-l -gcflags=github.com/caddyserver/...=-l -gcflags=github.com/miekg/dns=-l -gcflags=github.com/mholt/...=-l -gcflags=go.uber.org/zap/...=-l -gcflags=go.yaml.in/yaml/v3=-l -gcflags=go.opentelemetry.io/otel/exporters/...=-l -gcflags=go.opentelemetry.io/proto/...=-l -gcflags=github.com/grpc-ecosystem/...=-l -gcflags=golang.org/x/net/http2/...=-l -gcflags=golang.org/x/text/...=-l -gcflags=github.com/libdns/...=-l -gcflags=github.com/prometheus/common/...=-l -gcflags=html/template=-l -gcflags=text/template/...=-l"
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download && go mod verify

FROM deps AS imports
COPY . .
# Internal and vendored packages are left out: building the others compiles them anyway.
RUN go list -deps -f '{{if .Standard}}{{.ImportPath}}{{else if .Module}}{{if not .Module.Main}}{{.ImportPath}}{{end}}{{end}}' \
		./cmd/drawbridge > /tmp/deps.txt \
	&& grep -Ev '(^|/)(internal|vendor)(/|$)' /tmp/deps.txt | sort > /tmp/imports.txt

FROM deps AS warm
COPY --from=imports /tmp/imports.txt /tmp/imports.txt
# buildkit: --mount=type=cache,target=/root/.cache/go-build
RUN xargs -r go build < /tmp/imports.txt

FROM warm AS build
# Before COPY: with the classic builder every step costs a commit, and these stay cached while the values do.
ARG VERSION=dev
ARG COMMIT=none
COPY . .
# buildkit: --mount=type=cache,target=/root/.cache/go-build
RUN go build -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/drawbridge ./cmd/drawbridge

FROM ${GO_IMAGE} AS rootfs
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/var/lib/drawbridge \
	&& cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
	&& echo 'drawbridge:x:65532:65532:drawbridge:/var/lib/drawbridge:/sbin/nologin' > /rootfs/etc/passwd \
	&& echo 'drawbridge:x:65532:' > /rootfs/etc/group \
	&& chown 65532:65532 /rootfs/var/lib/drawbridge \
	&& chmod 0700 /rootfs/var/lib/drawbridge \
	&& chmod 0644 /rootfs/etc/passwd /rootfs/etc/group /rootfs/etc/ssl/certs/ca-certificates.crt

# The watcher comes from the bind-mounted checkout itself; the classic builder builds this stage in every build, and
# each step costs a layer commit, so it has only two.
FROM warm AS dev
ENTRYPOINT ["/bin/sh", "/src/deploy/images/dev-watch.sh"]
CMD ["run", "--config", "/etc/drawbridge/drawbridge.yaml"]

FROM scratch AS final
COPY --from=rootfs /rootfs/ /
COPY --from=build /out/drawbridge /drawbridge
USER 65532:65532
# 8443: the gateway's TLS listener; 9090: the admin listener (/livez, /readyz, /metrics).
EXPOSE 8443 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
	CMD ["/drawbridge", "healthcheck", "http://127.0.0.1:9090/livez"]
ENTRYPOINT ["/drawbridge"]
CMD ["run", "--config", "/etc/drawbridge/drawbridge.yaml"]
ARG VERSION=dev
ARG COMMIT=none
LABEL org.opencontainers.image.title="drawbridge" \
	org.opencontainers.image.description="mTLS gateway in front of a three-tier Docker app" \
	org.opencontainers.image.source="https://github.com/drawbridge-proxy/drawbridge" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${COMMIT}" \
	org.opencontainers.image.base.name="scratch"
